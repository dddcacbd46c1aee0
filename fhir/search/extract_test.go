package search

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// checkExtract extracts from resource and compares the given parameters'
// values (JSON arrays; "" for a parameter that must be absent).
func checkExtract(t *testing.T, r *Registry, resource string, want map[string]string) map[string][]any {
	t.Helper()
	res := decode(t, resource)
	typ, _ := res["resourceType"].(string)
	got, err := r.Extract(typ, res)
	if err != nil {
		t.Fatalf("Extract(%s): %v", typ, err)
	}
	for code, w := range want {
		if _, ok := r.Lookup(typ, code); !ok {
			t.Errorf("%s has no search parameter %s", typ, code)
			continue
		}
		if w == "" {
			if v, ok := got[code]; ok {
				t.Errorf("%s %s = %v, want nothing", typ, code, v)
			}
			continue
		}
		if diff := jsonDiff(js(t, w), got[code]); diff != "" {
			t.Errorf("%s %s: %s", typ, code, diff)
		}
	}
	return got
}

func TestExtractPatient(t *testing.T) {
	r := r4Registry(t)
	got := checkExtract(t, r, `{
	  "resourceType": "Patient",
	  "id": "p1",
	  "meta": {"lastUpdated": "2024-05-01T10:00:00Z", "profile": ["http://example.org/P"],
	    "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
	    "tag": [{"system": "urn:tags", "code": "t1"}]},
	  "identifier": [{"system": "urn:mrn", "value": "123"}, {"value": "no-system"}],
	  "name": [
	    {"use": "official", "family": "Chalmers", "given": ["Peter", "James"]},
	    {"use": "usual", "given": ["Jim"]}
	  ],
	  "telecom": [{"system": "phone", "value": "555"}, {"system": "email", "value": "p@x.org"}],
	  "gender": "male",
	  "birthDate": "1974-12-25",
	  "deceasedDateTime": "2020-01-01T00:00:00Z",
	  "address": [{"city": "PleasantVille", "postalCode": "3999"}],
	  "generalPractitioner": [{"reference": "Practitioner/gp"}],
	  "managingOrganization": {"reference": "Organization/1"}
	}`, map[string]string{
		"_id":                  `["p1"]`,
		"_lastUpdated":         `["2024-05-01T10:00:00Z"]`,
		"_profile":             `["http://example.org/P"]`,
		"_security":            `[{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]`,
		"_tag":                 `[{"system": "urn:tags", "code": "t1"}]`,
		"identifier":           `[{"system": "urn:mrn", "value": "123"}, {"value": "no-system"}]`,
		"name":                 `[{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}, {"use": "usual", "given": ["Jim"]}]`,
		"family":               `["Chalmers"]`,
		"given":                `["Peter", "James", "Jim"]`,
		"gender":               `["male"]`,
		"birthdate":            `["1974-12-25"]`,
		"death-date":           `["2020-01-01T00:00:00Z"]`,
		"deceased":             `[true]`,
		"phone":                `[{"system": "phone", "value": "555"}]`,
		"email":                `[{"system": "email", "value": "p@x.org"}]`,
		"address-city":         `["PleasantVille"]`,
		"address-postalcode":   `["3999"]`,
		"general-practitioner": `[{"reference": "Practitioner/gp"}]`,
		"organization":         `[{"reference": "Organization/1"}]`,
		"active":               "",
		"_text":                "",
	})
	var codes []string
	for code := range got {
		codes = append(codes, code)
	}
	sort.Strings(codes)
	want := "_id _lastUpdated _profile _security _tag address address-city address-postalcode birthdate death-date deceased email family gender general-practitioner given identifier name organization phone phonetic telecom"
	if s := strings.Join(codes, " "); s != want {
		t.Errorf("extracted parameters:\n got %s\nwant %s", s, want)
	}

	// deceased is a boolean expression: false when deceased is absent or false.
	checkExtract(t, r, `{"resourceType": "Patient", "deceasedBoolean": false}`, map[string]string{"deceased": `[false]`, "death-date": ""})
	checkExtract(t, r, `{"resourceType": "Patient", "deceasedBoolean": true}`, map[string]string{"deceased": `[true]`, "death-date": ""})
	checkExtract(t, r, `{"resourceType": "Patient"}`, map[string]string{"deceased": `[false]`})
}

