package profile

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
)

// A synthetic profile exercising what the shipped ones do not: fixed
// values, closed slicing, type slices of a choice element, pattern on a
// single CodeableConcept, max on a plain element, a Coding binding to a
// ValueSet including another ValueSet.
const genericSD = `{
  "resourceType": "StructureDefinition", "url": "http://example.org/sd/obs", "name": "Obs",
  "status": "active", "kind": "resource", "abstract": false, "type": "Observation",
  "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation", "derivation": "constraint",
  "differential": {"element": [
    {"id": "Observation", "path": "Observation"},
    {"id": "Observation.status", "path": "Observation.status", "fixedCode": "final"},
    {"id": "Observation.code", "path": "Observation.code", "patternCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]}},
    {"id": "Observation.identifier", "path": "Observation.identifier", "max": "2",
     "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "closed"}},
    {"id": "Observation.identifier:a", "path": "Observation.identifier", "sliceName": "a", "min": 1, "max": "1"},
    {"id": "Observation.identifier:a.system", "path": "Observation.identifier.system", "fixedUri": "urn:a"},
    {"id": "Observation.identifier:b", "path": "Observation.identifier", "sliceName": "b", "max": "1"},
    {"id": "Observation.identifier:b.system", "path": "Observation.identifier.system", "fixedUri": "urn:b"},
    {"id": "Observation.value[x]", "path": "Observation.value[x]", "type": [{"code": "Quantity"}, {"code": "CodeableConcept"}]},
    {"id": "Observation.value[x]:valueQuantity", "path": "Observation.value[x]", "sliceName": "valueQuantity", "type": [{"code": "Quantity"}]},
    {"id": "Observation.value[x]:valueQuantity.unit", "path": "Observation.value[x].unit", "min": 1},
    {"id": "Observation.value[x]:valueQuantity.system", "path": "Observation.value[x].system", "fixedUri": "http://unitsofmeasure.org"},
    {"id": "Observation.interpretation", "path": "Observation.interpretation"},
    {"id": "Observation.interpretation.coding", "path": "Observation.interpretation.coding",
     "binding": {"strength": "required", "valueSet": "http://example.org/vs/outer"}}
  ]}
}`

const genericVS = `{"resourceType": "ValueSet", "url": "http://example.org/vs/inner", "status": "active",
  "compose": {"include": [{"system": "http://example.org/cs", "concept": [{"code": "H"}, {"code": "L"}, {"code": "X"}]}]}}`
const genericVS2 = `{"resourceType": "ValueSet", "url": "http://example.org/vs/outer", "status": "active",
  "compose": {"include": [{"valueSet": ["http://example.org/vs/inner"]}], "exclude": [{"system": "http://example.org/cs", "concept": [{"code": "X"}]}]}}`

const genericObs = `{"resourceType": "Observation", "meta": {"profile": ["http://example.org/sd/obs"]},
  "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}], "text": "Poids"},
  "identifier": [{"system": "urn:a", "value": "1"}],
  "valueQuantity": {"value": 72.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
  "interpretation": [{"coding": [{"system": "http://example.org/cs", "code": "H"}]}]}`

func TestGenericDifferential(t *testing.T) {
	s, err := Load(fstest.MapFS{
		"StructureDefinition-obs.json": {Data: []byte(genericSD)},
		"ValueSet-inner.json":          {Data: []byte(genericVS)},
		"ValueSet-outer.json":          {Data: []byte(genericVS2)},
		"Bundle-ignored.json":          {Data: []byte(`not even json`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		edits []edit
		want  []string
	}{
		{"ok", nil, nil},
		{"fixed code", []edit{set("status", `"preliminary"`)}, []string{"error value Observation.status"}},
		{"pattern on CodeableConcept", []edit{set("code.coding.0.code", `"8302-2"`)}, []string{"error value Observation.code"}},
		{"closed slicing", []edit{set("identifier", `[{"system":"urn:a","value":"1"},{"system":"urn:c","value":"2"}]`)}, []string{"error structure Observation.identifier[1]"}},
		{"max on element", []edit{set("identifier", `[{"system":"urn:a","value":"1"},{"system":"urn:b","value":"2"},{"system":"urn:b","value":"3"}]`)},
			[]string{"error structure Observation.identifier", "error structure Observation.identifier"}},
		{"required slice", []edit{set("identifier", `[{"system":"urn:b","value":"2"}]`)}, []string{"error required Observation.identifier"}},
		{"type slice child", []edit{del("valueQuantity.unit")}, []string{"error required Observation.value.unit"}},
		{"type slice fixed", []edit{set("valueQuantity.system", `"http://example.org/units"`)}, []string{"error value Observation.value.system"}},
		{"other allowed type", []edit{del("valueQuantity"), set("valueCodeableConcept", `{"text":"lourd"}`)}, nil},
		{"type not allowed", []edit{del("valueQuantity"), set("valueString", `"lourd"`)}, []string{"error structure Observation.value"}},
		{"binding through included ValueSet", []edit{set("interpretation.0.coding.0.code", `"L"`)}, nil},
		{"binding excluded code", []edit{set("interpretation.0.coding.0.code", `"X"`)}, []string{"error code-invalid Observation.interpretation[0].coding[0]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := summary(s.Validate("Observation", apply(t, genericObs, c.edits), false))
			want := append([]string(nil), c.want...)
			sort.Strings(want)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func TestLoadRefusesWhatItCannotApply(t *testing.T) {
	sd := func(elements string) string {
		return `{"resourceType": "StructureDefinition", "url": "http://example.org/sd/p", "name": "P", "status": "active",
		  "kind": "resource", "abstract": false, "type": "Patient", "derivation": "constraint",
		  "differential": {"element": [` + elements + `]}}`
	}
	cases := map[string]string{
		"exists discriminator":    sd(`{"id": "Patient.identifier", "path": "Patient.identifier", "slicing": {"discriminator": [{"type": "exists", "path": "period"}], "rules": "open"}}`),
		"slice without value":     sd(`{"id": "Patient.identifier", "path": "Patient.identifier", "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}}, {"id": "Patient.identifier:a", "path": "Patient.identifier", "sliceName": "a"}`),
		"unknown ValueSet":        sd(`{"id": "Patient.gender", "path": "Patient.gender", "binding": {"strength": "required", "valueSet": "http://example.org/vs/none"}}`),
		"FHIRPath outside subset": sd(`{"id": "Patient.name", "path": "Patient.name", "constraint": [{"key": "x", "severity": "error", "human": "x", "expression": "given.count() > 1"}]}`),
		"bad regex":               sd(`{"id": "Patient.gender", "path": "Patient.gender", "type": [{"code": "code", "extension": [{"url": "` + RegexURL + `", "valueString": "("}]}]}`),
		"reslicing":               sd(`{"id": "Patient.identifier:a/b", "path": "Patient.identifier", "sliceName": "a/b"}`),
	}
	for name, body := range cases {
		if _, err := Load(fstest.MapFS{"StructureDefinition-p.json": {Data: []byte(body)}}); err == nil {
			t.Errorf("%s: loaded", name)
		} else if !strings.Contains(err.Error(), "profile:") {
			t.Errorf("%s: %v", name, err)
		}
	}
	filter := `{"resourceType": "ValueSet", "url": "http://example.org/vs/f", "status": "active",
	  "compose": {"include": [{"system": "http://loinc.org", "filter": [{"property": "CLASS", "op": "=", "value": "X"}]}]}}`
	if _, err := Load(fstest.MapFS{"ValueSet-f.json": {Data: []byte(filter)}}); err == nil {
		t.Error("ValueSet filter loaded")
	}
}
