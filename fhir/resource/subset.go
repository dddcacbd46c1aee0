package resource

import (
	"encoding/json"
	"strings"

	"github.com/dossier-fhir/dossier/fhir/outcome"
)

const subsettedSystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"

// Subset reduces a resource per _summary and _elements (R4 search
// 3.1.1.5.x) and tags it SUBSETTED when anything was removed:
//
//   - summary "" or "false" without elements, or "count": unchanged;
//   - elements: resourceType, id, meta, and the listed top-level elements
//     (a choice element named without its type, e.g. "value", keeps every
//     value[x] form; a primitive's "_name" twin follows it); a "Type."
//     prefix is accepted. When elements are given, _summary is ignored
//     (the spec says not to combine them);
//   - "text": resourceType, id, meta, text;
//   - "data": everything but text.
//
// "_summary=true" needs each type's isSummary elements, which the
// definitions this project carries do not include: it is refused (400)
// rather than approximated.
func Subset(data []byte, summary string, elements []string) ([]byte, error) {
	if len(elements) == 0 && (summary == "" || summary == "false" || summary == "count") {
		return data, nil
	}
	obj, err := ParseObject(data)
	if err != nil {
		return nil, outcome.Wrap(err, outcome.Internal, "exception", "stored resource is not valid JSON")
	}
	typ, _ := obj.GetString("resourceType")
	keep := func(string) bool { return true }
	switch {
	case len(elements) > 0:
		want := map[string]bool{}
		for _, e := range elements {
			e = strings.TrimSpace(e)
			e = strings.TrimPrefix(e, typ+".")
			if e != "" {
				want[e] = true
			}
		}
		keep = func(k string) bool {
			k = strings.TrimPrefix(k, "_")
			if want[k] {
				return true
			}
			for w := range want { // choice element: value → valueQuantity
				if strings.HasPrefix(k, w) && len(k) > len(w) && k[len(w)] >= 'A' && k[len(w)] <= 'Z' {
					return true
				}
			}
			return false
		}
	case summary == "text":
		keep = func(k string) bool { return k == "text" }
	case summary == "data":
		keep = func(k string) bool { return k != "text" }
	case summary == "true":
		return nil, outcome.New(outcome.Invalid, "not-supported",
			"_summary=true is not supported (use _elements, or _summary=text, data or count)").WithExpression("_summary")
	default:
		return nil, outcome.New(outcome.Invalid, "invalid", "_summary must be true, text, data, count or false").WithExpression("_summary")
	}
	out := Object{}
	removed := false
	var meta json.RawMessage
	for _, f := range obj {
		switch f.Key {
		case "resourceType", "id":
			out = append(out, f)
		case "meta":
			meta = f.Value
		default:
			if keep(f.Key) {
				out = append(out, f)
			} else {
				removed = true
			}
		}
	}
	if !removed {
		return data, nil
	}
	m := Object{}
	if meta != nil {
		if mo, err := ParseObject(meta); err == nil {
			m = mo
		}
	}
	var tags []map[string]any
	if raw, ok := m.Get("tag"); ok {
		_ = json.Unmarshal(raw, &tags)
	}
	has := false
	for _, t := range tags {
		if t["system"] == subsettedSystem && t["code"] == "SUBSETTED" {
			has = true
		}
	}
	if !has {
		tags = append(tags, map[string]any{"system": subsettedSystem, "code": "SUBSETTED"})
		raw, _ := json.Marshal(tags)
		m = m.Set("tag", raw)
	}
	// meta goes back right after id
	res := Object{}
	for _, f := range out {
		res = append(res, f)
		if f.Key == "id" {
			res = append(res, Field{Key: "meta", Value: m.Marshal()})
		}
	}
	if _, ok := out.Get("id"); !ok {
		res = append(res, Field{Key: "meta", Value: m.Marshal()})
	}
	return res.Marshal(), nil
}
