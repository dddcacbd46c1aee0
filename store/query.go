package store

import (
	"fmt"
	"strings"
)

// Range is a numeric interval stored for a search parameter: a date as
// microseconds since the epoch (the whole period a partial date covers), a
// number or a quantity with the interval its precision implies.
type Range struct {
	Lo float64
	Hi float64
}

// Op is the operator of a Filter node.
type Op int

// Filter operators.
const (
	// OpAll matches everything (an empty AND).
	OpAll Op = iota
	// OpAnd: every child matches.
	OpAnd
	// OpOr: at least one child matches.
	OpOr
	// OpNot: the one child does not match.
	OpNot
	// OpEq: Keys[Key] holds one of Values ("_id" is the logical id).
	OpEq
	// OpPrefix: Keys[Key] holds a value starting with one of Values.
	OpPrefix
	// OpContains: Keys[Key] holds a value containing one of Values.
	OpContains
	// OpRange: Ranges[Key] holds an interval meeting every Bound.
	OpRange
	// OpExists: Keys[Key] or Ranges[Key] is present.
	OpExists
	// OpPatient: the version belongs to the compartment of one of the
	// patients in Values (Version.Patient). Stores answer it from their
	// per-patient layout, so a patient's search costs what the record does.
	OpPatient
)

// Bound is one constraint on a stored Range: Field is "lo" or "hi",
// Cmp one of "lt", "le", "gt", "ge".
type Bound struct {
	Field string
	Cmp   string
	V     float64
}

// Filter is a backend-neutral search condition tree. search builds it;
// each store translates it (bson for MongoDB) and Match evaluates it in
// memory, so both forms always agree.
type Filter struct {
	Op       Op
	Key      string
	Values   []string
	Bounds   []Bound
	Children []Filter
}

// Convenience constructors.
func All() Filter                            { return Filter{Op: OpAll} }
func And(fs ...Filter) Filter                { return Filter{Op: OpAnd, Children: fs} }
func Or(fs ...Filter) Filter                 { return Filter{Op: OpOr, Children: fs} }
func Not(f Filter) Filter                    { return Filter{Op: OpNot, Children: []Filter{f}} }
func Eq(key string, values ...string) Filter { return Filter{Op: OpEq, Key: key, Values: values} }
func Prefix(key string, values ...string) Filter {
	return Filter{Op: OpPrefix, Key: key, Values: values}
}
func Contains(key string, values ...string) Filter {
	return Filter{Op: OpContains, Key: key, Values: values}
}
func InRange(key string, bounds ...Bound) Filter {
	return Filter{Op: OpRange, Key: key, Bounds: bounds}
}
func Exists(key string) Filter       { return Filter{Op: OpExists, Key: key} }
func InPatient(ids ...string) Filter { return Filter{Op: OpPatient, Values: ids} }

// Match evaluates f on v in memory. It is the reference semantics of
// every store's translation of f.
func (f Filter) Match(v *Version) bool {
	switch f.Op {
	case OpAll:
		return true
	case OpAnd:
		for _, c := range f.Children {
			if !c.Match(v) {
				return false
			}
		}
		return true
	case OpOr:
		for _, c := range f.Children {
			if c.Match(v) {
				return true
			}
		}
		return false
	case OpNot:
		return len(f.Children) == 1 && !f.Children[0].Match(v)
	case OpEq, OpPrefix, OpContains:
		have := v.Keys[f.Key]
		if f.Key == "_id" {
			have = []string{v.ID}
		}
		for _, h := range have {
			for _, w := range f.Values {
				switch {
				case f.Op == OpEq && h == w,
					f.Op == OpPrefix && strings.HasPrefix(h, w),
					f.Op == OpContains && strings.Contains(h, w):
					return true
				}
			}
		}
		return false
	case OpRange:
		for _, r := range v.Ranges[f.Key] {
			if r.meets(f.Bounds) {
				return true
			}
		}
		return false
	case OpExists:
		return len(v.Keys[f.Key]) > 0 || len(v.Ranges[f.Key]) > 0
	case OpPatient:
		for _, p := range f.Values {
			if v.Patient == p && p != "" {
				return true
			}
		}
		return false
	}
	return false
}

