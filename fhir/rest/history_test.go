package rest_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

// fxCheckNewestFirst checks entries are ordered by response.lastModified,
// newest first, and that each carries an ETag.
func fxCheckNewestFirst(t *testing.T, what string, es []fxEntry) {
	t.Helper()
	for i, en := range es {
		if en.Response == nil || en.Response.Etag == "" || en.lastModified().IsZero() {
			t.Errorf("%s: entry %d lacks response etag/lastModified: %+v", what, i, en.Response)
			continue
		}
		if i > 0 && en.lastModified().After(es[i-1].lastModified()) {
			t.Errorf("%s: entry %d (%s) is newer than entry %d (%s)", what, i, en.key(), i-1, es[i-1].key())
		}
	}
}

func fxKeys(es []fxEntry) []string {
	out := make([]string, len(es))
	for i, en := range es {
		out[i] = en.key()
	}
	return out
}

func TestHistoryLevels(t *testing.T) {
	e := newEnv(t)
	fxStatus(t, e.Do("PUT", "/Patient/a", `{"resourceType":"Patient","id":"a","gender":"male"}`), http.StatusCreated)
	fxStatus(t, e.Do("PUT", "/Observation/o", `{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"}}`), http.StatusCreated)
	fxStatus(t, e.Do("PUT", "/Patient/a", `{"resourceType":"Patient","id":"a","gender":"female"}`), http.StatusOK)
	p := e.Do("POST", "/Patient", `{"resourceType":"Patient","gender":"other"}`)
	fxStatus(t, p, http.StatusCreated)
	bid := fxStr(fxObj(t, p.Body), "id")
	fxStatus(t, e.Do("DELETE", "/Patient/a", ""), http.StatusNoContent)

	cases := []struct {
		path string
		want []string // keys, newest first
	}{
		{"/Patient/a/_history", []string{
			e.URL + `/Patient/a W/"3"`, e.URL + `/Patient/a W/"2"`, e.URL + `/Patient/a W/"1"`}},
		{"/Patient/_history", []string{
			e.URL + `/Patient/a W/"3"`, e.URL + "/Patient/" + bid + ` W/"1"`, e.URL + `/Patient/a W/"2"`, e.URL + `/Patient/a W/"1"`}},
		{"/Observation/_history", []string{e.URL + `/Observation/o W/"1"`}},
		{"/_history", []string{
			e.URL + `/Patient/a W/"3"`, e.URL + "/Patient/" + bid + ` W/"1"`, e.URL + `/Patient/a W/"2"`,
			e.URL + `/Observation/o W/"1"`, e.URL + `/Patient/a W/"1"`}},
		{"/Encounter/_history", nil},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			b := fxGetBundle(t, e, c.path, "history")
			if *b.Total != len(c.want) {
				t.Errorf("total %d, want %d", *b.Total, len(c.want))
			}
			if got := fxKeys(b.Entry); !slices.Equal(got, c.want) {
				t.Errorf("entries:\n got %q\nwant %q", got, c.want)
			}
			fxCheckNewestFirst(t, c.path, b.Entry)
			for _, en := range b.Entry {
				if en.Request == nil || en.Response == nil {
					t.Errorf("entry %s lacks request/response", en.key())
					continue
				}
				del := en.Request.Method == "DELETE"
				if del == (len(en.Resource) != 0) {
					t.Errorf("entry %s: method %s with resource %q", en.key(), en.Request.Method, en.Resource)
				}
			}
		})
	}
	// The POST of b is recorded as a POST on the type.
	b := fxGetBundle(t, e, "/Patient/"+bid+"/_history", "history")
	if len(b.Entry) != 1 || b.Entry[0].Request.Method != "POST" || b.Entry[0].Request.URL != "Patient" {
		t.Errorf("history of a POSTed resource: %+v", b.Entry)
	}

	// _count=2 gives a next link; _count=0 gives a total only.
	b = fxGetBundle(t, e, "/_history?_count=2", "history")
	if len(b.Entry) != 2 || *b.Total != 5 || b.next() == "" {
		t.Errorf("_count=2: %d entries, total %d, next %q", len(b.Entry), *b.Total, b.next())
	}
	b = fxGetBundle(t, e, "/_history?_count=0", "history")
	if len(b.Entry) != 0 || *b.Total != 5 {
		t.Errorf("_count=0: %d entries, total %d", len(b.Entry), *b.Total)
	}
	b = fxGetBundle(t, e, "/_history?_count=5", "history")
	if len(b.Entry) != 5 || b.next() != "" {
		t.Errorf("_count=5: %d entries, next %q", len(b.Entry), b.next())
	}

	// Errors.
	for _, c := range []struct {
		path string
		want int
	}{
		{"/Patient/missing/_history", http.StatusNotFound},
		{"/Foo/_history", http.StatusNotFound},
		{"/Foo/x/_history", http.StatusNotFound},
		{"/_history?_count=abc", http.StatusBadRequest},
		{"/Patient/_history?_count=abc", http.StatusBadRequest},
		{"/Patient/a/_history?_count=abc", http.StatusBadRequest},
		{"/_history?_count=-1", http.StatusBadRequest},
		{"/_history?_since=notadate", http.StatusBadRequest},
		{"/Patient/_history?_since=2020-13-45T00:00:00Z", http.StatusBadRequest},
		{"/Patient/a/_history?_since=yesterday", http.StatusBadRequest},
		{"/_history?_cursor=garbage!", http.StatusBadRequest},
	} {
		fxOutcome(t, e.Do("GET", c.path, ""), c.want)
	}
}

