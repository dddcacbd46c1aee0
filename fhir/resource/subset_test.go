package resource

import (
	"slices"
	"strings"
	"testing"

	apb "github.com/google/fhir/go/proto/google/fhir/proto/annotations_go_proto"
	r4pb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/dossier-fhir/dossier/fhir/outcome"
)

const tagJSON = `{"system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue","code":"SUBSETTED"}`

// A Patient with one element of each kind: summary ones (identifier,
// active, name, telecom, gender, birthDate, deceased[x], address,
// managingOrganization, link) and others (text, extension, maritalStatus,
// multipleBirth[x], photo, contact, communication, generalPractitioner).
// Patient has no mandatory top-level element.
const subsetPatient = `{"resourceType":"Patient","id":"p","meta":{"versionId":"3","lastUpdated":"2024-01-02T03:04:05.000000Z"},` +
	`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">M</div>"},` +
	`"extension":[{"url":"http://example.org/x","valueDecimal":1.50}],` +
	`"identifier":[{"system":"urn:s","value":"1"}],"active":true,"name":[{"family":"M","given":["A"]}],` +
	`"telecom":[{"system":"phone","value":"1"}],"gender":"male","_gender":{"extension":[{"url":"http://example.org/g","valueString":"m"}]},` +
	`"birthDate":"1970-01-01","_birthDate":{"id":"b"},"deceasedBoolean":false,"address":[{"city":"X"}],` +
	`"maritalStatus":{"text":"S"},"multipleBirthInteger":2,"photo":[{"url":"http://x/p.png"}],` +
	`"contact":[{"name":{"text":"C"}}],"communication":[{"language":{"text":"fr"}}],` +
	`"generalPractitioner":[{"reference":"Practitioner/1"}],"managingOrganization":{"reference":"Organization/1"},` +
	`"link":[{"other":{"reference":"Patient/q"},"type":"seealso"}]}`

// An Observation: mandatory status and code; value[x], effective[x],
// component and subject are summary; text, note, interpretation and
// referenceRange are not.
const subsetObservation = `{"resourceType":"Observation","id":"o","meta":{"versionId":"2","tag":[{"system":"urn:t","code":"a"}]},` +
	`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},` +
	`"status":"final","_status":{"extension":[{"url":"http://example.org/s","valueString":"s"}]},` +
	`"code":{"text":"weight"},"subject":{"reference":"Patient/p"},"effectiveDateTime":"2024-01-01",` +
	`"valueQuantity":{"value":1.50,"unit":"kg"},"interpretation":[{"text":"N"}],"note":[{"text":"n"}],` +
	`"referenceRange":[{"low":{"value":0.0100}}],"component":[{"code":{"text":"c"},"valueQuantity":{"value":2.50e1}}]}`

