package store

import (
	"math/rand/v2"
	"testing"
)

// TestWithinAgrees: on versions of the given patients, a filter and its
// simplification Within those patients match the same versions.
func TestWithinAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	pats := []string{"a", "b", "c", "d"}
	var gen func(depth int) Filter
	gen = func(depth int) Filter {
		if depth > 3 || rng.IntN(3) == 0 {
			switch rng.IntN(3) {
			case 0:
				var ids []string
				for _, p := range pats {
					if rng.IntN(2) == 0 {
						ids = append(ids, p)
					}
				}
				return InPatient(ids...)
			case 1:
				return Eq("k", []string{"x", "y"}[rng.IntN(2)])
			}
			return All()
		}
		n := rng.IntN(3)
		var cs []Filter
		for range n {
			cs = append(cs, gen(depth+1))
		}
		switch rng.IntN(3) {
		case 0:
			return And(cs...)
		case 1:
			return Or(cs...)
		}
		return Not(gen(depth + 1))
	}
	for i := 0; i < 5000; i++ {
		f := gen(0)
		var ids []string
		for _, p := range pats {
			if rng.IntN(2) == 0 {
				ids = append(ids, p)
			}
		}
		w := f.Within(ids)
		for _, p := range ids {
			for _, k := range []string{"x", "y", "z"} {
				v := &Version{Patient: p, Keys: map[string][]string{"k": {k}}}
				if f.Match(v) != w.Match(v) {
					t.Fatalf("%v within %v = %v: differ on patient %s key %s", f, ids, w, p, k)
				}
			}
		}
	}
}
