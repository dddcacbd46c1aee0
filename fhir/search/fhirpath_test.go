package search

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// decode parses JSON the way the server does: numbers stay json.Number.
func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("bad test JSON: %v\n%s", err, s)
	}
	return m
}

// js parses a JSON value for use as an expected result.
func js(t *testing.T, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("bad expected JSON: %v\n%s", err, s)
	}
	return v
}

const testObservation = `{
  "resourceType": "Observation",
  "id": "o1",
  "meta": {"lastUpdated": "2024-01-02T03:04:05Z", "tag": [{"system": "urn:t", "code": "a"}]},
  "contained": [
    {"resourceType": "Patient", "id": "p1", "name": [{"family": "Inside"}]},
    {"resourceType": "Device", "id": "d1"}
  ],
  "extension": [
    {"url": "http://example.org/a", "valueString": "A"},
    {"url": "http://example.org/b", "valueCodeableConcept": {"text": "B"}}
  ],
  "status": "final",
  "code": {"coding": [{"system": "http://loinc.org", "code": "1-8"}], "text": "Code"},
  "subject": {"reference": "Patient/123"},
  "focus": [
    {"reference": "http://x.org/fhir/Patient/9/_history/2"},
    {"reference": "#p1"},
    {"reference": "#d1"},
    {"type": "Patient", "identifier": {"value": "mrn"}},
    {"type": "http://hl7.org/fhir/StructureDefinition/Group", "identifier": {"value": "g"}},
    {"reference": "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"},
    {"display": "just text"}
  ],
  "effectiveDateTime": "2024-01-01",
  "valueQuantity": {"value": 6.3, "unit": "mmol/l"},
  "component": [
    {"code": {"text": "c1"}, "valueQuantity": {"value": 1}},
    {"code": {"text": "c2"}, "valueCodeableConcept": {"text": "cc"}},
    {"code": {"text": "c3"}, "valueString": "s"}
  ]
}`

