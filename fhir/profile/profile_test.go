package profile

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/profiles"
)

var (
	setOnce    sync.Once
	testSet    *Set
	setErr     error
	parserOnce sync.Once
	testParser *resource.Parser
	parserErr  error
)

func loadSet(t *testing.T) *Set {
	t.Helper()
	setOnce.Do(func() { testSet, setErr = Load(profiles.FS) })
	if setErr != nil {
		t.Fatal(setErr)
	}
	return testSet
}

func parser(t *testing.T) *resource.Parser {
	t.Helper()
	parserOnce.Do(func() { testParser, parserErr = resource.NewParser() })
	if parserErr != nil {
		t.Fatal(parserErr)
	}
	return testParser
}

func parseErr(err error) string {
	var oe *outcome.Error
	if errors.As(err, &oe) {
		b, _ := json.Marshal(oe.Issues)
		return string(b)
	}
	return err.Error()
}

// TestConformanceResourcesAreValidR4 parses every StructureDefinition,
// CodeSystem and ValueSet of profiles/ with the R4 parser.
func TestConformanceResourcesAreValidR4(t *testing.T) {
	p := parser(t)
	entries, err := fs.ReadDir(profiles.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		kind, _, _ := strings.Cut(e.Name(), "-")
		if path.Ext(e.Name()) != ".json" || (kind != "StructureDefinition" && kind != "CodeSystem" && kind != "ValueSet") {
			continue
		}
		n++
		data, err := fs.ReadFile(profiles.FS, e.Name())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parse(data); err != nil {
			t.Errorf("%s: %s", e.Name(), parseErr(err))
		}
	}
	if n < 20 {
		t.Errorf("only %d conformance resources found", n)
	}
}

