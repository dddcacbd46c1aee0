package search

import (
	"bytes"
	"compress/bzip2"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dossier-fhir/dossier/store"
)

const testBase = "http://base/fhir"

// indexed indexes a resource given as JSON into a store.Version.
func indexed(t *testing.T, r *Registry, src string) *store.Version {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader([]byte(src)))
	dec.UseNumber()
	var res map[string]any
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("decode: %v\n%s", err, src)
	}
	typ, _ := res["resourceType"].(string)
	id, _ := res["id"].(string)
	ix, err := r.Index(typ, id, res, testBase)
	if err != nil {
		t.Fatalf("Index(%s/%s): %v", typ, id, err)
	}
	return &store.Version{Type: typ, ID: id, Keys: ix.Keys, Ranges: ix.Ranges,
		SortStr: ix.SortStr, SortNum: ix.SortNum, Patient: ix.Patient}
}

func micros(s string) float64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return float64(t.UnixMicro())
}

// corpus is the set of resources the search tests run on.
var corpus = []string{
	`{"resourceType": "Patient", "id": "p1",
	  "meta": {"lastUpdated": "2024-05-01T10:00:00Z", "tag": [{"system": "urn:tags", "code": "t1"}]},
	  "active": true,
	  "identifier": [{"system": "urn:mrn", "value": "123",
	    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}}],
	  "name": [{"family": "Chalmers", "given": ["Peter", "James"]}, {"given": ["Jim"]}],
	  "telecom": [{"system": "phone", "value": "555-1234", "use": "home"}, {"system": "email", "value": "p@x.org"}],
	  "gender": "male", "birthDate": "1974-12-25",
	  "address": [{"line": ["534 Erewhon St"], "city": "PleasantVille", "postalCode": "3999"}],
	  "generalPractitioner": [{"reference": "Practitioner/gp1"}],
	  "managingOrganization": {"reference": "http://base/fhir/Organization/o1"}}`,
	`{"resourceType": "Patient", "id": "p2",
	  "name": [{"family": "Ménard", "given": ["Zoë"]}],
	  "gender": "female", "birthDate": "1970-06-01",
	  "address": [{"city": "Paris"}],
	  "managingOrganization": {"reference": "http://other/fhir/Organization/o9"}}`,
	`{"resourceType": "Patient", "id": "p3",
	  "name": [{"family": "Chalmers", "given": ["Anne"]}],
	  "gender": "female", "birthDate": "1970"}`,
	`{"resourceType": "Patient", "id": "p4", "name": [{"text": "Bob  Smith"}]}`,
	`{"resourceType": "Group", "id": "g1", "type": "person", "actual": true}`,
	`{"resourceType": "Encounter", "id": "e1", "status": "finished",
	  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
	  "subject": {"reference": "Patient/p1"},
	  "period": {"start": "2020-03-05T09:00:00Z", "end": "2020-03-05T11:00:00Z"}}`,
	`{"resourceType": "Encounter", "id": "e2", "status": "in-progress",
	  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
	  "subject": {"reference": "Patient/p2"},
	  "period": {"start": "2021-06-01"}}`,
	`{"resourceType": "Observation", "id": "o1", "status": "final",
	  "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}]},
	  "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"},
	  "effectiveDateTime": "2020-03-05T10:00:00Z",
	  "valueQuantity": {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}`,
	`{"resourceType": "Observation", "id": "o2", "status": "final",
	  "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}]},
	  "subject": {"reference": "Patient/p2"}, "encounter": {"reference": "Encounter/e2"},
	  "effectivePeriod": {"start": "2019-12-30", "end": "2020-01-02"},
	  "valueQuantity": {"value": 100, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}`,
	`{"resourceType": "Observation", "id": "o3", "status": "preliminary",
	  "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
	  "subject": {"reference": "Patient/p1"},
	  "effectiveDateTime": "2021",
	  "valueQuantity": {"value": 99.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}`,
	`{"resourceType": "Observation", "id": "o4", "status": "final",
	  "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]},
	  "subject": {"reference": "Group/g1"},
	  "effectiveDateTime": "2020-01-01",
	  "component": [
	    {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
	     "valueQuantity": {"value": 140, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
	    {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
	     "valueQuantity": {"value": 90, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]}`,
	`{"resourceType": "Observation", "id": "o5", "status": "final",
	  "code": {"coding": [{"system": "http://loinc.org", "code": "12345-6"}]},
	  "subject": {"reference": "Patient/p3"},
	  "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "260385009", "display": "Negative"}]}}`,
	`{"resourceType": "Observation", "id": "o6", "status": "final",
	  "code": {"text": "Dose given"},
	  "subject": {"identifier": {"system": "urn:ssn", "value": "999"}},
	  "valueQuantity": {"value": 5, "unit": "mg"}}`,
	`{"resourceType": "Observation", "id": "o7", "status": "cancelled", "code": {"text": "nothing"}}`,
	`{"resourceType": "RiskAssessment", "id": "ra1", "status": "final", "subject": {"reference": "Patient/p1"}, "prediction": [{"probabilityDecimal": 100}]}`,
	`{"resourceType": "RiskAssessment", "id": "ra2", "status": "final", "subject": {"reference": "Patient/p1"}, "prediction": [{"probabilityDecimal": 99.5}]}`,
	`{"resourceType": "RiskAssessment", "id": "ra3", "status": "final", "subject": {"reference": "Patient/p1"}, "prediction": [{"probabilityDecimal": 100.4}]}`,
	`{"resourceType": "RiskAssessment", "id": "ra4", "status": "final", "subject": {"reference": "Patient/p1"}, "prediction": [{"probabilityDecimal": 100.5}]}`,
	`{"resourceType": "RiskAssessment", "id": "ra5", "status": "final", "subject": {"reference": "Patient/p1"}, "prediction": [{"probabilityDecimal": 99.996}]}`,
	`{"resourceType": "RiskAssessment", "id": "ra6", "status": "final", "subject": {"reference": "Patient/p1"},
	  "prediction": [{"probabilityRange": {"low": {"value": 10}, "high": {"value": 20}}}]}`,
	`{"resourceType": "ValueSet", "id": "vs1", "status": "active", "url": "http://acme.org/fhir/ValueSet/123"}`,
	`{"resourceType": "ValueSet", "id": "vs2", "status": "active", "url": "http://acme.org/fhir/ValueSet/124"}`,
	`{"resourceType": "ValueSet", "id": "vs3", "status": "active", "url": "urn:oid:1.2.3"}`,
	`{"resourceType": "ValueSet", "id": "vs4", "status": "active", "url": "http://acme.org/fhir"}`,
	`{"resourceType": "QuestionnaireResponse", "id": "qr1", "status": "completed",
	  "questionnaire": "http://acme.org/Questionnaire/q1|2.0", "subject": {"reference": "Patient/p2"}}`,
}

