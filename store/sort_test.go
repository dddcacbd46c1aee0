package store

import (
	"fmt"
	"testing"
	"time"
)

func TestSortPage(t *testing.T) {
	mk := func(id string, date float64, name string) *Version {
		v := &Version{ID: id, LastUpdated: time.Unix(0, 0)}
		if date != 0 {
			v.SortNum = map[string][2]float64{"date": {date, date + 10}}
		}
		if name != "" {
			v.SortStr = map[string]string{"name": name}
		}
		return v
	}
	vs := []*Version{mk("a", 30, "b"), mk("b", 10, "a"), mk("c", 20, ""), mk("d", 0, "c"), mk("e", 20, "a")}
	ids := func(vs []*Version) string {
		s := ""
		for _, v := range vs {
			s += v.ID
		}
		return s
	}
	cases := []struct {
		sort []SortKey
		want string
	}{
		{nil, "abcde"},
		{[]SortKey{{Param: "date"}}, "bcead"},                  // missing date last
		{[]SortKey{{Param: "date", Desc: true}}, "aceb" + "d"}, // desc by hi, missing last
		{[]SortKey{{Param: "name"}, {Param: "date", Desc: true}}, "ebadc"},
		{[]SortKey{{Param: "_id", Desc: true}}, "edcba"},
	}
	for _, c := range cases {
		q := Query{Sort: c.sort}
		got := ids(SortPage(vs, q))
		if got != c.want {
			t.Errorf("sort %v: %s, want %s", c.sort, got, c.want)
		}
		// Page through 2 at a time forwards, then backwards from the end.
		var fwd []*Version
		var last *Position
		for i := 0; i < 5; i++ {
			p := SortPage(vs, Query{Sort: c.sort, After: last, Limit: 2})
			if len(p) == 0 {
				break
			}
			fwd = append(fwd, p...)
			pos := PositionOf(p[len(p)-1], c.sort)
			last = &pos
		}
		if ids(fwd) != c.want {
			t.Errorf("sort %v paged: %s, want %s", c.sort, ids(fwd), c.want)
		}
		all := SortPage(vs, q)
		pos := PositionOf(all[len(all)-1], c.sort)
		prev := SortPage(vs, Query{Sort: c.sort, Before: &pos, Limit: 2})
		if want := ids(all[len(all)-3 : len(all)-1]); ids(prev) != want {
			t.Errorf("sort %v before last: %s, want %s", c.sort, ids(prev), want)
		}
	}
	p := Position{ID: "x\x1fy%z", Values: []string{"a", "\xff"}}
	got, ok := DecodePosition(EncodePosition(p))
	if !ok || fmt.Sprint(got) != fmt.Sprint(p) {
		t.Errorf("position round trip: %v", got)
	}
}
