package trail_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/fhir/trail"
	"github.com/dossier-fhir/dossier/store"
)

// countingWrites counts the trail's store writes.
type countingWrites struct {
	store.Store
	writes atomic.Int64
}

func (c *countingWrites) Append(ctx context.Context, vs []*store.Version) error {
	c.writes.Add(1)
	return c.Store.Append(ctx, vs)
}

// testRepo returns a store on a fresh embedded engine and a repo on it
// (whose indexer the trail uses); export_test.go.
var testRepo = trail.TestRepo

// TestGroupCommit: concurrent requests share store writes, every event is
// stored and indexed in its patient's record, and each event is valid R4.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	ms, rp := testRepo(t, "trail")
	parser, err := resource.NewParser()
	if err != nil {
		t.Fatal(err)
	}
	st := &countingWrites{Store: ms}
	tr := trail.New(st, trail.Options{Index: rp.Index}) // no Begin: natural batching, no wait
	defer tr.Close()
	req := &access.Requester{Role: access.RoleProfessional, RPPS: "10000000001", Profession: "10", Mode: access.ModeCentre15, Subject: "s"}
	const n = 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tc := repo.Touch{Interaction: "read", Type: "Observation", ID: "o1", Patient: []string{"p1", "p2"}[i%2]}
			if err := tr.Trace(ctx, req, []repo.Touch{tc}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if a := st.writes.Load(); a >= n/2 {
		t.Errorf("%d store writes for %d concurrent events: no grouping", a, n)
	}
	for _, p := range []string{"p1", "p2"} {
		vs, err := ms.Find(ctx, store.Query{Type: "AuditEvent", Filter: store.And(store.InPatient(p), store.Eq("altid", "10000000001"), store.Eq("subtype", "read"))})
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != n/2 {
			t.Fatalf("%s: %d events, want %d", p, len(vs), n/2)
		}
		for _, v := range vs {
			if _, err := parser.Parse(v.JSON); err != nil {
				t.Fatalf("not valid R4: %v\n%s", err, v.JSON)
			}
			s := string(v.JSON)
			if !strings.Contains(s, `"code":"ETREAT"`) || !strings.Contains(s, `"reference":"Patient/`+p+`"`) {
				t.Errorf("event lacks the purpose or the patient: %s", s)
			}
			// Only these members: no clinical content can hide elsewhere.
			var m map[string]json.RawMessage
			_ = json.Unmarshal(v.JSON, &m)
			for k := range m {
				switch k {
				case "resourceType", "id", "meta", "type", "subtype", "action", "recorded", "outcome", "outcomeDesc",
					"purposeOfEvent", "agent", "source", "entity":
				default:
					t.Errorf("unexpected member %q", k)
				}
			}
		}
	}
}

// TestWaitForComing: the writer waits (up to MaxDelay) for requests on
// their way, so that their events share the commit, and never delays a
// lone request.
func TestWaitForComing(t *testing.T) {
	ctx := context.Background()
	ms, rp := testRepo(t, "trailwait")
	st := &countingWrites{Store: ms}
	tr := trail.New(st, trail.Options{Index: rp.Index, MaxDelay: time.Hour, MaxBatch: 2})
	defer tr.Close()
	req := &access.Requester{Role: access.RoleProfessional, RPPS: "10000000001", Profession: "10", Subject: "s"}
	trace := func(p string) chan error {
		done := make(chan error, 1)
		go func() {
			done <- tr.Trace(ctx, req, []repo.Touch{{Interaction: "read", Type: "Patient", ID: p, Patient: p}})
		}()
		return done
	}
	wait := func(done chan error) {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(time.Minute):
			t.Fatal("trace still waiting after a minute")
		}
	}

	// A lone request: stored without waiting for MaxDelay (an hour).
	arrived := tr.Begin()
	arrived()
	wait(trace("p1"))

	held := func(done chan error) {
		t.Helper()
		select {
		case err := <-done:
			t.Fatalf("stored (%v) while another request was on its way", err)
		case <-time.After(100 * time.Millisecond):
		}
	}

	// A request on its way holds the commit of another's event...
	arrived = tr.Begin()
	first := trace("p2")
	held(first)
	// ...which shares its write with the next event (here MaxBatch ends
	// the wait).
	w := st.writes.Load()
	second := trace("p3")
	wait(first)
	wait(second)
	if got := st.writes.Load() - w; got != 1 {
		t.Errorf("%d writes for the two events, want 1", got)
	}
	arrived()

	// A request that ends without events ends the wait.
	arrived = tr.Begin()
	third := trace("p4")
	held(third)
	arrived()
	wait(third)
}

// TestCloseStoresWaiting: Close ends a writer's wait, stores the events
// waiting (their request gets nil) and refuses later traces.
func TestCloseStoresWaiting(t *testing.T) {
	ctx := context.Background()
	ms, rp := testRepo(t, "trailclose")
	st := &countingWrites{Store: ms}
	tr := trail.New(st, trail.Options{Index: rp.Index, MaxDelay: time.Hour})
	req := &access.Requester{Role: access.RoleProfessional, RPPS: "10000000001", Profession: "10", Subject: "s"}
	touch := []repo.Touch{{Interaction: "read", Type: "Patient", ID: "p1", Patient: "p1"}}
	arrived := tr.Begin() // another request on its way: the writer waits
	defer arrived()
	done := make(chan error, 1)
	go func() { done <- tr.Trace(ctx, req, touch) }()
	select {
	case err := <-done:
		t.Fatalf("stored (%v) while another request was on its way", err)
	case <-time.After(100 * time.Millisecond):
	}
	closed := make(chan struct{})
	go func() { tr.Close(); close(closed) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("waiting trace at Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("waiting trace not stored by Close")
	}
	<-closed
	if n := st.writes.Load(); n != 1 {
		t.Errorf("%d writes, want 1", n)
	}
	if err := tr.Trace(ctx, req, touch); !errors.Is(err, trail.ErrClosed) {
		t.Errorf("Trace after Close: %v, want ErrClosed", err)
	}
}