func TestLoad(t *testing.T) {
	s := loadSet(t)
	for _, u := range []string{
		Base + "/StructureDefinition/dossier-patient-ins",
		"https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-ins",
		"https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-encounter|2.1.0",
		"https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/pdsm-comprehensive-document-reference",
		Base + "/StructureDefinition/dossier-careplan-prevention",
	} {
		if !s.Has(u) {
			t.Errorf("profile %s not loaded", u)
		}
	}
	if got := len(s.Profiles()); got != 4 {
		t.Errorf("%d profiles, want 4", got)
	}
	checks := []struct {
		vs, system, code string
		want             bool
	}{
		{"dmp-security-labels", "urn:oid:1.2.250.1.213.1.1.4.13", "MASQUE_PS", true},
		{"dmp-security-labels", "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "N", true},
		{"dmp-security-labels", "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "U", false},
		{"tre-a03-classe-document", "urn:oid:1.2.250.1.213.1.1.4.1", "95", true},
		{"tre-a03-classe-document", "urn:oid:1.2.250.1.213.1.1.4.1", "12", false},
		{"dmp-document-types", "urn:oid:1.2.250.1.213.1.1.4.12", "DOCPAT09", true},
		{"dmp-document-types", "http://loinc.org", "60591-5", true},
		{"prevention-activity", Base + "/CodeSystem/prevention-activity", "vaccination-hpv", true},
		{"identity-reliability-status", "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0445", "QUAL", true},
	}
	for _, c := range checks {
		if got := s.ValueSetContains(Base+"/ValueSet/"+c.vs, c.system, c.code); got != c.want {
			t.Errorf("%s contains %s|%s = %v, want %v", c.vs, c.system, c.code, got, c.want)
		}
	}
}

// TestDocumentTypes checks profiles/document-types.json against the
// document types ValueSet and the classes code system.
func TestDocumentTypes(t *testing.T) {
	s := loadSet(t)
	data, err := fs.ReadFile(profiles.FS, "document-types.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		ClassSystem string `json:"classSystem"`
		Types       []struct{ System, Code, Display, Class string }
	}
	if err := json.Unmarshal(data, &table); err != nil {
		t.Fatal(err)
	}
	vs := s.valueSets[Base+"/ValueSet/dmp-document-types"]
	n := 0
	for _, cc := range vs.bySystem {
		n += len(cc)
	}
	if len(table.Types) != n {
		t.Errorf("table has %d types, ValueSet %d", len(table.Types), n)
	}
	want := map[string]string{"34112-3": "10", "60591-5": "11", "87273-9": "52", "57833-6": "42", "11502-2": "10", "REMB": "60", "PROT_ALD": "44", "DOCPAT03": "90"}
	for _, ty := range table.Types {
		if !vs.contains(ty.System, ty.Code) {
			t.Errorf("%s|%s not in the ValueSet", ty.System, ty.Code)
		}
		if !s.ValueSetContains(Base+"/ValueSet/tre-a03-classe-document", table.ClassSystem, ty.Class) {
			t.Errorf("%s: class %q is not a TRE_A03 code", ty.Code, ty.Class)
		}
		if w, ok := want[ty.Code]; ok && w != ty.Class {
			t.Errorf("%s: class %s, want %s", ty.Code, ty.Class, w)
		}
	}
}

// ---- fixtures ----

const (
	urlPatient  = Base + "/StructureDefinition/dossier-patient-ins"
	urlEnc      = Base + "/StructureDefinition/dossier-encounter"
	urlDoc      = Base + "/StructureDefinition/dossier-document-reference"
	urlCarePlan = Base + "/StructureDefinition/dossier-careplan-prevention"
)

var patientJSON = `{
  "resourceType": "Patient",
  "meta": {"profile": ["` + urlPatient + `"]},
  "extension": [{"url": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability",
    "extension": [{"url": "identityStatus", "valueCoding": {"system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0445", "code": "QUAL"}}]}],
  "identifier": [
    {"system": "urn:oid:1.2.250.1.71.4.2.7", "value": "IPP-123"},
    {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "282057511203449"}
  ],
  "name": [{"family": "Durand", "given": ["Sophie"]}],
  "gender": "female",
  "birthDate": "1982-05-14"
}`

var encounterJSON = `{
  "resourceType": "Encounter",
  "meta": {"profile": ["https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-encounter"]},
  "status": "finished",
  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
  "subject": {"reference": "Patient/p1"},
  "period": {"start": "2025-09-18T10:00:00+02:00"}
}`

var docJSON = `{
  "resourceType": "DocumentReference",
  "meta": {"profile": ["` + urlDoc + `"]},
  "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.250.1.999.1"},
  "status": "current",
  "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
  "category": [{"coding": [{"system": "urn:oid:1.2.250.1.213.1.1.4.1", "code": "10"}]}],
  "subject": {"reference": "Patient/p1"},
  "date": "2025-09-18T10:30:00+02:00",
  "author": [{"reference": "Practitioner/pr1"}],
  "custodian": {"reference": "Organization/o1"},
  "securityLabel": [
    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}]},
    {"coding": [{"system": "urn:oid:1.2.250.1.213.1.1.4.13", "code": "MASQUE_PS"}]}
  ],
  "content": [{
    "attachment": {"contentType": "text/plain", "language": "fr-FR", "data": "Qm9uam91cg==", "size": 7,
      "hash": "8w7L9bHLhcYx/ewLOWeFUJc8/Lw=", "title": "CR", "creation": "2025-09-18T10:30:00+02:00"},
    "format": {"system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode", "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient"}
  }],
  "context": {
    "facilityType": {"coding": [{"system": "urn:oid:1.2.250.1.71.4.2.4", "code": "SA07"}]},
    "practiceSetting": {"coding": [{"system": "urn:oid:1.2.250.1.71.4.2.5", "code": "SM54"}]},
    "period": {"start": "2025-09-18T10:00:00+02:00"}
  }
}`

var carePlanJSON = `{
  "resourceType": "CarePlan",
  "meta": {"profile": ["` + urlCarePlan + `"]},
  "status": "active",
  "intent": "plan",
  "category": [
    {"coding": [{"system": "http://snomed.info/sct", "code": "734163000"}]},
    {"coding": [{"system": "` + Base + `/CodeSystem/careplan-category", "code": "prevention", "display": "Prévention"}]}
  ],
  "subject": {"reference": "Patient/p1"},
  "activity": [
    {"detail": {"code": {"coding": [{"system": "` + Base + `/CodeSystem/prevention-activity", "code": "vaccination-dtp"}]},
      "status": "not-started", "scheduledPeriod": {"start": "2027-05-14"}}},
    {"detail": {"code": {"coding": [{"system": "` + Base + `/CodeSystem/prevention-activity", "code": "depistage-col-uterus"}]},
      "status": "completed"}}
  ]
}`

// edit is a change to a decoded resource: set (or delete, when del)
// the value at a dotted path whose numeric segments index arrays.
type edit struct {
	path string
	val  string // JSON
	del  bool
}

func set(p, v string) edit { return edit{path: p, val: v} }
func del(p string) edit    { return edit{path: p, del: true} }

func apply(t *testing.T, base string, edits []edit) []byte {
	t.Helper()
	var root any
	if err := json.Unmarshal([]byte(base), &root); err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		segs := strings.Split(e.path, ".")
		var v any
		if !e.del {
			if err := json.Unmarshal([]byte(e.val), &v); err != nil {
				t.Fatalf("%s: %v", e.val, err)
			}
		}
		cur := root
		for i, s := range segs {
			last := i == len(segs)-1
			switch c := cur.(type) {
			case map[string]any:
				if last {
					if e.del {
						delete(c, s)
					} else {
						c[s] = v
					}
				} else {
					cur = c[s]
				}
			case []any:
				n, err := strconv.Atoi(s)
				if err != nil || n >= len(c) {
					t.Fatalf("bad path %s", e.path)
				}
				if last {
					if e.del {
						t.Fatalf("cannot delete array item %s", e.path)
					}
					c[n] = v
				} else {
					cur = c[n]
				}
			default:
				t.Fatalf("bad path %s", e.path)
			}
		}
	}
	b, err := json.Marshal(root)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func summary(issues []outcome.Issue) []string {
	var out []string
	for _, is := range issues {
		s := is.Severity + " " + is.Code + " " + strings.Join(is.Expression, ",")
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestValidate(t *testing.T) {
	s := loadSet(t)
	cases := []struct {
		name   string
		typ    string
		base   string
		edits  []edit
		strict bool
		want   []string // "severity code expression", sorted
	}{
		// Patient
		{"patient ok", "Patient", patientJSON, nil, false, nil},
		{"patient name missing", "Patient", patientJSON, []edit{del("name")}, false,
			[]string{"error required Patient.name"}},
		{"patient gender and birthDate missing", "Patient", patientJSON, []edit{del("gender"), del("birthDate")}, false,
			[]string{"error required Patient.birthDate", "error required Patient.gender"}},
		{"patient NIR without key", "Patient", patientJSON, []edit{set("identifier.1.value", `"1840320123456"`)}, false,
			[]string{"error value Patient.identifier[1].value"}},
		{"patient NIR Corsica ok", "Patient", patientJSON, []edit{set("identifier.1.value", `"184032A12345678"`)}, false, nil},
		{"patient NIR bad", "Patient", patientJSON, []edit{set("identifier.1.value", `"28205751120X449"`)}, false,
			[]string{"error value Patient.identifier[1].value"}},
		{"patient NIR test slice regex", "Patient", patientJSON, []edit{set("identifier.1.system", `"urn:oid:1.2.250.1.213.1.4.10"`), set("identifier.1.value", `"12"`)}, false,
			[]string{"error value Patient.identifier[1].value"}},
		{"patient NIA no regex", "Patient", patientJSON, []edit{set("identifier.1.system", `"urn:oid:1.2.250.1.213.1.4.9"`), set("identifier.1.value", `"12"`)}, false, nil},
		{"patient INS value missing", "Patient", patientJSON, []edit{del("identifier.1.value")}, false,
			[]string{"error required Patient.identifier[1].value"}},
		{"patient two INS-NIR", "Patient", patientJSON, []edit{set("identifier.0", `{"system":"urn:oid:1.2.250.1.213.1.4.8","value":"282057511203449"}`)}, false,
			[]string{"error structure Patient.identifier"}},
		{"patient other identifier free", "Patient", patientJSON, []edit{set("identifier.0.value", `"x"`)}, false, nil},
		{"patient reliability code invalid", "Patient", patientJSON, []edit{set("extension.0.extension.0.valueCoding.code", `"DOUTE"`)}, false,
			[]string{"error code-invalid Patient.extension[0].extension[0].value"}},
		{"patient reliability system unknown", "Patient", patientJSON, []edit{set("extension.0.extension.0.valueCoding.system", `"http://example.org/x"`)}, false,
			[]string{"error code-invalid Patient.extension[0].extension[0].value"}},
		{"patient reliability status missing", "Patient", patientJSON, []edit{set("extension.0.extension.0.url", `"validationDate"`), set("extension.0.extension.0.valueCoding", `null`)}, false,
			[]string{"error required Patient.extension[0].extension"}},
		{"patient reliability value type", "Patient", patientJSON, []edit{del("extension.0.extension.0.valueCoding"), set("extension.0.extension.0.valueString", `"QUAL"`)}, false,
			[]string{"error structure Patient.extension[0].extension[0].value"}},
		{"patient other extension free", "Patient", patientJSON, []edit{set("extension.0.url", `"http://example.org/ext"`)}, false, nil},
		// Encounter, claimed through the FR Core URL it follows
		{"encounter ok", "Encounter", encounterJSON, nil, false, nil},
		{"encounter subject missing", "Encounter", encounterJSON, []edit{del("subject")}, false,
			[]string{"error required Encounter.subject"}},
		{"encounter period start missing", "Encounter", encounterJSON, []edit{set("period", `{"end":"2025-09-18T11:00:00+02:00"}`)}, false,
			[]string{"error required Encounter.period.start"}},
		{"encounter period missing", "Encounter", encounterJSON, []edit{del("period")}, false,
			[]string{"error required Encounter.period"}},
		// DocumentReference
		{"document ok", "DocumentReference", docJSON, nil, false, nil},
		{"document hash missing", "DocumentReference", docJSON, []edit{del("content.0.attachment.hash")}, false,
			[]string{"error required DocumentReference.content[0].attachment.hash"}},
		{"document all attachment metadata missing", "DocumentReference", docJSON,
			[]edit{set("content.0.attachment", `{"url":"Binary/b1"}`)}, false,
			[]string{"error required DocumentReference.content[0].attachment.contentType", "error required DocumentReference.content[0].attachment.creation",
				"error required DocumentReference.content[0].attachment.hash", "error required DocumentReference.content[0].attachment.language",
				"error required DocumentReference.content[0].attachment.size", "error required DocumentReference.content[0].attachment.title"}},
		{"document url instead of data ok", "DocumentReference", docJSON, []edit{del("content.0.attachment.data"), set("content.0.attachment.url", `"Binary/b1"`)}, false, nil},
		{"document neither url nor data", "DocumentReference", docJSON, []edit{del("content.0.attachment.data")}, false,
			[]string{"error invariant DocumentReference.content[0].attachment"}},
		{"document securityLabel missing", "DocumentReference", docJSON, []edit{del("securityLabel")}, false,
			[]string{"error required DocumentReference.securityLabel"}},
		{"document securityLabel unknown", "DocumentReference", docJSON, []edit{set("securityLabel.1", `{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"U"}]}`)}, false,
			[]string{"error code-invalid DocumentReference.securityLabel[1]"}},
		{"document status entered-in-error", "DocumentReference", docJSON, []edit{set("status", `"entered-in-error"`)}, false,
			[]string{"error code-invalid DocumentReference.status"}},
		{"document type not DMP", "DocumentReference", docJSON, []edit{set("type", `{"coding":[{"system":"http://loinc.org","code":"1234-5"}]}`)}, false,
			[]string{"error code-invalid DocumentReference.type"}},
		{"document type TRE_A05 ok", "DocumentReference", docJSON, []edit{set("type", `{"coding":[{"system":"http://loinc.org","code":"1234-5"},{"system":"urn:oid:1.2.250.1.213.1.1.4.12","code":"REMB"}]}`)}, false, nil},
		{"document category text only", "DocumentReference", docJSON, []edit{set("category.0", `{"text":"Compte rendu"}`)}, false,
			[]string{"error code-invalid DocumentReference.category[0]"}},
		{"document context missing", "DocumentReference", docJSON, []edit{del("context")}, false,
			[]string{"error required DocumentReference.context"}},
		{"document context children missing", "DocumentReference", docJSON, []edit{set("context", `{"period":{"end":"2025-09-18T10:00:00+02:00"}}`)}, false,
			[]string{"error required DocumentReference.context.facilityType", "error required DocumentReference.context.period.start", "error required DocumentReference.context.practiceSetting"}},
		{"document many errors at once", "DocumentReference", docJSON, []edit{del("author"), del("custodian"), del("masterIdentifier"), del("content.0.format"), del("date")}, false,
			[]string{"error required DocumentReference.author", "error required DocumentReference.content[0].format", "error required DocumentReference.custodian",
				"error required DocumentReference.date", "error required DocumentReference.masterIdentifier"}},
		// CarePlan
		{"careplan ok", "CarePlan", carePlanJSON, nil, false, nil},
		{"careplan prevention category missing", "CarePlan", carePlanJSON, []edit{set("category.1.coding.0.code", `"other"`)}, false,
			[]string{"error required CarePlan.category"}},
		{"careplan prevention category twice", "CarePlan", carePlanJSON, []edit{set("category.0", `{"coding":[{"system":"`+Base+`/CodeSystem/careplan-category","code":"prevention"}]}`)}, false,
			[]string{"error structure CarePlan.category"}},
		{"careplan activity missing", "CarePlan", carePlanJSON, []edit{del("activity")}, false,
			[]string{"error required CarePlan.activity"}},
		{"careplan detail missing", "CarePlan", carePlanJSON, []edit{set("activity.1", `{"progress":[{"text":"x"}]}`)}, false,
			[]string{"error required CarePlan.activity[1].detail"}},
		{"careplan activity code not prevention", "CarePlan", carePlanJSON, []edit{set("activity.0.detail.code", `{"coding":[{"system":"http://snomed.info/sct","code":"33879002"}]}`)}, false,
			[]string{"error code-invalid CarePlan.activity[0].detail.code"}},
		{"careplan activity code missing", "CarePlan", carePlanJSON, []edit{del("activity.0.detail.code")}, false,
			[]string{"error required CarePlan.activity[0].detail.code"}},
		{"careplan scheduledString", "CarePlan", carePlanJSON, []edit{del("activity.0.detail.scheduledPeriod"), set("activity.0.detail.scheduledString", `"dans deux ans"`)}, false,
			[]string{"error structure CarePlan.activity[0].detail.scheduled"}},
		{"careplan scheduled start missing", "CarePlan", carePlanJSON, []edit{set("activity.0.detail.scheduledPeriod", `{"end":"2027-12-31"}`)}, false,
			[]string{"error required CarePlan.activity[0].detail.scheduled.start"}},
		// meta.profile and strict mode
		{"unknown profile warns", "Patient", patientJSON, []edit{set("meta.profile", `["http://example.org/StructureDefinition/other"]`), del("gender")}, false,
			[]string{"warning not-supported Patient.meta.profile[0]"}},
		{"unknown profile + strict applies default", "Patient", patientJSON, []edit{set("meta.profile", `["http://example.org/StructureDefinition/other"]`), del("gender")}, true,
			[]string{"error required Patient.gender", "warning not-supported Patient.meta.profile[0]"}},
		{"no profile non-strict", "DocumentReference", docJSON, []edit{del("meta"), del("securityLabel")}, false, nil},
		{"no profile strict", "DocumentReference", docJSON, []edit{del("meta"), del("securityLabel")}, true,
			[]string{"error required DocumentReference.securityLabel"}},
		{"strict encounter", "Encounter", encounterJSON, []edit{del("meta"), del("subject")}, true,
			[]string{"error required Encounter.subject"}},
		{"strict non-prevention careplan", "CarePlan", carePlanJSON, []edit{del("meta"), set("category", `[{"text":"suivi"}]`), del("activity")}, true, nil},
		{"strict prevention careplan", "CarePlan", carePlanJSON, []edit{del("meta"), del("activity")}, true,
			[]string{"error required CarePlan.activity"}},
		{"both URLs claimed: one report", "Patient", patientJSON, []edit{set("meta.profile", `["`+urlPatient+`","https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-patient-ins|2.1.0"]`), del("name")}, true,
			[]string{"error required Patient.name"}},
		{"profile of another type", "Encounter", encounterJSON, []edit{set("meta.profile", `["`+urlPatient+`"]`)}, false,
			[]string{"error invalid Encounter.meta.profile[0]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := apply(t, c.base, c.edits)
			got := s.Validate(c.typ, data, c.strict)
			want := append([]string(nil), c.want...)
			sort.Strings(want)
			if fmt.Sprint(summary(got)) != fmt.Sprint(want) {
				b, _ := json.MarshalIndent(got, "", " ")
				t.Errorf("got %v\nwant %v\n%s", summary(got), want, b)
			}
		})
	}
}

// The fixtures are valid R4 themselves (profiles aside).
func TestFixturesParse(t *testing.T) {
	p := parser(t)
	for _, f := range []string{patientJSON, encounterJSON, docJSON, carePlanJSON} {
		if _, err := p.Parse([]byte(f)); err != nil {
			t.Error(parseErr(err))
		}
	}
}

// TestSampleRecord parses every entry of testdata/sample-record.json and
// validates it strictly.
func TestSampleRecord(t *testing.T) {
	s := loadSet(t)
	p := parser(t)
	data, err := os.ReadFile("../../testdata/sample-record.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse(data); err != nil {
		t.Fatalf("bundle: %s", parseErr(err))
	}
	var b struct {
		Type  string
		Entry []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	if b.Type != "transaction" {
		t.Errorf("bundle type %q", b.Type)
	}
	types := map[string]int{}
	for _, e := range b.Entry {
		parsed, err := p.Parse(e.Resource)
		if err != nil {
			t.Errorf("%s: %s", e.FullURL, parseErr(err))
			continue
		}
		types[parsed.Type]++
		if issues := s.Validate(parsed.Type, e.Resource, true); len(issues) > 0 {
			t.Errorf("%s (%s): %+v", e.FullURL, parsed.Type, issues)
		}
	}
	checkAttachments(t, data)
	want := map[string]int{"Organization": 1, "Practitioner": 2, "Patient": 1, "Encounter": 2, "DocumentReference": 5, "Binary": 1, "CarePlan": 1}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Errorf("entries by type %v, want %v", types, want)
	}
}

// checkAttachments verifies size and hash (SHA-1, base64) of every
// attachment of the sample, inline or in a Binary of the bundle.
func checkAttachments(t *testing.T, data []byte) {
	t.Helper()
	var b struct {
		Entry []struct {
			FullURL  string `json:"fullUrl"`
			Resource struct {
				ResourceType string `json:"resourceType"`
				Data         []byte `json:"data"`
				Content      []struct {
					Attachment struct {
						URL  string `json:"url"`
						Data []byte `json:"data"`
						Size int    `json:"size"`
						Hash string `json:"hash"`
					} `json:"attachment"`
				} `json:"content"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	binaries := map[string][]byte{}
	for _, e := range b.Entry {
		if e.Resource.ResourceType == "Binary" {
			binaries[e.FullURL] = e.Resource.Data
		}
	}
	n := 0
	for _, e := range b.Entry {
		for _, c := range e.Resource.Content {
			a := c.Attachment
			bytes := a.Data
			if a.URL != "" {
				var ok bool
				if bytes, ok = binaries[a.URL]; !ok {
					t.Errorf("%s: attachment url %s is not a Binary of the bundle", e.FullURL, a.URL)
				}
			}
			sum := sha1.Sum(bytes)
			if a.Size != len(bytes) || a.Hash != base64.StdEncoding.EncodeToString(sum[:]) {
				t.Errorf("%s: size %d hash %s, want %d %s", e.FullURL, a.Size, a.Hash, len(bytes), base64.StdEncoding.EncodeToString(sum[:]))
			}
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d attachments checked", n)
	}
}

func TestFHIRPathSubset(t *testing.T) {
	focus := map[string]any{"url": "x", "size": json.Number("3"), "child": map[string]any{"a": []any{"1", "2"}}, "valueString": "v"}
	cases := []struct {
		expr string
		want any // bool, or nil for empty
	}{
		{"url.exists() or data.exists()", true},
		{"data.exists() or hash.exists()", false},
		{"url.exists() and data.empty()", true},
		{"(url.exists() and data.exists()).not()", true},
		{"data.exists() implies hash.exists()", true},
		{"url.exists() implies hash.exists()", false},
		{"url.exists() xor size.exists()", false},
		{"child.a.exists()", true},
		{"value.exists()", true},
		{"$this.url.exists()", true},
		{"data.exists().not() and missing", nil},
	}
	for _, c := range cases {
		x, err := compileFHIRPath(c.expr)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		got := x.eval(focus)
		var g any
		if len(got) == 1 {
			g = got[0]
		}
		if c.want == nil && g == nil {
			continue
		}
		if g != c.want {
			t.Errorf("%s = %v, want %v", c.expr, got, c.want)
		}
	}
	for _, bad := range []string{"url.where(x)", "a = 'b'", "url.exists(", "and url", "exists()"} {
		if _, err := compileFHIRPath(bad); err == nil {
			t.Errorf("%q compiled", bad)
		}
	}
}

func TestValidNIRKey(t *testing.T) {
	for nir, want := range map[string]bool{
		"282057511203449": true,  // the sample record's test INS
		"282057511203448": false, // wrong key
		"1840320123456":   false, // no key
		"184032A12345678": false,
		"28205751120X449": false,
	} {
		if got := ValidNIRKey(nir); got != want {
			t.Errorf("ValidNIRKey(%s) = %v", nir, got)
		}
	}
	// Corsica: 2A counts as 19.
	body := "1840319123456"
	key := 97 - mod97(body)
	if !ValidNIRKey(fmt.Sprintf("184032A123456%02d", key)) {
		t.Error("Corsican NIR refused")
	}
}

func mod97(digits string) int {
	r := 0
	for _, c := range digits {
		r = (r*10 + int(c-'0')) % 97
	}
	return r
}