func TestEvaluate(t *testing.T) {
	obs := decode(t, testObservation)
	tests := []struct {
		expr string
		want string // JSON array
	}{
		// Navigation, first step as type name, flattening.
		{"Observation.status", `["final"]`},
		{"Observation.code.coding.code", `["1-8"]`},
		{"Observation.component.code.text", `["c1","c2","c3"]`},
		{"status", `["final"]`},
		{"Patient.status", `[]`},
		{"Resource.id", `["o1"]`},
		{"DomainResource.id", `["o1"]`},
		{"Resource.meta.lastUpdated", `["2024-01-02T03:04:05Z"]`},
		{"Observation.nothing.here", `[]`},
		{"Observation.`status`", `["final"]`},
		// Choice elements.
		{"Observation.value", `[{"value":6.3,"unit":"mmol/l"}]`},
		{"Observation.value as Quantity", `[{"value":6.3,"unit":"mmol/l"}]`},
		{"Observation.value.as(Quantity)", `[{"value":6.3,"unit":"mmol/l"}]`},
		{"Observation.value.ofType(FHIR.Quantity)", `[{"value":6.3,"unit":"mmol/l"}]`},
		{"Observation.value as CodeableConcept", `[]`},
		{"(Observation.value as Quantity).unit", `["mmol/l"]`},
		{"Observation.effective", `["2024-01-01"]`},
		{"Observation.effective as dateTime", `["2024-01-01"]`},
		{"Observation.effective.as(DateTime)", `["2024-01-01"]`},
		{"Observation.effective as Period", `[]`},
		{"Observation.component.value as Quantity", `[{"value":1}]`},
		{"(Observation.component.value as CodeableConcept).text", `["cc"]`},
		{"Observation.component.value.as(string)", `["s"]`},
		{"Observation.component.value.as(System.String)", `["s"]`},
		{"Observation.value is Quantity", `[true]`},
		{"Observation.value is Age", `[false]`},
		{"Observation.value.is(Quantity)", `[true]`},
		{"Observation.status is string", `[true]`},
		// Union removes duplicates and keeps order.
		{"Observation.status | Observation.id", `["final","o1"]`},
		{"Observation.status | Observation.status", `["final"]`},
		{"Observation.status.union(Observation.id)", `["final","o1"]`},
		{"Observation.status.combine(Observation.status)", `["final","final"]`},
		// where and comparisons.
		{"Observation.component.where(code.text = 'c2').value", `[{"text":"cc"}]`},
		{"Observation.component.where(code.text != 'c2').code.text", `["c1","c3"]`},
		{"Observation.component.where($this.code.text ~ 'C3').code.text", `["c3"]`},
		{"Observation.component.select(code.text)", `["c1","c2","c3"]`},
		{"Observation.component.where(value.exists()).count()", `[3]`},
		{"Observation.value.value = 6.30", `[true]`},
		{"Observation.value.value > 6", `[true]`},
		{"Observation.value.value < 6", `[false]`},
		{"'final' in Observation.status", `[true]`},
		{"Observation.component.code.text contains 'c9'", `[false]`},
		// resolve() is X.
		{"Observation.subject.where(resolve() is Patient)", `[{"reference":"Patient/123"}]`},
		{"Observation.subject.where(resolve() is Group)", `[]`},
		{"Observation.focus.where(resolve() is Patient)", `[
			{"reference": "http://x.org/fhir/Patient/9/_history/2"},
			{"reference": "#p1"},
			{"type": "Patient", "identifier": {"value": "mrn"}}]`},
		{"Observation.focus.where(resolve() is Device)", `[{"reference":"#d1"}]`},
		{"Observation.focus.where(resolve() is Group)", `[{"type": "http://hl7.org/fhir/StructureDefinition/Group", "identifier": {"value": "g"}}]`},
		{"Observation.focus.where(resolve() is Resource).count()", `[5]`},
		{"Observation.focus.resolve().name.family", `["Inside"]`},
		{"Observation.subject.resolve()", `[]`}, // a stand-in, not JSON
		// Extensions.
		{"Observation.extension('http://example.org/a').value", `["A"]`},
		{"Observation.extension.where(url = 'http://example.org/b').value.text", `["B"]`},
		{"Observation.extension('http://example.org/none').value", `[]`},
		// exists / empty / not / and / or.
		{"Observation.value.exists()", `[true]`},
		{"Observation.method.exists()", `[false]`},
		{"Observation.component.exists(code.text = 'c3')", `[true]`},
		{"Observation.component.all(code.exists())", `[true]`},
		{"Observation.method.empty()", `[true]`},
		{"Observation.method.empty().not()", `[false]`},
		{"Observation.method.not()", `[]`},
		{"Observation.value.exists() and Observation.status = 'final'", `[true]`},
		{"Observation.method.exists() or Observation.status = 'x'", `[false]`},
		{"Observation.method = 'x' or true", `[true]`},
		{"Observation.method = 'x' and true", `[]`},
		{"Observation.method = 'x' and false", `[false]`},
		{"true xor false", `[true]`},
		{"false implies Observation.method = 'x'", `[true]`},
		// Indexers, first/last/tail, hasValue, literals, variables.
		{"Observation.component[1].code.text", `["c2"]`},
		{"Observation.component[9]", `[]`},
		{"Observation.component.first().code.text", `["c1"]`},
		{"Observation.component.last().code.text", `["c3"]`},
		{"Observation.component.tail().code.text", `["c2","c3"]`},
		{"Observation.status.hasValue()", `[true]`},
		{"Observation.code.hasValue()", `[false]`},
		{"%resource.id", `["o1"]`},
		{"%context.status", `["final"]`},
		{"$this.id", `["o1"]`},
		{"%ucum", `["http://unitsofmeasure.org"]`},
		{"'it\\'s'", `["it's"]`},
		{"{}", `[]`},
		{"Observation.status // a comment", `["final"]`},
	}
	for _, tc := range tests {
		e, err := Compile(tc.expr)
		if err != nil {
			t.Errorf("Compile(%q): %v", tc.expr, err)
			continue
		}
		got, err := e.Evaluate(obs)
		if err != nil {
			t.Errorf("Evaluate(%q): %v", tc.expr, err)
			continue
		}
		want := js(t, tc.want).([]any)
		if diff := jsonDiff(want, got); diff != "" {
			t.Errorf("Evaluate(%q): %s", tc.expr, diff)
		}
	}
}

// jsonDiff compares two values by their JSON form (go.mod does not list
// go-cmp, and this package's tests keep to the standard library). Numbers
// compare by their text, as json.Number keeps it.
func jsonDiff(want, got any) string {
	w, err1 := canonicalJSON(want)
	g, err2 := canonicalJSON(got)
	if err1 != nil || err2 != nil {
		return fmt.Sprintf("cannot marshal: %v %v", err1, err2)
	}
	if w == g {
		return ""
	}
	return fmt.Sprintf("\ngot:  %s\nwant: %s", g, w)
}