func TestSubset(t *testing.T) {
	pretty := "{\n  \"resourceType\": \"Patient\",\n  \"id\": \"p\",\n  \"text\": {\"status\": \"empty\", \"div\": \"<div/>\"},\n  \"name\": [{\"family\": \"M\"}]\n}"
	obsNoText := `{"resourceType":"Observation","id":"o2","status":"final","code":{"text":"c"},"valueString":"x"}`
	medReq := `{"resourceType":"MedicationRequest","id":"m","meta":{},"status":"stopped","statusReason":{"text":"r"},` +
		`"intent":"order","medicationCodeableConcept":{"text":"aspirin"},"subject":{"reference":"Patient/p"},"note":[{"text":"n"}]}`
	procedure := `{"resourceType":"Procedure","id":"x","status":"completed","subject":{"reference":"Patient/p"},` +
		`"reasonCode":[{"text":"r"}],"reasonReference":[{"reference":"Condition/c"}]}`
	cases := []struct {
		name, in, summary string
		elements          []string
		want              string // "" = the input bytes unchanged
	}{
		{"nothing asked", pretty, "", nil, ""},
		{"summary false", pretty, "false", nil, ""},
		{"count is the caller's", subsetPatient, "count", nil, ""},
		{"count with elements", subsetPatient, "count", []string{"name"}, ""},
		{"data without text is unchanged", obsNoText, "data", nil, ""},
		{"true with only summary elements is unchanged", obsNoText, "true", nil, ""},
		{"elements all present is unchanged", obsNoText, "", []string{"valueString"}, ""},

		{"patient true", subsetPatient, "true", nil,
			`{"resourceType":"Patient","id":"p","meta":{"versionId":"3","lastUpdated":"2024-01-02T03:04:05.000000Z","tag":[` + tagJSON + `]},` +
				`"identifier":[{"system":"urn:s","value":"1"}],"active":true,"name":[{"family":"M","given":["A"]}],` +
				`"telecom":[{"system":"phone","value":"1"}],"gender":"male","_gender":{"extension":[{"url":"http://example.org/g","valueString":"m"}]},` +
				`"birthDate":"1970-01-01","_birthDate":{"id":"b"},"deceasedBoolean":false,"address":[{"city":"X"}],` +
				`"managingOrganization":{"reference":"Organization/1"},"link":[{"other":{"reference":"Patient/q"},"type":"seealso"}]}`},
		{"patient text", subsetPatient, "text", nil,
			`{"resourceType":"Patient","id":"p","meta":{"versionId":"3","lastUpdated":"2024-01-02T03:04:05.000000Z","tag":[` + tagJSON + `]},` +
				`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">M</div>"}}`},
		{"patient elements with twin and prefix", subsetPatient, "", []string{"birthDate", "Patient.photo", "Observation.name", "name.family"},
			`{"resourceType":"Patient","id":"p","meta":{"versionId":"3","lastUpdated":"2024-01-02T03:04:05.000000Z","tag":[` + tagJSON + `]},` +
				`"birthDate":"1970-01-01","_birthDate":{"id":"b"},"photo":[{"url":"http://x/p.png"}]}`},
		{"patient elements choice deceased", subsetPatient, "", []string{"deceased", "multipleBirth", "extension"},
			`{"resourceType":"Patient","id":"p","meta":{"versionId":"3","lastUpdated":"2024-01-02T03:04:05.000000Z","tag":[` + tagJSON + `]},` +
				`"extension":[{"url":"http://example.org/x","valueDecimal":1.50}],"deceasedBoolean":false,"multipleBirthInteger":2}`},

		{"observation true", subsetObservation, "true", nil,
			`{"resourceType":"Observation","id":"o","meta":{"versionId":"2","tag":[{"system":"urn:t","code":"a"},` + tagJSON + `]},` +
				`"status":"final","_status":{"extension":[{"url":"http://example.org/s","valueString":"s"}]},` +
				`"code":{"text":"weight"},"subject":{"reference":"Patient/p"},"effectiveDateTime":"2024-01-01",` +
				`"valueQuantity":{"value":1.50,"unit":"kg"},"component":[{"code":{"text":"c"},"valueQuantity":{"value":2.50e1}}]}`},
		{"observation text keeps mandatory", subsetObservation, "text", nil,
			`{"resourceType":"Observation","id":"o","meta":{"versionId":"2","tag":[{"system":"urn:t","code":"a"},` + tagJSON + `]},` +
				`"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"},` +
				`"status":"final","_status":{"extension":[{"url":"http://example.org/s","valueString":"s"}]},"code":{"text":"weight"}}`},
		{"observation data", subsetObservation, "data", nil,
			`{"resourceType":"Observation","id":"o","meta":{"versionId":"2","tag":[{"system":"urn:t","code":"a"},` + tagJSON + `]},` +
				`"status":"final","_status":{"extension":[{"url":"http://example.org/s","valueString":"s"}]},` +
				`"code":{"text":"weight"},"subject":{"reference":"Patient/p"},"effectiveDateTime":"2024-01-01",` +
				`"valueQuantity":{"value":1.50,"unit":"kg"},"interpretation":[{"text":"N"}],"note":[{"text":"n"}],` +
				`"referenceRange":[{"low":{"value":0.0100}}],"component":[{"code":{"text":"c"},"valueQuantity":{"value":2.50e1}}]}`},
		{"observation elements choice value", subsetObservation, "", []string{"value", "referenceRange"},
			`{"resourceType":"Observation","id":"o","meta":{"versionId":"2","tag":[{"system":"urn:t","code":"a"},` + tagJSON + `]},` +
				`"status":"final","_status":{"extension":[{"url":"http://example.org/s","valueString":"s"}]},"code":{"text":"weight"},` +
				`"valueQuantity":{"value":1.50,"unit":"kg"},"referenceRange":[{"low":{"value":0.0100}}]}`},
		{"observation elements by json name, prefixed", subsetObservation, "", []string{" Observation.valueQuantity "},
			`{"resourceType":"Observation","id":"o","meta":{"versionId":"2","tag":[{"system":"urn:t","code":"a"},` + tagJSON + `]},` +
				`"status":"final","_status":{"extension":[{"url":"http://example.org/s","valueString":"s"}]},"code":{"text":"weight"},` +
				`"valueQuantity":{"value":1.50,"unit":"kg"}}`},
		{"elements win over summary", subsetObservation, "true", []string{"note"},
			`{"resourceType":"Observation","id":"o","meta":{"versionId":"2","tag":[{"system":"urn:t","code":"a"},` + tagJSON + `]},` +
				`"status":"final","_status":{"extension":[{"url":"http://example.org/s","valueString":"s"}]},"code":{"text":"weight"},` +
				`"note":[{"text":"n"}]}`},
		{"no meta: created after id", obsNoText, "", []string{"status"},
			`{"resourceType":"Observation","id":"o2","meta":{"tag":[` + tagJSON + `]},"status":"final","code":{"text":"c"}}`},
		{"pretty input comes out compact", pretty, "data", nil,
			`{"resourceType":"Patient","id":"p","meta":{"tag":[` + tagJSON + `]},"name":[{"family":"M"}]}`},

		// status is not a choice: statusReason goes; the mandatory
		// medication[x] stays in whichever form it has.
		{"medication request status", medReq, "", []string{"status"},
			`{"resourceType":"MedicationRequest","id":"m","meta":{"tag":[` + tagJSON + `]},"status":"stopped",` +
				`"intent":"order","medicationCodeableConcept":{"text":"aspirin"},"subject":{"reference":"Patient/p"}}`},
		// Procedure has reasonCode and reasonReference, no reason[x].
		{"procedure reason is no choice", procedure, "", []string{"reason"},
			`{"resourceType":"Procedure","id":"x","meta":{"tag":[` + tagJSON + `]},"status":"completed","subject":{"reference":"Patient/p"}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.in)
			got, err := Subset(in, c.summary, c.elements)
			if err != nil {
				t.Fatal(err)
			}
			want := c.want
			if want == "" {
				want = c.in
			}
			if string(got) != want {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
			if c.want == "" && &got[0] != &in[0] {
				t.Errorf("input not returned as is")
			}
		})
	}
}

func TestSubsetTagOnce(t *testing.T) {
	once, err := Subset([]byte(subsetObservation), "data", nil)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := Subset(once, "", []string{"value"})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(twice), "SUBSETTED"); n != 1 {
		t.Errorf("SUBSETTED %d times: %s", n, twice)
	}
	want := `{"resourceType":"Observation","id":"o","meta":{"versionId":"2","tag":[{"system":"urn:t","code":"a"},` + tagJSON + `]},` +
		`"status":"final","_status":{"extension":[{"url":"http://example.org/s","valueString":"s"}]},"code":{"text":"weight"},` +
		`"valueQuantity":{"value":1.50,"unit":"kg"}}`
	if string(twice) != want {
		t.Errorf("\n got %s\nwant %s", twice, want)
	}
	// A tag already there with a display and another member order counts.
	in := `{"resourceType":"Patient","id":"p","meta":{"tag":[{"code":"SUBSETTED","display":"subsetted","system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue"}]},"photo":[{"url":"u"}]}`
	got, err := Subset([]byte(in), "true", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"resourceType":"Patient","id":"p","meta":{"tag":[{"code":"SUBSETTED","display":"subsetted","system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue"}]}}`; string(got) != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestSubsetErrors(t *testing.T) {
	if _, err := Subset([]byte(subsetPatient), "maybe", nil); outcome.KindOf(err) != outcome.Invalid {
		t.Errorf("bad _summary: %v", err)
	}
	if _, err := Subset([]byte(`[1]`), "data", nil); outcome.KindOf(err) != outcome.Internal {
		t.Errorf("not an object: %v", err)
	}
	if _, err := Subset([]byte(`{"resourceType":"Nonesuch","id":"n","x":1}`), "true", nil); err == nil {
		t.Errorf("unknown type accepted for _summary=true")
	}
	// data and elements need no definition.
	got, err := Subset([]byte(`{"resourceType":"Nonesuch","id":"n","x":1,"y":2}`), "", []string{"x"})
	if err != nil || string(got) != `{"resourceType":"Nonesuch","id":"n","meta":{"tag":[`+tagJSON+`]},"x":1}` {
		t.Errorf("unknown type, elements: %s %v", got, err)
	}
}

// The table covers every R4 resource type and says what the spec pages
// show (Σ and cardinality columns).
func TestSummaryTable(t *testing.T) {
	m, err := summaryTable()
	if err != nil {
		t.Fatal(err)
	}
	types := Types()
	for _, typ := range types {
		if _, ok := m[typ]; !ok {
			t.Errorf("no summary definition for %s", typ)
		}
	}
	if len(m) != len(types)+2 {
		t.Errorf("%d definitions for %d types (+ Resource, DomainResource)", len(m), len(types))
	}
	for typ, d := range m {
		if !slices.IsSorted(d.Summary) || !slices.IsSorted(d.Mandatory) {
			t.Errorf("%s: lists not sorted", typ)
		}
		for _, e := range []string{"id", "meta", "implicitRules"} {
			if !slices.Contains(d.Summary, e) {
				t.Errorf("%s: %s not summary", typ, e)
			}
		}
		for _, e := range []string{"text", "language", "contained", "extension", "modifierExtension"} {
			if slices.Contains(d.Summary, e) {
				t.Errorf("%s: %s summary", typ, e)
			}
		}
	}
	// Against the R4 protos (generated from the official definitions):
	// every listed name is an element of the type (a choice by its forms),
	// and mandatory is what the protos require.
	fields := (&r4pb.ContainedResource{}).ProtoReflect().Descriptor().Oneofs().ByName("oneof_resource").Fields()
	for i := 0; i < fields.Len(); i++ {
		md := fields.Get(i).Message()
		typ := string(md.Name())
		forms := map[string]bool{}
		var required []string
		for j := 0; j < md.Fields().Len(); j++ {
			f := md.Fields().Get(j)
			names := []string{f.JSONName()}
			if f.Kind() == protoreflect.MessageKind && proto.GetExtension(f.Message().Options(), apb.E_IsChoiceType).(bool) {
				names = nil
				for k := 0; k < f.Message().Fields().Len(); k++ {
					n := f.Message().Fields().Get(k).JSONName()
					names = append(names, f.JSONName()+strings.ToUpper(n[:1])+n[1:])
				}
			}
			for _, n := range names {
				forms[n] = true
			}
			if proto.GetExtension(f.Options(), apb.E_ValidationRequirement).(apb.Requirement) == apb.Requirement_REQUIRED_BY_FHIR {
				required = append(required, names...)
			}
		}
		slices.Sort(required)
		d := m[typ]
		for _, e := range append(append([]string(nil), d.Summary...), d.Mandatory...) {
			if !forms[e] {
				t.Errorf("%s.%s is not an R4 element", typ, e)
			}
		}
		if !slices.Equal(required, d.Mandatory) && !(len(required) == 0 && len(d.Mandatory) == 0) {
			t.Errorf("%s mandatory %v, protos require %v", typ, d.Mandatory, required)
		}
	}
	checks := []struct {
		typ, elem          string
		summary, mandatory bool
	}{
		{"Patient", "name", true, false},
		{"Patient", "birthDate", true, false},
		{"Patient", "deceasedDateTime", true, false},
		{"Patient", "contact", false, false},
		{"Patient", "photo", false, false},
		{"Patient", "multipleBirthBoolean", false, false},
		{"Observation", "status", true, true},
		{"Observation", "code", true, true},
		{"Observation", "valueQuantity", true, false},
		{"Observation", "valueSampledData", true, false},
		{"Observation", "note", false, false},
		{"MedicationRequest", "medicationReference", true, true},
		{"Bundle", "type", true, true},
		{"Binary", "contentType", true, true},
		{"Binary", "data", false, false},
		{"Binary", "url", false, false},                // R5, not R4
		{"ResearchStudy", "recruitment", false, false}, // R5, not R4
		{"EvidenceVariable", "characteristic", true, true},
	}
	for _, c := range checks {
		d, ok := SummaryElements(c.typ)
		if !ok {
			t.Errorf("%s unknown", c.typ)
			continue
		}
		if got := slices.Contains(d.Summary, c.elem); got != c.summary {
			t.Errorf("%s.%s summary = %v", c.typ, c.elem, got)
		}
		if got := slices.Contains(d.Mandatory, c.elem); got != c.mandatory {
			t.Errorf("%s.%s mandatory = %v", c.typ, c.elem, got)
		}
	}
	if d, _ := SummaryElements("Patient"); len(d.Mandatory) != 0 {
		t.Errorf("Patient mandatory: %v", d.Mandatory)
	}
}
