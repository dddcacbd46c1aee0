// Package storetest is the conformance suite every store.Store
// implementation must pass. It runs against the embedded engine in
// `go test ./...` and against MongoDB when DOSSIER_TEST_MONGO_URI is set.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dossier-fhir/dossier/store"
)

// Factory returns an empty store for one test.
type Factory func(t *testing.T) store.Store

func ver(typ, id string, vid int64, ts time.Time, body string) *store.Version {
	return &store.Version{
		Type: typ, ID: id, VersionID: vid, LastUpdated: ts.UTC().Truncate(time.Microsecond),
		Method: "PUT", JSON: []byte(body), Hash: fmt.Sprintf("h%d", vid),
	}
}

// Run runs every conformance test.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"PutRead", testPutRead},
		{"ConflictOnSameVersion", testConflict},
		{"ConcurrentWritersOneWins", testConcurrent},
		{"DeleteMarker", testDelete},
		{"HistoryOrderAndPaging", testHistory},
		{"Find", testFind},
		{"Claim", testClaim},
		{"DecimalPrecisionKept", testDecimal},
		{"Commit", testCommit},
		{"CommitConflictStoresNothing", testCommitConflict},
		{"CommitAtomicForReaders", testCommitReaders},
		{"BlobRoundTrip", testBlobRoundTrip},
		{"BlobTooLarge", testBlobTooLarge},
		{"BlobNotFoundAndDelete", testBlobDelete},
		{"VersionBlobRef", testVersionBlob},
		{"AppendWriteOnce", testAppend},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

func testPutRead(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.Read(ctx, "Patient", "p1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read missing: got %v, want ErrNotFound", err)
	}
	now := time.Now()
	v1 := ver("Patient", "p1", 1, now, `{"resourceType":"Patient","id":"p1"}`)
	v1.Patient, v1.Security, v1.Org, v1.Author = "p1", []string{"s|N"}, "org1", "sub1"
	v1.Keys = map[string][]string{"identifier": {"sys|1", "1"}}
	if err := s.Put(ctx, v1); err != nil {
		t.Fatal(err)
	}
	got, err := s.Read(ctx, "Patient", "p1")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.JSON) != string(v1.JSON) || got.VersionID != 1 || !got.LastUpdated.Equal(v1.LastUpdated) ||
		got.Patient != "p1" || got.Org != "org1" || got.Author != "sub1" || len(got.Security) != 1 ||
		got.Hash != "h1" || got.Method != "PUT" || got.Type != "Patient" || got.ID != "p1" {
		t.Fatalf("read back %+v", got)
	}
	v2 := ver("Patient", "p1", 2, now.Add(time.Millisecond), `{"resourceType":"Patient","id":"p1","active":true}`)
	if err := s.Put(ctx, v2); err != nil {
		t.Fatal(err)
	}
	got, err = s.Read(ctx, "Patient", "p1")
	if err != nil || got.VersionID != 2 {
		t.Fatalf("after update: %v %+v", err, got)
	}
	old, err := s.VRead(ctx, "Patient", "p1", 1)
	if err != nil || string(old.JSON) != string(v1.JSON) || old.ID != "p1" {
		t.Fatalf("vread 1: %v %+v", err, old)
	}
	if _, err := s.VRead(ctx, "Patient", "p1", 3); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("vread 3: %v", err)
	}
	if _, err := s.Read(ctx, "Observation", "p1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("other type: %v", err)
	}
}

func testConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	if err := s.Put(ctx, ver("Patient", "c", 1, now, `{}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, ver("Patient", "c", 1, now, `{"x":1}`)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	got, _ := s.Read(ctx, "Patient", "c")
	if string(got.JSON) != `{}` {
		t.Fatalf("loser changed the resource: %s", got.JSON)
	}
}

func testConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	if err := s.Put(ctx, ver("Patient", "cc", 1, now, `{}`)); err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Put(ctx, ver("Patient", "cc", 2, now.Add(time.Second), fmt.Sprintf(`{"w":%d}`, i)))
		}()
	}
	wg.Wait()
	wins := 0
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			winner = i
		case errors.Is(err, store.ErrConflict):
		default:
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d writers won version 2, want exactly 1", wins)
	}
	got, _ := s.Read(ctx, "Patient", "cc")
	if string(got.JSON) != fmt.Sprintf(`{"w":%d}`, winner) {
		t.Fatalf("current %s is not the winner's %d", got.JSON, winner)
	}
}

func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	_ = s.Put(ctx, ver("Patient", "d", 1, now, `{}`))
	del := &store.Version{Type: "Patient", ID: "d", VersionID: 2, LastUpdated: now.Add(time.Second).Truncate(time.Microsecond), Deleted: true, Method: "DELETE"}
	if err := s.Put(ctx, del); err != nil {
		t.Fatal(err)
	}
	got, err := s.Read(ctx, "Patient", "d")
	if !errors.Is(err, store.ErrGone) || got == nil || got.VersionID != 2 || !got.Deleted || got.JSON != nil {
		t.Fatalf("read deleted: %v %+v", err, got)
	}
	if found, _ := s.Find(ctx, store.Query{Type: "Patient", Conditions: []store.Condition{{Key: "_id", Values: []string{"d"}}}}); len(found) != 0 {
		t.Fatalf("find returned a deleted resource")
	}
	if err := s.Put(ctx, ver("Patient", "d", 3, now.Add(2*time.Second), `{"back":true}`)); err != nil {
		t.Fatalf("recreate after delete: %v", err)
	}
}

func testHistory(t *testing.T, s store.Store) {
	ctx := context.Background()
	base := time.Now().Add(-time.Hour).Truncate(time.Microsecond)
	// 3 versions of Patient/a, 2 of Patient/b, 1 of Observation/o; two share an instant.
	writes := []*store.Version{
		ver("Patient", "a", 1, base, `{"a":1}`),
		ver("Patient", "b", 1, base.Add(1*time.Second), `{"b":1}`),
		ver("Patient", "a", 2, base.Add(2*time.Second), `{"a":2}`),
		ver("Observation", "o", 1, base.Add(2*time.Second), `{"o":1}`),
		ver("Patient", "b", 2, base.Add(3*time.Second), `{"b":2}`),
		ver("Patient", "a", 3, base.Add(4*time.Second), `{"a":3}`),
	}
	for _, w := range writes {
		if err := s.Put(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	key := func(vs []*store.Version) []string {
		var out []string
		for _, v := range vs {
			out = append(out, fmt.Sprintf("%s/%s/%d", v.Type, v.ID, v.VersionID))
		}
		return out
	}
	check := func(name string, q store.HistoryQuery, want ...string) {
		t.Helper()
		got, err := s.History(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(key(got)) != fmt.Sprint(want) {
			t.Errorf("%s: got %v, want %v", name, key(got), want)
		}
		if q.Before == nil && q.Limit == 0 {
			n, err := s.CountHistory(ctx, q)
			if err != nil || n != int64(len(want)) {
				t.Errorf("%s: count %d (%v), want %d", name, n, err, len(want))
			}
		}
	}
	check("instance", store.HistoryQuery{Type: "Patient", ID: "a"}, "Patient/a/3", "Patient/a/2", "Patient/a/1")
	check("type", store.HistoryQuery{Type: "Patient"}, "Patient/a/3", "Patient/b/2", "Patient/a/2", "Patient/b/1", "Patient/a/1")
	check("system", store.HistoryQuery{}, "Patient/a/3", "Patient/b/2", "Patient/a/2", "Observation/o/1", "Patient/b/1", "Patient/a/1")
	check("since", store.HistoryQuery{Since: base.Add(2 * time.Second)}, "Patient/a/3", "Patient/b/2", "Patient/a/2", "Observation/o/1")
	// Page through system history 2 at a time while a write lands.
	var all []string
	var cur *store.Cursor
	for page := 0; page < 10; page++ {
		vs, err := s.History(ctx, store.HistoryQuery{Before: cur, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) == 0 {
			break
		}
		all = append(all, key(vs)...)
		last := vs[len(vs)-1]
		cur = &store.Cursor{LastUpdated: last.LastUpdated, Type: last.Type, ID: last.ID, VersionID: last.VersionID}
		if page == 0 {
			if err := s.Put(ctx, ver("Patient", "b", 3, time.Now(), `{"b":3}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := []string{"Patient/a/3", "Patient/b/2", "Patient/a/2", "Observation/o/1", "Patient/b/1", "Patient/a/1"}
	if fmt.Sprint(all) != fmt.Sprint(want) {
		t.Errorf("paged: got %v, want %v", all, want)
	}
}

func testFind(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	for i, ids := range [][]string{{"sys|1", "1"}, {"sys|2", "2"}, {"other|1", "1"}} {
		v := ver("Patient", fmt.Sprintf("f%d", i), 1, now, `{}`)
		v.Keys = map[string][]string{"identifier": ids}
		if err := s.Put(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(q store.Query) []string {
		vs, err := s.Find(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range vs {
			out = append(out, v.ID)
		}
		return out
	}
	cases := []struct {
		conds []store.Condition
		want  string
	}{
		{[]store.Condition{{Key: "identifier", Values: []string{"sys|1"}}}, "[f0]"},
		{[]store.Condition{{Key: "identifier", Values: []string{"1"}}}, "[f0 f2]"},
		{[]store.Condition{{Key: "identifier", Values: []string{"sys|1", "sys|2"}}}, "[f0 f1]"},
		{[]store.Condition{{Key: "identifier", Values: []string{"1"}}, {Key: "_id", Values: []string{"f2"}}}, "[f2]"},
		{[]store.Condition{{Key: "_id", Values: []string{"f1"}}}, "[f1]"},
		{[]store.Condition{{Key: "identifier", Values: []string{"nope"}}}, "[]"},
	}
	for _, c := range cases {
		if got := fmt.Sprint(ids(store.Query{Type: "Patient", Conditions: c.conds})); got != c.want {
			t.Errorf("%v: got %s, want %s", c.conds, got, c.want)
		}
	}
	if got := ids(store.Query{Type: "Encounter"}); len(got) != 0 {
		t.Errorf("empty type: %v", got)
	}
}

func testClaim(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 12
	var wg sync.WaitGroup
	holders := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holders[i], errs[i] = s.Claim(ctx, "k", fmt.Sprintf("v%d", i))
		}()
	}
	wg.Wait()
	winners := 0
	var winner string
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if holders[i] == "" {
			winners++
			winner = fmt.Sprintf("v%d", i)
		}
	}
	if winners != 1 {
		t.Fatalf("%d claims won, want 1", winners)
	}
	for i := range n {
		if holders[i] != "" && holders[i] != winner {
			t.Fatalf("loser saw holder %q, want %q", holders[i], winner)
		}
	}
	if err := s.Release(ctx, "k", "not-the-holder"); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.Claim(ctx, "k", "x"); h != winner {
		t.Fatalf("release by non-holder freed the key")
	}
	_ = s.Release(ctx, "k", winner)
	if h, _ := s.Claim(ctx, "k", "x"); h != "" {
		t.Fatalf("key still held after release")
	}
}

func testDecimal(t *testing.T, s store.Store) {
	ctx := context.Background()
	body := `{"resourceType":"Observation","id":"dec","valueQuantity":{"value":1.50000000000000000001}}`
	if err := s.Put(ctx, ver("Observation", "dec", 1, time.Now(), body)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Read(ctx, "Observation", "dec")
	if err != nil || string(got.JSON) != body {
		t.Fatalf("decimal changed: %s", got.JSON)
	}
}

func testCommit(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	if err := s.Put(ctx, ver("Patient", "x", 1, now, `{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	vs := []*store.Version{
		ver("Patient", "x", 2, now.Add(time.Second), `{"x":2}`),
		ver("Observation", "y", 1, now.Add(time.Second), `{"y":1}`),
		{Type: "Patient", ID: "z", VersionID: 1, LastUpdated: now.Add(time.Second).Truncate(time.Microsecond), Method: "POST", JSON: []byte(`{"z":1}`),
			Keys: map[string][]string{"identifier": {"s|z"}}},
	}
	if err := s.Commit(ctx, vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		got, err := s.Read(ctx, v.Type, v.ID)
		if err != nil || string(got.JSON) != string(v.JSON) || got.VersionID != v.VersionID {
			t.Fatalf("%s/%s after commit: %v %+v", v.Type, v.ID, err, got)
		}
		if _, err := s.VRead(ctx, v.Type, v.ID, v.VersionID); err != nil {
			t.Fatalf("vread %s/%s: %v", v.Type, v.ID, err)
		}
	}
	found, err := s.Find(ctx, store.Query{Type: "Patient", Conditions: []store.Condition{{Key: "identifier", Values: []string{"s|z"}}}})
	if err != nil || len(found) != 1 || found[0].ID != "z" {
		t.Fatalf("find after commit: %v %v", err, found)
	}
	if err := s.Commit(ctx, []*store.Version{ver("Patient", "d", 1, now, `{}`), ver("Patient", "d", 2, now, `{}`)}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a resource twice in one commit: %v, want ErrInvalid", err)
	}
}

func testCommitConflict(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	if err := s.Put(ctx, ver("Patient", "x", 1, now, `{"x":1}`)); err != nil {
		t.Fatal(err)
	}
	vs := []*store.Version{
		ver("Patient", "y", 1, now, `{"y":1}`),
		ver("Patient", "x", 1, now, `{"x":"loser"}`), // version 1 exists: conflict
		ver("Observation", "z", 1, now, `{"z":1}`),
	}
	if err := s.Commit(ctx, vs); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("commit: %v, want ErrConflict", err)
	}
	for _, id := range []string{"y"} {
		if _, err := s.Read(ctx, "Patient", id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Patient/%s visible after a failed commit: %v", id, err)
		}
		if _, err := s.VRead(ctx, "Patient", id, 1); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Patient/%s history kept after a failed commit: %v", id, err)
		}
	}
	if _, err := s.Read(ctx, "Observation", "z"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Observation/z visible after a failed commit: %v", err)
	}
	got, _ := s.Read(ctx, "Patient", "x")
	if string(got.JSON) != `{"x":1}` || got.VersionID != 1 {
		t.Fatalf("x changed: %s", got.JSON)
	}
	h, _ := s.History(ctx, store.HistoryQuery{})
	if len(h) != 1 {
		t.Fatalf("history holds %d versions, want 1", len(h))
	}
	// the same ids can be committed afterwards
	vs[1] = ver("Patient", "x", 2, now.Add(time.Second), `{"x":2}`)
	if err := s.Commit(ctx, vs); err != nil {
		t.Fatalf("commit after rollback: %v", err)
	}
}

// testCommitReaders: commits write the same counter into A and B; a reader
// that sees counter n in A must then see at least n in B.
func testCommitReaders(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	body := func(n int) []byte { return []byte(fmt.Sprintf(`{"n":%d}`, n)) }
	if err := s.Commit(ctx, []*store.Version{ver("Patient", "A", 1, now, `{"n":1}`), ver("Patient", "B", 1, now, `{"n":1}`)}); err != nil {
		t.Fatal(err)
	}
	const commits = 15
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad error
	var mu sync.Mutex
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				a, err1 := s.Read(ctx, "Patient", "A")
				b, err2 := s.Read(ctx, "Patient", "B")
				if err1 != nil || err2 != nil {
					mu.Lock()
					bad = fmt.Errorf("read: %v %v", err1, err2)
					mu.Unlock()
					return
				}
				if b.VersionID < a.VersionID {
					mu.Lock()
					bad = fmt.Errorf("saw A at %d then B at %d: half a commit", a.VersionID, b.VersionID)
					mu.Unlock()
					return
				}
			}
		}()
	}
	for i := 2; i <= commits; i++ {
		ts := now.Add(time.Duration(i) * time.Second)
		vs := []*store.Version{ver("Patient", "A", int64(i), ts, string(body(i))), ver("Patient", "B", int64(i), ts, string(body(i)))}
		if err := s.Commit(ctx, vs); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if bad != nil {
		t.Fatal(bad)
	}
}

// testAppend: write-once versions stored in bulk are read, vread (version
// 1), found and counted like any; an existing id is a conflict.
func testAppend(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	var vs []*store.Version
	for i := range 5 {
		v := ver("AuditEvent", fmt.Sprintf("ae%d", i), 1, now, fmt.Sprintf(`{"resourceType":"AuditEvent","id":"ae%d"}`, i))
		v.Method = "POST"
		v.Patient = []string{"p1", "p2"}[i%2]
		v.Keys = map[string][]string{"subtype": {"read"}, "altid": {fmt.Sprintf("r%d", i%3)}}
		vs = append(vs, v)
	}
	if err := s.Append(ctx, vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		got, err := s.Read(ctx, v.Type, v.ID)
		if err != nil || string(got.JSON) != string(v.JSON) || got.Patient != v.Patient {
			t.Fatalf("read %s: %v %+v", v.ID, err, got)
		}
		got, err = s.VRead(ctx, v.Type, v.ID, 1)
		if err != nil || got.VersionID != 1 {
			t.Fatalf("vread %s: %v", v.ID, err)
		}
	}
	if _, err := s.Read(ctx, "AuditEvent", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read of a missing id: %v", err)
	}
	q := store.Query{Type: "AuditEvent", Filter: store.And(store.InPatient("p1"), store.Eq("subtype", "read"))}
	found, err := s.Find(ctx, q)
	if err != nil || len(found) != 3 {
		t.Fatalf("find: %d, %v", len(found), err)
	}
	if n, err := s.Count(ctx, q); err != nil || n != 3 {
		t.Fatalf("count: %d, %v", n, err)
	}
	page, total, err := s.Search(ctx, store.Query{Type: "AuditEvent", Filter: store.Eq("altid", "r0"), Limit: 1})
	if err != nil || total != 2 || len(page) != 1 || page[0].ID != "ae0" {
		t.Fatalf("search: %v %d %v", page, total, err)
	}
	// A second batch appends; an existing id is a conflict.
	more := ver("AuditEvent", "ae9", 1, now, `{"resourceType":"AuditEvent","id":"ae9"}`)
	if err := s.Append(ctx, []*store.Version{more}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Count(ctx, store.Query{Type: "AuditEvent"}); n != 6 {
		t.Fatalf("%d after a second batch, want 6", n)
	}
	if err := s.Append(ctx, []*store.Version{vs[0]}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("append of an existing id: %v", err)
	}
}
