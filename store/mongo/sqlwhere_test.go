package mongo_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dossier-fhir/dossier/store"
	"github.com/dossier-fhir/dossier/store/embedded"
	smongo "github.com/dossier-fhir/dossier/store/mongo"
)

// TestSQLAgreesWithMatch: on the embedded engine, Find (SQL superset
// refined in memory) and Count (SQL alone when the translation is exact)
// must give what Filter.Match gives over every version, for random
// filters over random versions.
func TestSQLAgreesWithMatch(t *testing.T) {
	ctx := context.Background()
	e, err := embedded.Start(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s, err := smongo.Open(ctx, e.URI(), "prop", e.Options("prop"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "ab", "abc", "b", "sys|x", "sys|y", "x", "é", "a.b", "q$r", "a<b", "x&y", `q"r`, `back\\slash`, "tab\tx"}
	keys := []string{"code", "name", "code:text", "a.b"}
	var all []*store.Version
	now := time.Now().Truncate(time.Microsecond)
	for i := 0; i < 60; i++ {
		v := &store.Version{Type: "Observation", ID: fmt.Sprintf("o%02d", i), VersionID: 1, LastUpdated: now, Method: "PUT", JSON: []byte(`{}`),
			Keys: map[string][]string{}, Ranges: map[string][]store.Range{}}
		if rng.IntN(3) > 0 {
			v.Patient = fmt.Sprintf("p%d", rng.IntN(4))
		}
		for _, k := range keys {
			for j := rng.IntN(3); j > 0; j-- {
				v.Keys[k] = append(v.Keys[k], words[rng.IntN(len(words))])
			}
		}
		for j := rng.IntN(3); j > 0; j-- {
			lo := float64(rng.IntN(100))
			v.Ranges["date"] = append(v.Ranges["date"], store.Range{Lo: lo, Hi: lo + float64(rng.IntN(20))})
		}
		if err := s.Put(ctx, v); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Read(ctx, v.Type, v.ID)
		all = append(all, got)
	}
	var gen func(depth int) store.Filter
	gen = func(depth int) store.Filter {
		k := keys[rng.IntN(len(keys))]
		w := words[rng.IntN(len(words))]
		switch n := rng.IntN(9); {
		case n == 0 && depth < 3:
			return store.And(gen(depth+1), gen(depth+1))
		case n == 1 && depth < 3:
			return store.Or(gen(depth+1), gen(depth+1))
		case n == 2 && depth < 3:
			return store.Not(gen(depth + 1))
		case n == 3:
			return store.Prefix(k, w)
		case n == 4:
			return store.Contains(k, w)
		case n == 5:
			cmps := []string{"lt", "le", "gt", "ge"}
			fields := []string{"lo", "hi"}
			return store.InRange("date", store.Bound{Field: fields[rng.IntN(2)], Cmp: cmps[rng.IntN(4)], V: float64(rng.IntN(120))})
		case n == 6:
			return store.Exists([]string{"code", "date", "name"}[rng.IntN(3)])
		case n == 7:
			return store.InPatient(fmt.Sprintf("p%d", rng.IntN(4)))
		default:
			return store.Eq(k, w, words[rng.IntN(len(words))])
		}
	}
	for i := 0; i < 300; i++ {
		f := gen(0)
		want := 0
		for _, v := range all {
			if f.Match(v) {
				want++
			}
		}
		q := store.Query{Type: "Observation", Filter: f}
		found, err := s.Find(ctx, q)
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		n, err := s.Count(ctx, q)
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		if len(found) != want || int(n) != want {
			t.Fatalf("filter %v: Find %d, Count %d, Match %d", f, len(found), n, want)
		}
		// Pages in id order (served by SQL ORDER BY/LIMIT when the
		// translation is exact): walking them forward gives every match
		// once, in order; Search's total is the count.
		var ids []string
		for _, v := range store.SortPage(slices.Clone(found), store.Query{}) {
			ids = append(ids, v.ID)
		}
		var walked []string
		pq := store.Query{Type: "Observation", Filter: f, Limit: 1 + rng.IntN(4)}
		for steps := 0; steps < 200; steps++ {
			page, total, err := s.Search(ctx, pq)
			if err != nil {
				t.Fatal(err)
			}
			if int(total) != want {
				t.Fatalf("filter %v: Search total %d, want %d", f, total, want)
			}
			for _, v := range page {
				walked = append(walked, v.ID)
			}
			if len(page) < pq.Limit {
				break
			}
			pq.After = &store.Position{ID: page[len(page)-1].ID}
		}
		if !slices.Equal(walked, ids) {
			t.Fatalf("filter %v: paging gives %v, want %v", f, walked, ids)
		}
		if len(ids) > 2 {
			// The previous page of the last one.
			last := ids[len(ids)-1]
			prev, err := s.Find(ctx, store.Query{Type: "Observation", Filter: f, Limit: 2, Before: &store.Position{ID: last}})
			if err != nil {
				t.Fatal(err)
			}
			if len(prev) != 2 || prev[0].ID != ids[len(ids)-3] || prev[1].ID != ids[len(ids)-2] {
				t.Fatalf("filter %v: page before %s is %v", f, last, prev)
			}
		}
	}
}