func TestExtractObservation(t *testing.T) {
	r := r4Registry(t)
	checkExtract(t, r, `{
	  "resourceType": "Observation",
	  "status": "final",
	  "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
	  "subject": {"reference": "Patient/p1"},
	  "encounter": {"reference": "Encounter/e1"},
	  "effectiveDateTime": "2016-03-28",
	  "valueQuantity": {"value": 185, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"}
	}`, map[string]string{
		"code":           `[{"coding": [{"system": "http://loinc.org", "code": "29463-7"}]}]`,
		"value-quantity": `[{"value": 185, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"}]`,
		"date":           `["2016-03-28"]`,
		"subject":        `[{"reference": "Patient/p1"}]`,
		"patient":        `[{"reference": "Patient/p1"}]`,
		"encounter":      `[{"reference": "Encounter/e1"}]`,
		"value-concept":  "",
		"value-string":   "",
		"code-value-quantity": `[{
		  "Node": {"resourceType": "Observation", "status": "final",
		    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
		    "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"},
		    "effectiveDateTime": "2016-03-28",
		    "valueQuantity": {"value": 185, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"}},
		  "Components": [
		    [{"coding": [{"system": "http://loinc.org", "code": "29463-7"}]}],
		    [{"value": 185, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"}]]}]`,
		"code-value-concept": "", // no valueCodeableConcept: the composite cannot match
	})

	// Blood pressure: effectivePeriod, a Group subject, values in components.
	got := checkExtract(t, r, `{
	  "resourceType": "Observation",
	  "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
	  "subject": {"reference": "Group/g1"},
	  "effectivePeriod": {"start": "2020-01-01", "end": "2020-01-02"},
	  "component": [
	    {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": 120}},
	    {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": {"value": 80}},
	    {"code": {"text": "note"}, "valueString": "calm"}
	  ]
	}`, map[string]string{
		"date":                     `[{"start": "2020-01-01", "end": "2020-01-02"}]`,
		"subject":                  `[{"reference": "Group/g1"}]`,
		"patient":                  "",
		"value-quantity":           "",
		"component-value-quantity": `[{"value": 120}, {"value": 80}]`,
		"combo-value-quantity":     `[{"value": 120}, {"value": 80}]`,
		"component-code-value-quantity": `[
		  {"Node": {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": 120}},
		   "Components": [[{"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}], [{"value": 120}]]},
		  {"Node": {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": {"value": 80}},
		   "Components": [[{"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}], [{"value": 80}]]}]`,
		"code-value-quantity": "",
	})
	// combo-code-value-quantity is "Observation | Observation.component":
	// the Observation itself has no value, so only the two components count.
	if n := len(got["combo-code-value-quantity"]); n != 2 {
		t.Errorf("combo-code-value-quantity: %d composites, want 2", n)
	}
	for _, v := range got["component-code-value-quantity"] {
		if _, ok := v.(Composite); !ok {
			t.Errorf("composite value is a %T", v)
		}
	}
}

func TestExtractDocumentReference(t *testing.T) {
	r := r4Registry(t)
	checkExtract(t, r, `{
	  "resourceType": "DocumentReference",
	  "status": "current",
	  "type": {"coding": [{"system": "http://loinc.org", "code": "34108-1"}]},
	  "subject": {"reference": "http://other.org/fhir/Patient/p9"},
	  "date": "2005-12-24T09:43:41+11:00",
	  "securityLabel": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}]}],
	  "content": [{"attachment": {"contentType": "application/pdf", "url": "http://x.org/doc.pdf"}}],
	  "context": {"encounter": [{"reference": "Encounter/e1"}], "period": {"start": "2004-12-23"}},
	  "relatesTo": [{"code": "appends", "target": {"reference": "DocumentReference/d0"}}]
	}`, map[string]string{
		"patient":        `[{"reference": "http://other.org/fhir/Patient/p9"}]`,
		"type":           `[{"coding": [{"system": "http://loinc.org", "code": "34108-1"}]}]`,
		"date":           `["2005-12-24T09:43:41+11:00"]`,
		"security-label": `[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}]}]`,
		"contenttype":    `["application/pdf"]`,
		"location":       `["http://x.org/doc.pdf"]`,
		"encounter":      `[{"reference": "Encounter/e1"}]`,
		"period":         `[{"start": "2004-12-23"}]`,
		"relatesto":      `[{"reference": "DocumentReference/d0"}]`,
		"relationship": `[{"Node": {"code": "appends", "target": {"reference": "DocumentReference/d0"}},
		  "Components": [["appends"], [{"reference": "DocumentReference/d0"}]]}]`,
	})
}

