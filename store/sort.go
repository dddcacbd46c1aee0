package store

import (
	"math"
	"sort"
	"strconv"
	"strings"
)

// SortValue is the value of v for one sort key, encoded so that string
// comparison gives the sort order (numbers are encoded order-preserving).
// Versions without a value sort last in both directions (as HAPI does).
func SortValue(v *Version, k SortKey) (string, bool) {
	switch k.Param {
	case "_id":
		return v.ID, true
	case "_lastUpdated":
		return encodeNum(float64(v.LastUpdated.UnixMicro())), true
	}
	if s, ok := v.SortStr[k.Param]; ok {
		return "s" + s, true
	}
	if n, ok := v.SortNum[k.Param]; ok {
		if k.Desc {
			return encodeNum(n[1]), true
		}
		return encodeNum(n[0]), true
	}
	return "", false
}

// encodeNum maps a float64 to a string whose byte order is numeric order.
func encodeNum(f float64) string {
	b := math.Float64bits(f)
	if f < 0 {
		b = ^b
	} else {
		b |= 1 << 63
	}
	return "n" + strconv.FormatUint(b, 16)
}

// PositionOf returns v's position for keyset paging under sort keys.
func PositionOf(v *Version, keys []SortKey) Position {
	p := Position{ID: v.ID}
	for _, k := range keys {
		s, ok := SortValue(v, k)
		if !ok {
			s = "\xff" // missing: last
		}
		p.Values = append(p.Values, s)
	}
	return p
}

// Less reports whether a comes before b under keys (then by id).
func Less(a, b Position, keys []SortKey) bool {
	for i, k := range keys {
		if i >= len(a.Values) || i >= len(b.Values) {
			break
		}
		x, y := a.Values[i], b.Values[i]
		if x == y {
			continue
		}
		if x == "\xff" || y == "\xff" { // missing values last either way
			return y == "\xff"
		}
		if k.Desc {
			return x > y
		}
		return x < y
	}
	return a.ID < b.ID
}

// SortPage sorts vs by keys, keeps those after q.After and cuts q.Limit:
// the in-memory form of a query's order and paging.
func SortPage(vs []*Version, q Query) []*Version {
	pos := make([]Position, len(vs))
	idx := make([]int, len(vs))
	for i, v := range vs {
		pos[i] = PositionOf(v, q.Sort)
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return Less(pos[idx[a]], pos[idx[b]], q.Sort) })
	out := make([]*Version, 0, len(vs))
	if q.Before != nil {
		// The Limit results just before the position, in order.
		end := 0
		for end < len(idx) && Less(pos[idx[end]], *q.Before, q.Sort) {
			end++
		}
		start := 0
		if q.Limit > 0 && end-q.Limit > 0 {
			start = end - q.Limit
		}
		for _, i := range idx[start:end] {
			out = append(out, vs[i])
		}
		return out
	}
	for _, i := range idx {
		if q.After != nil && !Less(*q.After, pos[i], q.Sort) {
			continue
		}
		out = append(out, vs[i])
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	return out
}

// EncodePosition and DecodePosition turn a Position into an opaque token.
func EncodePosition(p Position) string {
	parts := append([]string{p.ID}, p.Values...)
	for i, s := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(s, "%", "%25"), "\x1f", "%1F")
	}
	return strings.Join(parts, "\x1f")
}

// DecodePosition reverses EncodePosition.
func DecodePosition(s string) (Position, bool) {
	parts := strings.Split(s, "\x1f")
	if len(parts) == 0 || parts[0] == "" {
		return Position{}, false
	}
	for i, x := range parts {
		parts[i] = strings.ReplaceAll(strings.ReplaceAll(x, "%1F", "\x1f"), "%25", "%")
	}
	return Position{ID: parts[0], Values: parts[1:]}, true
}