func corpusVersions(t *testing.T, r *Registry) []*store.Version {
	t.Helper()
	var out []*store.Version
	for _, src := range corpus {
		out = append(out, indexed(t, r, src))
	}
	return out
}

func TestIndexPatient(t *testing.T) {
	r := r4Registry(t)
	v := indexed(t, r, corpus[0])
	keys := map[string][]string{
		"family":                    {"chalmers"},
		"family:exact":              {"Chalmers"},
		"given":                     {"peter", "james", "jim"},
		"name":                      {"chalmers", "peter", "james", "jim"},
		"name:exact":                {"Chalmers", "Peter", "James", "Jim"},
		"address":                   {"534 erewhon st", "pleasantville", "3999"},
		"address-city":              {"pleasantville"},
		"gender":                    {"male", "|male"},
		"active":                    {"true"},
		"identifier":                {"urn:mrn|123", "123", "urn:mrn|"},
		"identifier:of-type":        {"http://terminology.hl7.org/CodeSystem/v2-0203|MR|123"},
		"telecom":                   {"555-1234", "|555-1234", "p@x.org", "|p@x.org"},
		"phone":                     {"555-1234", "|555-1234"},
		"email":                     {"p@x.org", "|p@x.org"},
		"general-practitioner":      {"Practitioner/gp1", "gp1"},
		"general-practitioner:type": {"Practitioner"},
		"organization":              {"Organization/o1", "o1"},
		"_tag":                      {"urn:tags|t1", "t1", "urn:tags|"},
	}
	for k, want := range keys {
		if got := v.Keys[k]; !slices.Equal(got, want) {
			t.Errorf("Keys[%s] = %q, want %q", k, got, want)
		}
	}
	// deceased is an expression giving a boolean: false when not deceased.
	if got := v.Keys["deceased"]; !slices.Equal(got, []string{"false"}) {
		t.Errorf("Keys[deceased] = %q, want false", got)
	}
	for _, k := range []string{"_id", "birthdate", "death-date"} {
		if got, ok := v.Keys[k]; ok {
			t.Errorf("Keys[%s] = %q, want nothing", k, got)
		}
	}
	day := []store.Range{{Lo: micros("1974-12-25T00:00:00Z"), Hi: micros("1974-12-26T00:00:00Z") - 1}}
	if got := v.Ranges["birthdate"]; !slices.Equal(got, day) {
		t.Errorf("Ranges[birthdate] = %v, want %v", got, day)
	}
	instant := micros("2024-05-01T10:00:00Z")
	if got := v.Ranges["_lastUpdated"]; !slices.Equal(got, []store.Range{{Lo: instant, Hi: instant}}) {
		t.Errorf("Ranges[_lastUpdated] = %v, want an exact instant", got)
	}
	if v.Patient != "p1" {
		t.Errorf("Patient = %q, want p1", v.Patient)
	}
	sorts := map[string]string{"name": "chalmers peter james", "family": "chalmers", "given": "james",
		"gender": "male", "general-practitioner": "Practitioner/gp1", "identifier": "123"}
	for k, want := range sorts {
		if got := v.SortStr[k]; got != want {
			t.Errorf("SortStr[%s] = %q, want %q", k, got, want)
		}
	}
	if got := v.SortNum["birthdate"]; got != [2]float64{day[0].Lo, day[0].Hi} {
		t.Errorf("SortNum[birthdate] = %v", got)
	}
	// Another server's absolute reference is kept as written, without id.
	p2 := indexed(t, r, corpus[1])
	if got := p2.Keys["organization"]; !slices.Equal(got, []string{"http://other/fhir/Organization/o9"}) {
		t.Errorf("p2 organization = %q", got)
	}
	if got := p2.Keys["family"]; !slices.Equal(got, []string{"menard"}) {
		t.Errorf("p2 family = %q", got)
	}
	if got := p2.Keys["family:exact"]; !slices.Equal(got, []string{"Ménard"}) {
		t.Errorf("p2 family:exact = %q", got)
	}
	p4 := indexed(t, r, corpus[3])
	if got := p4.Keys["name"]; !slices.Equal(got, []string{"bob smith"}) {
		t.Errorf("p4 name = %q (white space collapsed)", got)
	}
}