func TestExtractCarePlan(t *testing.T) {
	r := r4Registry(t)
	checkExtract(t, r, `{
	  "resourceType": "CarePlan",
	  "contained": [{"resourceType": "Patient", "id": "pat"}],
	  "status": "active",
	  "intent": "plan",
	  "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "734163000"}]}],
	  "subject": {"reference": "#pat"},
	  "period": {"start": "2020-01-01"},
	  "activity": [
	    {"detail": {"code": {"coding": [{"system": "http://loinc.org", "code": "3141-9"}]},
	      "scheduledTiming": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}, "status": "scheduled"}},
	    {"detail": {"code": {"text": "walk"}, "scheduledPeriod": {"start": "2020-02-01"}, "status": "scheduled"}},
	    {"detail": {"code": {"text": "call"}, "scheduledString": "weekly", "status": "scheduled"}},
	    {"reference": {"reference": "ServiceRequest/s1"}}
	  ]
	}`, map[string]string{
		"activity-code": `[{"coding": [{"system": "http://loinc.org", "code": "3141-9"}]}, {"text": "walk"}, {"text": "call"}]`,
		// CarePlan.activity.detail.scheduled: every type of scheduled[x].
		"activity-date":      `[{"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}, {"start": "2020-02-01"}, "weekly"]`,
		"activity-reference": `[{"reference": "ServiceRequest/s1"}]`,
		"category":           `[{"coding": [{"system": "http://snomed.info/sct", "code": "734163000"}]}]`,
		"patient":            `[{"reference": "#pat"}]`, // contained Patient
		"subject":            `[{"reference": "#pat"}]`,
		"date":               `[{"start": "2020-01-01"}]`,
	})
	// A contained Group is not a Patient.
	checkExtract(t, r, `{
	  "resourceType": "CarePlan",
	  "contained": [{"resourceType": "Group", "id": "pat"}],
	  "subject": {"reference": "#pat"}
	}`, map[string]string{"patient": "", "subject": `[{"reference": "#pat"}]`})
}

func TestExtractEncounter(t *testing.T) {
	r := r4Registry(t)
	checkExtract(t, r, `{
	  "resourceType": "Encounter",
	  "status": "finished",
	  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
	  "subject": {"reference": "Patient/p1", "type": "Patient"},
	  "participant": [
	    {"individual": {"reference": "Practitioner/dr"}},
	    {"individual": {"reference": "RelatedPerson/rp"}}
	  ],
	  "period": {"start": "2020-01-01T10:00:00Z", "end": "2020-01-01T11:00:00Z"}
	}`, map[string]string{
		"patient":      `[{"reference": "Patient/p1", "type": "Patient"}]`,
		"date":         `[{"start": "2020-01-01T10:00:00Z", "end": "2020-01-01T11:00:00Z"}]`,
		"class":        `[{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}]`,
		"practitioner": `[{"reference": "Practitioner/dr"}]`,
		"participant":  `[{"reference": "Practitioner/dr"}, {"reference": "RelatedPerson/rp"}]`,
	})
	// A logical reference: Reference.type alone says it is a Patient.
	checkExtract(t, r, `{
	  "resourceType": "Encounter",
	  "subject": {"type": "Patient", "identifier": {"system": "urn:mrn", "value": "1"}}
	}`, map[string]string{"patient": `[{"type": "Patient", "identifier": {"system": "urn:mrn", "value": "1"}}]`})
}

func TestExtractCondition(t *testing.T) {
	r := r4Registry(t)
	checkExtract(t, r, `{"resourceType": "Condition", "onsetDateTime": "2012-05-24", "abatementString": "in spring",
	  "subject": {"reference": "Patient/p"}}`, map[string]string{
		"onset-date":       `["2012-05-24"]`,
		"onset-info":       "",
		"onset-age":        "",
		"abatement-string": `["in spring"]`,
		"abatement-date":   "",
		"patient":          `[{"reference": "Patient/p"}]`,
	})
	checkExtract(t, r, `{"resourceType": "Condition", "onsetPeriod": {"start": "2012-05-24"}}`, map[string]string{
		"onset-date": `[{"start": "2012-05-24"}]`,
	})
	checkExtract(t, r, `{"resourceType": "Condition", "onsetAge": {"value": 52, "unit": "a"}}`, map[string]string{
		"onset-date": "",
		"onset-age":  `[{"value": 52, "unit": "a"}]`,
	})
	checkExtract(t, r, `{"resourceType": "Condition", "onsetString": "childhood"}`, map[string]string{
		"onset-date": "",
		"onset-info": `["childhood"]`,
	})
}

func TestExtractMedicationRequest(t *testing.T) {
	r := r4Registry(t)
	checkExtract(t, r, `{"resourceType": "MedicationRequest",
	  "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "582620"}]},
	  "subject": {"reference": "Patient/p"}, "authoredOn": "2015-03-01"}`, map[string]string{
		"code":       `[{"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "582620"}]}]`,
		"medication": "",
		"patient":    `[{"reference": "Patient/p"}]`,
		"authoredon": `["2015-03-01"]`,
	})
	checkExtract(t, r, `{"resourceType": "MedicationRequest",
	  "medicationReference": {"reference": "Medication/m1"}}`, map[string]string{
		"code":       "",
		"medication": `[{"reference": "Medication/m1"}]`,
	})
}