func (r Range) meets(bs []Bound) bool {
	for _, b := range bs {
		x := r.Lo
		if b.Field == "hi" {
			x = r.Hi
		}
		ok := false
		switch b.Cmp {
		case "lt":
			ok = x < b.V
		case "le":
			ok = x <= b.V
		case "gt":
			ok = x > b.V
		case "ge":
			ok = x >= b.V
		}
		if !ok {
			return false
		}
	}
	return true
}

// PatientsOf returns the patient ids an AND-ed OpPatient condition at the
// top of f restricts the search to (ok=false when f is not so restricted).
func (f Filter) PatientsOf() ([]string, bool) {
	switch f.Op {
	case OpPatient:
		return f.Values, true
	case OpAnd:
		for _, c := range f.Children {
			if ids, ok := c.PatientsOf(); ok {
				return ids, true
			}
		}
	}
	return nil, false
}

// SortKey orders results: by Param's sort value (Version.SortStr or
// SortNum), descending when Desc. "_id" and "_lastUpdated" are built in.
type SortKey struct {
	Param string
	Desc  bool
}

func (f Filter) String() string {
	switch f.Op {
	case OpAnd, OpOr:
		parts := make([]string, len(f.Children))
		for i, c := range f.Children {
			parts[i] = c.String()
		}
		op := " AND "
		if f.Op == OpOr {
			op = " OR "
		}
		return "(" + strings.Join(parts, op) + ")"
	case OpNot:
		return "NOT " + f.Children[0].String()
	}
	return fmt.Sprintf("%d(%s,%d values)", f.Op, f.Key, len(f.Values)+len(f.Bounds))
}

// Within returns f for versions known to belong to one of the patients
// ids: each OpPatient condition is decided when it holds for all of them
// or for none (Match gives the same result on such versions), and the
// tree is simplified. A search restricted to a record thus hands the
// store only the conditions that still depend on the version.
func (f Filter) Within(ids []string) Filter {
	if len(ids) == 0 {
		return f
	}
	switch f.Op {
	case OpPatient:
		in := 0
		for _, id := range ids {
			for _, v := range f.Values {
				if v == id && id != "" {
					in++
					break
				}
			}
		}
		switch in {
		case len(ids):
			return All()
		case 0:
			return None()
		}
		return f
	case OpAnd, OpOr:
		cs := make([]Filter, len(f.Children))
		for i, c := range f.Children {
			cs[i] = c.Within(ids)
		}
		if f.Op == OpAnd {
			return AndOf(cs...)
		}
		return OrOf(cs...)
	case OpNot:
		if len(f.Children) != 1 {
			return f
		}
		c := f.Children[0].Within(ids)
		switch {
		case c.Op == OpAll:
			return None()
		case isNone(c):
			return All()
		}
		return Not(c)
	}
	return f
}

// None matches nothing (an empty OR).
func None() Filter { return Or() }

func isNone(f Filter) bool { return f.Op == OpOr && len(f.Children) == 0 }

// AndOf is And simplified: All children are dropped, a None child makes
// it None, one child is itself.
func AndOf(fs ...Filter) Filter {
	var keep []Filter
	for _, f := range fs {
		switch {
		case f.Op == OpAll:
			continue
		case isNone(f):
			return None()
		}
		keep = append(keep, f)
	}
	switch len(keep) {
	case 0:
		return All()
	case 1:
		return keep[0]
	}
	return And(keep...)
}

// OrOf is Or simplified: an All child makes it All, None children are
// dropped, one child is itself.
func OrOf(fs ...Filter) Filter {
	var keep []Filter
	for _, f := range fs {
		switch {
		case f.Op == OpAll:
			return All()
		case isNone(f):
			continue
		}
		keep = append(keep, f)
	}
	if len(keep) == 1 {
		return keep[0]
	}
	return Or(keep...)
}

// Restrict ANDs an access filter into a query filter, simplified for the
// patients the query is restricted to (see Within).
func Restrict(q, access Filter) Filter {
	if ids, ok := q.PatientsOf(); ok {
		access = access.Within(ids)
	}
	switch {
	case access.Op == OpAll:
		return q
	case isNone(access):
		return access
	}
	return And(q, access)
}
