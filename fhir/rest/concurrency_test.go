package rest_test

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
)

const fxWriters = 20

// parallel runs f(i) for i in [0, n) at once (released together) and
// returns the responses; transport errors fail the test.
func fxParallel(t *testing.T, n int, f func(i int) (resp, error)) []resp {
	t.Helper()
	out := make([]resp, n)
	errs := make([]error, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			out[i], errs[i] = f(i)
		}()
	}
	start.Done()
	done.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	return out
}

func TestConcurrentIfMatchOneWinner(t *testing.T) {
	e := newEnv(t)
	fxStatus(t, e.Do("PUT", "/Patient/race", `{"resourceType":"Patient","id":"race","name":[{"family":"start"}]}`), http.StatusCreated)
	body := func(i int) string {
		return fmt.Sprintf(`{"resourceType":"Patient","id":"race","name":[{"family":"writer%d"}]}`, i)
	}
	rs := fxParallel(t, fxWriters, func(i int) (resp, error) {
		return fxDo(e, "PUT", "/Patient/race", body(i), "If-Match", `W/"1"`)
	})
	winner := -1
	for i, r := range rs {
		switch r.Status {
		case http.StatusOK:
			if winner >= 0 {
				t.Errorf("writers %d and %d both won", winner, i)
			}
			winner = i
		case http.StatusPreconditionFailed:
			fxIsOutcome(t, r)
		default:
			t.Errorf("writer %d: status %d, want 200 or 412: %s", i, r.Status, r.Body)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	g := fxWantETag(t, e, "/Patient/race", `W/"2"`)
	want := fmt.Sprintf("writer%d", winner)
	if got := fxStr(fxObj(t, g.Body), "name", 0, "family"); got != want {
		t.Errorf("final content %q, want the winner's %q", got, want)
	}
	if n := fxTotal(t, e, "/Patient/race/_history", "history"); n != 2 {
		t.Errorf("history has %d versions, want 2", n)
	}
}

func TestConcurrentUpdatesNoLostUpdate(t *testing.T) {
	e := newEnv(t)
	fxStatus(t, e.Do("PUT", "/Patient/many", `{"resourceType":"Patient","id":"many","name":[{"family":"start"}]}`), http.StatusCreated)
	rs := fxParallel(t, fxWriters, func(i int) (resp, error) {
		return fxDo(e, "PUT", "/Patient/many", fmt.Sprintf(`{"resourceType":"Patient","id":"many","name":[{"family":"writer%d"}]}`, i))
	})
	var versions []string
	for i, r := range rs {
		if r.Status != http.StatusOK && r.Status != http.StatusCreated {
			t.Errorf("writer %d: status %d: %s", i, r.Status, r.Body)
			continue
		}
		versions = append(versions, r.Header.Get("ETag"))
	}
	// Every successful write made its own version: 2..21, each once.
	sort.Strings(versions)
	seen := map[string]bool{}
	for _, v := range versions {
		if seen[v] {
			t.Errorf("two writes answered the same version %s", v)
		}
		seen[v] = true
	}
	for v := 2; v <= fxWriters+1; v++ {
		if !seen[fmt.Sprintf(`W/"%d"`, v)] {
			t.Errorf("no write answered version %d", v)
		}
	}
	final := fmt.Sprintf(`W/"%d"`, fxWriters+1)
	fxWantETag(t, e, "/Patient/many", final)
	h := fxGetBundle(t, e, "/Patient/many/_history?_count=100", "history")
	if *h.Total != fxWriters+1 || len(h.Entry) != fxWriters+1 {
		t.Errorf("history: total %d, %d entries, want %d", *h.Total, len(h.Entry), fxWriters+1)
	}
	// Each writer's content is one version of the history.
	contents := map[string]int{}
	for _, en := range h.Entry {
		contents[fxStr(fxObj(t, en.Resource), "name", 0, "family")]++
	}
	for i := range fxWriters {
		if n := contents[fmt.Sprintf("writer%d", i)]; n != 1 {
			t.Errorf("writer%d's content is in %d versions, want 1", i, n)
		}
	}
}

func TestConcurrentConditionalCreate(t *testing.T) {
	e := newEnv(t)
	rs := fxParallel(t, fxWriters, func(i int) (resp, error) {
		return fxDo(e, "POST", "/Patient",
			fmt.Sprintf(`{"resourceType":"Patient","identifier":[{"system":"http://sys","value":"123"}],"name":[{"family":"writer%d"}]}`, i),
			"If-None-Exist", "identifier=http://sys|123")
	})
	created := 0
	ids := map[string]bool{}
	for i, r := range rs {
		switch r.Status {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Errorf("request %d: status %d, want 200 or 201: %s", i, r.Status, r.Body)
			continue
		}
		ids[fxStr(fxObj(t, r.Body), "id")] = true
	}
	if created != 1 {
		t.Errorf("%d creates answered 201, want exactly 1", created)
	}
	if len(ids) != 1 {
		t.Errorf("answers name %d different ids, want 1: %v", len(ids), ids)
	}
	b := fxGetBundle(t, e, "/Patient?identifier=http://sys%7C123", "searchset")
	if *b.Total != 1 {
		t.Errorf("%d Patients with identifier http://sys|123, want 1", *b.Total)
	}
	if n := fxTotal(t, e, "/Patient/_history", "history"); n != 1 {
		t.Errorf("Patient history has %d versions, want 1", n)
	}
}

// TestConcurrentConditionalUpdate: conditional updates racing on criteria
// that match nothing yet. One creates the resource; every other one is an
// update of that resource (R4 3.1.0.4.3: one match → update it), so each
// request's content becomes a version and none is dropped.
func TestConcurrentConditionalUpdate(t *testing.T) {
	e := newEnv(t)
	body := func(i int) string {
		return fmt.Sprintf(`{"resourceType":"Patient","identifier":[{"system":"http://sys","value":"cu"}],"name":[{"family":"writer%d"}]}`, i)
	}
	rs := fxParallel(t, fxWriters, func(i int) (resp, error) {
		return fxDo(e, "PUT", "/Patient?identifier=http://sys%7Ccu", body(i))
	})
	created := 0
	ids := map[string]bool{}
	for i, r := range rs {
		switch r.Status {
		case http.StatusCreated:
			created++
		case http.StatusOK:
		default:
			t.Errorf("request %d: status %d, want 200 or 201: %s", i, r.Status, r.Body)
			continue
		}
		m := fxObj(t, r.Body)
		ids[fxStr(m, "id")] = true
		if got, want := fxStr(m, "name", 0, "family"), fmt.Sprintf("writer%d", i); got != want {
			t.Errorf("request %d: answered content of %q, want its own %q (update dropped)", i, got, want)
		}
	}
	if created != 1 {
		t.Errorf("%d answers were 201, want exactly 1", created)
	}
	if len(ids) != 1 {
		t.Fatalf("answers name %d ids, want 1: %v", len(ids), ids)
	}
	b := fxGetBundle(t, e, "/Patient?identifier=http://sys%7Ccu", "searchset")
	if *b.Total != 1 {
		t.Errorf("%d Patients with the identifier, want 1", *b.Total)
	}
	for id := range ids {
		if n := fxTotal(t, e, "/Patient/"+id+"/_history", "history"); n != fxWriters {
			t.Errorf("Patient/%s has %d versions, want %d (one per request)", id, n, fxWriters)
		}
	}
}

// TestConcurrentPatchesNoLostUpdate: JSON Patches applied at once each
// apply to the version current when they are stored, so every patch's
// change is in the final resource.
func TestConcurrentPatchesNoLostUpdate(t *testing.T) {
	e := newEnv(t)
	fxStatus(t, e.Do("PUT", "/Patient/pp", `{"resourceType":"Patient","id":"pp","identifier":[{"system":"http://start","value":"0"}]}`), http.StatusCreated)
	rs := fxParallel(t, fxWriters, func(i int) (resp, error) {
		return fxDo(e, "PATCH", "/Patient/pp", fmt.Sprintf(`[{"op":"add","path":"/identifier/-","value":{"system":"http://w","value":"%d"}}]`, i),
			"Content-Type", fxPatchCT)
	})
	for i, r := range rs {
		if r.Status != http.StatusOK {
			t.Errorf("patch %d: status %d: %s", i, r.Status, r.Body)
		}
	}
	g := fxWantETag(t, e, "/Patient/pp", fmt.Sprintf(`W/"%d"`, fxWriters+1))
	ids, _ := fxAt(fxObj(t, g.Body), "identifier").([]any)
	have := map[string]bool{}
	for _, id := range ids {
		have[fxStr(id, "value")] = true
	}
	for i := range fxWriters {
		if !have[fmt.Sprint(i)] {
			t.Errorf("patch %d's identifier is missing from the final resource", i)
		}
	}
	if len(ids) != fxWriters+1 {
		t.Errorf("%d identifiers, want %d", len(ids), fxWriters+1)
	}
}