func TestExtractOther(t *testing.T) {
	r := r4Registry(t)
	// relatedArtifact.where(type='...').resource
	checkExtract(t, r, `{"resourceType": "Library", "relatedArtifact": [
	  {"type": "depends-on", "resource": "http://x.org/Library/a"},
	  {"type": "composed-of", "resource": "http://x.org/Library/b"}]}`, map[string]string{
		"depends-on":  `["http://x.org/Library/a"]`,
		"composed-of": `["http://x.org/Library/b"]`,
		"successor":   "",
	})
	// (ConceptMap.source as uri) and as canonical.
	checkExtract(t, r, `{"resourceType": "ConceptMap", "sourceUri": "http://x.org/vs", "targetCanonical": "http://x.org/vs2"}`, map[string]string{
		"source-uri": `["http://x.org/vs"]`,
		"source":     "",
		"target":     `["http://x.org/vs2"]`,
		"target-uri": "",
	})
	// Bundle.entry[0].resource, for documents.
	checkExtract(t, r, `{"resourceType": "Bundle", "type": "document", "entry": [
	  {"resource": {"resourceType": "Composition", "id": "c"}}, {"resource": {"resourceType": "Patient", "id": "p"}}]}`, map[string]string{
		"composition": `[{"resourceType": "Composition", "id": "c"}]`,
	})
	// useContext value as CodeableConcept / Quantity / Range.
	checkExtract(t, r, `{"resourceType": "ValueSet", "useContext": [
	  {"code": {"code": "focus"}, "valueCodeableConcept": {"text": "x"}},
	  {"code": {"code": "age"}, "valueRange": {"low": {"value": 18}}}]}`, map[string]string{
		"context":          `[{"text": "x"}]`,
		"context-quantity": `[{"low": {"value": 18}}]`,
		"context-type":     `[{"code": "focus"}, {"code": "age"}]`,
		"context-type-value": `[
		  {"Node": {"code": {"code": "focus"}, "valueCodeableConcept": {"text": "x"}}, "Components": [[{"code": "focus"}], [{"text": "x"}]]}]`,
		"context-type-quantity": `[
		  {"Node": {"code": {"code": "age"}, "valueRange": {"low": {"value": 18}}}, "Components": [[{"code": "age"}], [{"low": {"value": 18}}]]}]`,
	})
	// MolecularSequence components reading %resource.
	checkExtract(t, r, `{"resourceType": "MolecularSequence",
	  "referenceSeq": {"chromosome": {"text": "1"}},
	  "variant": [{"start": 10, "end": 11}]}`, map[string]string{
		"chromosome-variant-coordinate": `[{"Node": {"start": 10, "end": 11}, "Components": [[{"text": "1"}], [10], [11]]}]`,
	})
}

func TestExtractErrors(t *testing.T) {
	r := r4Registry(t)
	if _, err := r.Extract("Patient", decode(t, `{"resourceType": "Observation"}`)); err == nil {
		t.Error("type mismatch: no error")
	}
	if _, err := r.Extract("Nope", decode(t, `{}`)); err == nil {
		t.Error("unknown type: no error")
	}
	// Without resourceType, the given type is used.
	got, err := r.Extract("Patient", decode(t, `{"gender": "female"}`))
	if err != nil || len(got["gender"]) != 1 {
		t.Errorf("no resourceType: %v, %v", got, err)
	}
}

// TestExtractExamples extracts from every official R4 example.
func TestExtractExamples(t *testing.T) {
	r := r4Registry(t)
	files, err := filepath.Glob("../../testdata/r4-examples/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 100 {
		t.Fatalf("found %d example files", len(files))
	}
	var resources, values int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var res map[string]any
		if err := dec.Decode(&res); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		typ, _ := res["resourceType"].(string)
		got, err := r.Extract(typ, res)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		if id, ok := res["id"]; ok {
			if v := got["_id"]; len(v) != 1 || v[0] != id {
				t.Errorf("%s: _id = %v, want %v", filepath.Base(f), v, id)
			}
		}
		resources++
		for _, v := range got {
			values += len(v)
		}
	}
	t.Logf("%d example resources, %d values extracted", resources, values)
}

func BenchmarkExtractObservation(b *testing.B) {
	r, err := LoadRegistry(profilesFS(), bundleFile)
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile("../../testdata/r4-examples/Observation-example.json")
	if err != nil {
		b.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var res map[string]any
	if err := dec.Decode(&res); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Extract("Observation", res); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadRegistry(b *testing.B) {
	for b.Loop() {
		if _, err := LoadRegistry(profilesFS(), bundleFile); err != nil {
			b.Fatal(err)
		}
	}
}