func TestIndexObservation(t *testing.T) {
	r := r4Registry(t)
	o1 := indexed(t, r, corpus[7])
	keys := map[string][]string{
		"code":      {"http://loinc.org|8480-6", "8480-6", "http://loinc.org|"},
		"code:text": {"systolic blood pressure"},
		"subject":   {"Patient/p1", "p1"},
		"patient":   {"Patient/p1", "p1"},
		"encounter": {"Encounter/e1", "e1"},
		"status":    {"final", "|final"},
	}
	for k, want := range keys {
		if got := o1.Keys[k]; !slices.Equal(got, want) {
			t.Errorf("Keys[%s] = %q, want %q", k, got, want)
		}
	}
	v120 := []store.Range{{Lo: 120, Hi: 120}}
	for _, k := range []string{"value-quantity", "value-quantity|http://unitsofmeasure.org|mm[Hg]",
		"value-quantity||mm[Hg]", "value-quantity||mmHg",
		"code-value-quantity$http://loinc.org|8480-6", "code-value-quantity$8480-6",
		"code-value-quantity$http://loinc.org|8480-6|http://unitsofmeasure.org|mm[Hg]",
		"combo-code-value-quantity$8480-6"} {
		if got := o1.Ranges[k]; !slices.Equal(got, v120) {
			t.Errorf("Ranges[%s] = %v, want %v", k, got, v120)
		}
	}
	sec := store.Range{Lo: micros("2020-03-05T10:00:00Z"), Hi: micros("2020-03-05T10:00:01Z") - 1}
	if got := o1.Ranges["date"]; !slices.Equal(got, []store.Range{sec}) {
		t.Errorf("Ranges[date] = %v, want %v", got, sec)
	}
	if o1.Patient != "p1" {
		t.Errorf("Patient = %q", o1.Patient)
	}
	if got := o1.SortNum["value-quantity"]; got != [2]float64{120, 120} {
		t.Errorf("SortNum[value-quantity] = %v", got)
	}

	o2 := indexed(t, r, corpus[8])
	per := store.Range{Lo: micros("2019-12-30T00:00:00Z"), Hi: micros("2020-01-03T00:00:00Z") - 1}
	if got := o2.Ranges["date"]; !slices.Equal(got, []store.Range{per}) {
		t.Errorf("period: Ranges[date] = %v, want %v", got, per)
	}

	// Components keep their code with their own value.
	o4 := indexed(t, r, corpus[10])
	if got := o4.Ranges["component-code-value-quantity$8480-6"]; !slices.Equal(got, []store.Range{{Lo: 140, Hi: 140}}) {
		t.Errorf("component 8480-6 = %v", got)
	}
	if got := o4.Ranges["component-code-value-quantity$8462-4"]; !slices.Equal(got, []store.Range{{Lo: 90, Hi: 90}}) {
		t.Errorf("component 8462-4 = %v", got)
	}
	if o4.Patient != "" {
		t.Errorf("a Group's observation has Patient %q", o4.Patient)
	}

	o5 := indexed(t, r, corpus[11])
	// Both parts in the "system|code" and "code" forms (not "system|").
	wantCVC := []string{
		"12345-6$260385009", "12345-6$http://snomed.info/sct|260385009",
		"http://loinc.org|12345-6$260385009", "http://loinc.org|12345-6$http://snomed.info/sct|260385009",
	}
	if got := o5.Keys["code-value-concept"]; !slices.Equal(got, wantCVC) {
		t.Errorf("code-value-concept = %q, want %q", got, wantCVC)
	}
	if got := o5.Keys["value-concept:text"]; !slices.Equal(got, []string{"negative"}) {
		t.Errorf("value-concept:text = %q", got)
	}

	o6 := indexed(t, r, corpus[12])
	if got := o6.Keys["subject:identifier"]; !slices.Equal(got, []string{"urn:ssn|999", "999", "urn:ssn|"}) {
		t.Errorf("subject:identifier = %q", got)
	}
	if _, ok := o6.Keys["subject"]; ok {
		t.Errorf("an identifier-only reference has Keys[subject] %q", o6.Keys["subject"])
	}
	if got := o6.Keys["code:text"]; !slices.Equal(got, []string{"dose given"}) {
		t.Errorf("code:text = %q", got)
	}
	if _, ok := o6.Keys["code"]; ok {
		t.Errorf("a text-only concept has Keys[code] %q", o6.Keys["code"])
	}
	if got := o6.Ranges["value-quantity||mg"]; !slices.Equal(got, []store.Range{{Lo: 5, Hi: 5}}) {
		t.Errorf("unit without code: %v", got)
	}
}