func TestHistorySince(t *testing.T) {
	e := newEnv(t)
	fxStatus(t, e.Do("PUT", "/Patient/a", `{"resourceType":"Patient","id":"a","gender":"male"}`), http.StatusCreated)
	fxStatus(t, e.Do("PUT", "/Patient/b", `{"resourceType":"Patient","id":"b","gender":"male"}`), http.StatusCreated)
	time.Sleep(20 * time.Millisecond)
	since := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	fxStatus(t, e.Do("PUT", "/Patient/a", `{"resourceType":"Patient","id":"a","gender":"female"}`), http.StatusOK)
	fxStatus(t, e.Do("PUT", "/Observation/o", `{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"}}`), http.StatusCreated)

	s := url.QueryEscape(since.Format(time.RFC3339Nano))
	for _, c := range []struct {
		path string
		want []string
	}{
		{"/_history?_since=" + s, []string{e.URL + `/Observation/o W/"1"`, e.URL + `/Patient/a W/"2"`}},
		{"/Patient/_history?_since=" + s, []string{e.URL + `/Patient/a W/"2"`}},
		{"/Patient/a/_history?_since=" + s, []string{e.URL + `/Patient/a W/"2"`}},
		{"/Patient/b/_history?_since=" + s, nil},
		{"/_history?_since=" + url.QueryEscape(since.Add(time.Hour).Format(time.RFC3339)), nil},
		{"/_history?_since=2000-01-01T00:00:00Z", []string{e.URL + `/Observation/o W/"1"`, e.URL + `/Patient/a W/"2"`,
			e.URL + `/Patient/b W/"1"`, e.URL + `/Patient/a W/"1"`}},
	} {
		b := fxGetBundle(t, e, c.path, "history")
		if got := fxKeys(b.Entry); !slices.Equal(got, c.want) || *b.Total != len(c.want) {
			t.Errorf("%s: total %d, entries\n got %q\nwant %q", c.path, *b.Total, got, c.want)
		}
	}
	// _since is kept by next links.
	var got []string
	next := "/_history?_count=1&_since=" + s
	for next != "" {
		b := fxGetBundle(t, e, next, "history")
		got = append(got, fxKeys(b.Entry)...)
		next = b.next()
		if len(got) > 10 {
			t.Fatal("paging does not end")
		}
	}
	if want := []string{e.URL + `/Observation/o W/"1"`, e.URL + `/Patient/a W/"2"`}; !slices.Equal(got, want) {
		t.Errorf("paged _since:\n got %q\nwant %q", got, want)
	}
}