// canonicalJSON marshals v with object keys sorted (structs included).
func canonicalJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return "", err
	}
	b, err = json.MarshalIndent(generic, "", "  ")
	return string(b), err
}

func TestEvaluateChoiceTypes(t *testing.T) {
	cm := decode(t, `{"resourceType": "ConceptMap", "sourceUri": "http://a", "targetCanonical": "http://b",
	  "extension": [{"url": "u", "valueAge": {"value": 3}}, {"url": "v", "valueCode": "c"}]}`)
	for expr, want := range map[string]string{
		"ConceptMap.source as uri":                 `["http://a"]`,
		"ConceptMap.source as canonical":           `[]`,
		"ConceptMap.target as uri":                 `[]`, // primitives match exactly
		"ConceptMap.target as canonical":           `["http://b"]`,
		"ConceptMap.source | ConceptMap.target":    `["http://a","http://b"]`,
		"ConceptMap.extension.value.as(Quantity)":  `[{"value":3}]`, // Age is a Quantity
		"ConceptMap.extension.value.as(Age)":       `[{"value":3}]`,
		"ConceptMap.extension.value.as(Duration)":  `[]`,
		"ConceptMap.extension.value.as(code)":      `["c"]`,
		"ConceptMap.extension.value.as(string)":    `[]`,
		"ConceptMap.extension('v').value is code":  `[true]`,
		"ConceptMap is DomainResource":             `[true]`,
		"ConceptMap.extension.value.ofType(Range)": `[]`,
	} {
		got, err := mustCompile(t, expr).Evaluate(cm)
		if err != nil {
			t.Errorf("Evaluate(%q): %v", expr, err)
			continue
		}
		if diff := jsonDiff(js(t, want), got); diff != "" {
			t.Errorf("Evaluate(%q): %s", expr, diff)
		}
	}
}

func TestEvaluateErrors(t *testing.T) {
	obs := decode(t, testObservation)
	for _, expr := range []string{
		"Observation.component.where(code.text)",   // fine: non-boolean single item is true
		"Observation.component.where(code.coding)", // empty: excluded
	} {
		e, err := Compile(expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", expr, err)
		}
		if _, err := e.Evaluate(obs); err != nil {
			t.Errorf("Evaluate(%q): %v", expr, err)
		}
	}
	for _, expr := range []string{
		"Observation.where(component.code.text = 'c1')", // several values on one side of "=" are fine...
		"Observation.where(component.code)",             // ...but a criteria of several items is an error
		"Observation.component.code is CodeableConcept", // "is" needs a single item
		"Observation.component[Observation.status]",     // index not an integer
	} {
		e, err := Compile(expr)
		if err != nil {
			t.Fatalf("Compile(%q): %v", expr, err)
		}
		_, err = e.Evaluate(obs)
		if expr == "Observation.where(component.code.text = 'c1')" {
			if err != nil {
				t.Errorf("Evaluate(%q): %v", expr, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("Evaluate(%q) succeeded, want an error", expr)
		}
	}
}

func TestCompileRejects(t *testing.T) {
	for _, expr := range []string{
		"",
		"Observation.",
		"Observation.code.memberOf('http://x')",
		"Observation.value + 1",
		"-1",
		"Observation.effective > @2020-01-01",
		"Observation.where()",
		"Observation.where(a, b)",
		"Observation.first(1)",
		"Observation.as()",
		"%vs-foo",
		"%foo",
		"$index",
		"(Observation.code",
		"Observation.code]",
		"'unterminated",
		"Observation.code as",
		"Observation # code",
	} {
		if e, err := Compile(expr); err == nil {
			t.Errorf("Compile(%q) = %v, want an error", expr, e.root)
		}
	}
}

func TestReferenceType(t *testing.T) {
	for ref, want := range map[string]string{
		"Patient/1":                                  "Patient",
		"Patient/1/_history/3":                       "Patient",
		"http://x.org/fhir/Observation/a.b-c":        "Observation",
		"http://x.org/fhir/Observation/1/_history/2": "Observation",
		"Patient":              "",
		"Patient/":             "",
		"Foo/1":                "",
		"urn:uuid:1234":        "",
		"#p1":                  "",
		"Patient?identifier=x": "",
	} {
		if got := referenceType(ref); got != want {
			t.Errorf("referenceType(%q) = %q, want %q", ref, got, want)
		}
	}
}