func TestIndexOther(t *testing.T) {
	r := r4Registry(t)
	qr := indexed(t, r, corpus[len(corpus)-1])
	if got := qr.Keys["questionnaire"]; !slices.Equal(got, []string{"http://acme.org/Questionnaire/q1|2.0", "http://acme.org/Questionnaire/q1"}) {
		t.Errorf("canonical = %q", got)
	}
	if got := qr.Keys["questionnaire:type"]; !slices.Equal(got, []string{"Questionnaire"}) {
		t.Errorf("canonical type = %q", got)
	}
	ra6 := indexed(t, r, `{"resourceType": "RiskAssessment", "id": "x", "status": "final",
	  "prediction": [{"probabilityRange": {"low": {"value": 10}, "high": {"value": 20}}}]}`)
	if got := ra6.Ranges["probability"]; !slices.Equal(got, []store.Range{{Lo: 10, Hi: 20}}) {
		t.Errorf("Range probability = %v", got)
	}
	e2 := indexed(t, r, corpus[6])
	if got := e2.Ranges["date"]; !slices.Equal(got, []store.Range{{Lo: micros("2021-06-01T00:00:00Z"), Hi: 1e18}}) {
		t.Errorf("open period = %v", got)
	}

	// Owners: patient before subject, then the definition's order.
	for _, c := range []struct{ src, want string }{
		{`{"resourceType": "AllergyIntolerance", "id": "a", "patient": {"reference": "Patient/p2"},
		   "recorder": {"reference": "Patient/p1"}}`, "p2"},
		{`{"resourceType": "AllergyIntolerance", "id": "a", "patient": {"reference": "Patient/p2/_history/3"}}`, "p2"},
		{`{"resourceType": "CarePlan", "id": "c", "status": "active", "intent": "plan",
		   "subject": {"reference": "Group/g1"}, "activity": [{"detail": {"status": "completed",
		   "performer": [{"reference": "Patient/p3"}]}}]}`, "p3"},
		{`{"resourceType": "Condition", "id": "c", "subject": {"reference": "http://base/fhir/Patient/p4"}}`, "p4"},
		{`{"resourceType": "Condition", "id": "c", "subject": {"reference": "http://other/Patient/p4"}}`, ""},
		{`{"resourceType": "Condition", "id": "c", "subject": {"reference": "#p"},
		   "contained": [{"resourceType": "Patient", "id": "p"}]}`, ""},
		{`{"resourceType": "Organization", "id": "o"}`, ""},
		{`{"resourceType": "Patient", "id": "me", "link": [{"other": {"reference": "Patient/p1"}, "type": "seealso"}]}`, "me"},
	} {
		if got := indexed(t, r, c.src).Patient; got != c.want {
			t.Errorf("Patient = %q, want %q for %s", got, c.want, c.src)
		}
	}
	for typ, want := range map[string][]string{
		"Observation":        {"subject", "performer"},
		"AllergyIntolerance": {"patient", "recorder", "asserter"},
		"Invoice":            {"patient", "subject", "recipient"},
		"Organization":       nil,
	} {
		if got := r.OwnerParam(typ); !slices.Equal(got, want) {
			t.Errorf("OwnerParam(%s) = %q, want %q", typ, got, want)
		}
	}
	for _, c := range []struct {
		typ, code string
		want      bool
	}{
		{"Observation", "subject", true}, {"Observation", "patient", true}, {"Observation", "performer", false},
		{"Condition", "patient", true}, {"Condition", "subject", true}, {"Condition", "asserter", false},
		{"Appointment", "actor", false}, {"Patient", "link", false}, {"Organization", "endpoint", false},
	} {
		if got := r.PatientHint(c.typ, c.code); got != c.want {
			t.Errorf("PatientHint(%s, %s) = %v", c.typ, c.code, got)
		}
	}
}