// TestHistoryPagingWhileWriting follows next links while other writes
// happen: the pages hold exactly the versions that existed when the first
// page was read, each once, newest first.
func TestHistoryPagingWhileWriting(t *testing.T) {
	e := newEnv(t)
	for i := range 5 {
		id := fmt.Sprintf("p%d", i)
		fxStatus(t, e.Do("PUT", "/Patient/"+id, `{"resourceType":"Patient","id":"`+id+`","gender":"male"}`), http.StatusCreated)
		fxStatus(t, e.Do("PUT", "/Observation/"+id, `{"resourceType":"Observation","id":"`+id+`","status":"final","code":{"text":"x"}}`), http.StatusCreated)
		fxStatus(t, e.Do("PUT", "/Patient/"+id, `{"resourceType":"Patient","id":"`+id+`","gender":"female"}`), http.StatusOK)
	}
	fxStatus(t, e.Do("DELETE", "/Observation/p2", ""), http.StatusNoContent)
	for i := range 3 {
		fxStatus(t, e.Do("PUT", "/Patient/p0", fmt.Sprintf(`{"resourceType":"Patient","id":"p0","birthDate":"197%d-01-01"}`, i)), http.StatusOK)
	}

	for _, level := range []string{"/_history", "/Patient/_history", "/Patient/p0/_history"} {
		t.Run(level, func(t *testing.T) {
			snapshot := fxGetBundle(t, e, level+"?_count=1000", "history")
			want := fxKeys(snapshot.Entry)
			if len(want) != *snapshot.Total || len(want) < 4 {
				t.Fatalf("snapshot: %d entries, total %d", len(want), *snapshot.Total)
			}
			fxCheckNewestFirst(t, level, snapshot.Entry)

			var got []fxEntry
			next := level + "?_count=2"
			for page := 0; next != ""; page++ {
				b := fxGetBundle(t, e, next, "history")
				if page == 0 && *b.Total != len(want) {
					t.Errorf("first page total %d, want %d", *b.Total, len(want))
				}
				if len(b.Entry) > 2 {
					t.Errorf("page %d has %d entries, _count=2", page, len(b.Entry))
				}
				got = append(got, b.Entry...)
				next = b.next()
				if page > 100 {
					t.Fatal("paging does not end")
				}
				// Writes between pages: a new resource, a new version of
				// one already listed, and of the instance being paged.
				fxStatus(t, e.Do("POST", "/Patient", `{"resourceType":"Patient","gender":"unknown"}`), http.StatusCreated)
				fxStatus(t, e.Do("PUT", "/Patient/p0", fmt.Sprintf(`{"resourceType":"Patient","id":"p0","birthDate":"19%02d-02-02"}`, 10+page)), http.StatusOK)
				fxStatus(t, e.Do("PUT", "/Observation/p1", fmt.Sprintf(`{"resourceType":"Observation","id":"p1","status":"final","code":{"text":"v%d"}}`, page)), http.StatusOK)
			}
			if gk := fxKeys(got); !slices.Equal(gk, want) {
				t.Errorf("paged entries differ from the snapshot:\n got %q\nwant %q", gk, want)
			}
			fxCheckNewestFirst(t, level+" paged", got)
		})
	}
}

// TestHistorySinceInclusive: _since selects versions "created at or after
// the given instant" (R4 3.1.0.10): a version whose lastUpdated equals
// _since is included.
func TestHistorySinceInclusive(t *testing.T) {
	e := newEnv(t)
	fxStatus(t, e.Do("PUT", "/Patient/a", `{"resourceType":"Patient","id":"a","gender":"male"}`), http.StatusCreated)
	time.Sleep(5 * time.Millisecond)
	r := e.Do("PUT", "/Patient/a", `{"resourceType":"Patient","id":"a","gender":"female"}`)
	fxStatus(t, r, http.StatusOK)
	lu := fxStr(fxObj(t, r.Body), "meta", "lastUpdated")
	b := fxGetBundle(t, e, "/Patient/a/_history?_since="+url.QueryEscape(lu), "history")
	if got, want := fxKeys(b.Entry), []string{e.URL + `/Patient/a W/"2"`}; !slices.Equal(got, want) || *b.Total != 1 {
		t.Errorf("_since=%s (the lastUpdated of version 2): total %d, entries %q, want %q", lu, *b.Total, got, want)
	}
}