func TestIndexMalformed(t *testing.T) {
	r := r4Registry(t)
	v := indexed(t, r, `{"resourceType": "Patient", "id": "bad", "birthDate": "1970-02-30",
	  "name": [{"family": 12, "given": "notalist"}], "gender": {"x": 1},
	  "identifier": [{"system": "urn:x"}], "deceasedDateTime": "soon",
	  "telecom": [{"system": "phone"}]}`)
	for _, k := range []string{"birthdate", "death-date"} {
		if got, ok := v.Ranges[k]; ok {
			t.Errorf("Ranges[%s] = %v from a malformed date", k, got)
		}
	}
	if _, ok := v.Keys["identifier"]; ok {
		t.Errorf("identifier without value indexed: %q", v.Keys["identifier"])
	}
	if _, err := r.Index("Patient", "x", map[string]any{"resourceType": "Observation"}, ""); err == nil {
		t.Error("type mismatch: no error")
	}
	if _, err := r.Index("Nope", "x", map[string]any{}, ""); err == nil {
		t.Error("unknown type: no error")
	}
}

func TestParseDate(t *testing.T) {
	for _, c := range []struct {
		in     string
		lo, hi string // hi is exclusive here
		ok     bool
	}{
		{"2020", "2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z", true},
		{"2020-02", "2020-02-01T00:00:00Z", "2020-03-01T00:00:00Z", true},
		{"2020-02-29", "2020-02-29T00:00:00Z", "2020-03-01T00:00:00Z", true},
		{"2020-03-05T10:00", "2020-03-05T10:00:00Z", "2020-03-05T10:01:00Z", true},
		{"2020-03-05T10:00:00", "2020-03-05T10:00:00Z", "2020-03-05T10:00:01Z", true},
		{"2020-03-05T10:00:00+02:00", "2020-03-05T08:00:00Z", "2020-03-05T08:00:01Z", true},
		{"2020-03-05T10:00:00.5Z", "2020-03-05T10:00:00.5Z", "2020-03-05T10:00:00.6Z", true},
		{"2020-03-05T10:00:00.123456789Z", "2020-03-05T10:00:00.123456Z", "2020-03-05T10:00:00.123457Z", true},
		{"2021-02-29", "", "", false},
		{"2020-13", "", "", false},
		{"20", "", "", false},
		{"2020-01-01T25:00:00Z", "", "", false},
		{"2020-01-01Z", "", "", false},
		{"soon", "", "", false},
	} {
		lo, hi, ok := parseDate(c.in)
		if ok != c.ok {
			t.Errorf("parseDate(%q) ok = %v", c.in, ok)
			continue
		}
		if ok && (lo != micros(c.lo) || hi != micros(c.hi)-1) {
			t.Errorf("parseDate(%q) = [%v, %v], want [%s, %s)", c.in, lo, hi, c.lo, c.hi)
		}
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"Ménard":         "menard",
		"  Zoë   Ann\t":  "zoe ann",
		"ÅNGSTRÖM":       "angstrom",
		"Straße":         "straße",
		"Dvořák Antonín": "dvorak antonin",
	} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func decodeJSON(t *testing.T, data []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var res map[string]any
	if err := dec.Decode(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestIndexExamples indexes every official R4 example.
func TestIndexExamples(t *testing.T) {
	r := r4Registry(t)
	files, err := filepath.Glob("../../testdata/r4-examples/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 100 {
		t.Fatalf("found %d example files", len(files))
	}
	var keys, ranges int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		res := decodeJSON(t, data)
		typ, _ := res["resourceType"].(string)
		id, _ := res["id"].(string)
		ix, err := r.Index(typ, id, res, "http://hl7.org/fhir")
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		keys += len(ix.Keys)
		ranges += len(ix.Ranges)
	}
	t.Logf("%d files: %d keys, %d ranges", len(files), keys, ranges)
}

// TestIndexSynthea indexes the entries of two Synthea bundles.
func TestIndexSynthea(t *testing.T) {
	files, _ := filepath.Glob("/work/shared/data/synthea/*.json.bz2")
	var patients []string
	for _, f := range files {
		if b := filepath.Base(f); b[0] != '0' { // patient bundles, not the 0-* batch ones
			patients = append(patients, f)
		}
	}
	if len(patients) < 2 {
		t.Skip("no Synthea data")
	}
	r := r4Registry(t)
	owned, entries := 0, 0
	for _, f := range []string{files[0], patients[0]} {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(bzip2.NewReader(fh))
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		bundle := decodeJSON(t, data)
		for _, e := range objects(bundle["entry"]) {
			res, _ := e["resource"].(map[string]any)
			typ, _ := res["resourceType"].(string)
			id, _ := res["id"].(string)
			ix, err := r.Index(typ, id, res, "")
			if err != nil {
				t.Errorf("%s %s/%s: %v", filepath.Base(f), typ, id, err)
				continue
			}
			entries++
			if typ == "Observation" && len(ix.Ranges["date"]) == 0 {
				t.Errorf("Observation/%s: no date", id)
			}
			if typ == "Patient" && len(ix.Keys["family"]) == 0 {
				t.Errorf("Patient/%s: no family", id)
			}
			if ix.Patient != "" {
				owned++
			}
		}
	}
	if entries == 0 {
		t.Error("no entries")
	}
	t.Logf("%d entries, %d with an owner", entries, owned)
}
