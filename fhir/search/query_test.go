package search

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/store"
)

// memFinder is a Finder over versions in memory, using Filter.Match.
type memFinder struct {
	vs      []*store.Version
	queries []store.Query
}

func (m *memFinder) find(_ context.Context, q store.Query) ([]*store.Version, error) {
	m.queries = append(m.queries, q)
	var out []*store.Version
	for _, v := range m.vs {
		if v.Type == q.Type && q.Where().Match(v) {
			out = append(out, v)
		}
	}
	return out, nil
}

func compileQuery(t *testing.T, r *Registry, typ, query string, strict bool, find Finder) (*Plan, error) {
	t.Helper()
	params, err := url.ParseQuery(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return r.Compile(context.Background(), typ, params, testBase, strict, find)
}

func matching(plan *Plan, vs []*store.Version) []string {
	var out []string
	for _, v := range vs {
		if v.Type == plan.Type && plan.Filter.Match(v) {
			out = append(out, v.ID)
		}
	}
	slices.Sort(out)
	return out
}

func withNow(t *testing.T, s string) {
	t.Helper()
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	old := now
	now = func() time.Time { return at }
	t.Cleanup(func() { now = old })
}

// TestSearch compiles searches and runs them over the corpus. Expected
// results are worked out by hand from the R4 search page.
func TestSearch(t *testing.T) {
	r := r4Registry(t)
	vs := corpusVersions(t, r)
	mem := &memFinder{vs: vs}
	withNow(t, "2020-01-11T00:00:00Z")
	cases := []struct {
		typ, query string
		want       []string
	}{
		// string: prefix of the normalised value
		{"Patient", "name=peter", []string{"p1"}},
		{"Patient", "name=PETER", []string{"p1"}},
		{"Patient", "name=pet", []string{"p1"}},
		{"Patient", "name=chal", []string{"p1", "p3"}},
		{"Patient", "family=menard", []string{"p2"}},
		{"Patient", "family=M%C3%A9nard", []string{"p2"}},
		{"Patient", "given=zoe", []string{"p2"}},
		{"Patient", "name=bob%20%20smith", []string{"p4"}},
		{"Patient", "name=smith", nil}, // the text starts with Bob
		{"Patient", "name:contains=smith", []string{"p4"}},
		{"Patient", "name:contains=ALM", []string{"p1", "p3"}},
		{"Patient", "family:exact=Chalmers", []string{"p1", "p3"}},
		{"Patient", "family:exact=chalmers", nil},
		{"Patient", "family:exact=Chalm", nil},
		{"Patient", "family:exact=M%C3%A9nard", []string{"p2"}},
		{"Patient", "name=peter,anne", []string{"p1", "p3"}},
		{"Patient", "name=peter&name=chalmers", []string{"p1"}},
		{"Patient", "name=peter&name=anne", nil},
		{"Patient", "address-city=pleasant", []string{"p1"}},
		{"Patient", "address=erewhon", nil},
		{"Patient", "address=534", []string{"p1"}},
		{"Patient", "address:contains=erewhon", []string{"p1"}},
		{"Patient", "name=a\\,b", nil},

		// token
		{"Patient", "gender=male", []string{"p1"}},
		{"Patient", "gender=|male", []string{"p1"}},
		{"Patient", "gender=female,male", []string{"p1", "p2", "p3"}},
		{"Patient", "gender:not=male", []string{"p2", "p3", "p4"}},
		{"Patient", "gender:not=male,female", []string{"p4"}},
		{"Patient", "identifier=urn:mrn|123", []string{"p1"}},
		{"Patient", "identifier=123", []string{"p1"}},
		{"Patient", "identifier=urn:mrn|", []string{"p1"}},
		{"Patient", "identifier=|123", nil},
		{"Patient", "identifier=urn:other|123", nil},
		{"Patient", "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|123", []string{"p1"}},
		{"Patient", "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|124", nil},
		{"Patient", "active=true", []string{"p1"}},
		{"Patient", "active=false", nil},
		{"Patient", "deceased=false", []string{"p1", "p2", "p3", "p4"}},
		{"Patient", "phone=555-1234", []string{"p1"}},
		{"Patient", "email=p@x.org", []string{"p1"}},
		{"Patient", "telecom=p@x.org", []string{"p1"}},
		{"Patient", "_tag=urn:tags|t1", []string{"p1"}},
		{"Patient", "_tag=t2", nil},
		{"Observation", "code=http://loinc.org|8480-6", []string{"o1", "o2"}},
		{"Observation", "code=8480-6", []string{"o1", "o2"}},
		{"Observation", "code=|8480-6", nil},
		{"Observation", "code=http://loinc.org|", []string{"o1", "o2", "o3", "o4", "o5"}},
		{"Observation", "code:text=blood", []string{"o1", "o2", "o4"}},
		{"Observation", "code:text=DOSE", []string{"o6"}},
		{"Observation", "code:not=8480-6", []string{"o3", "o4", "o5", "o6", "o7"}},
		{"Observation", "code:not=8480-6,29463-7", []string{"o4", "o5", "o6", "o7"}},
		{"Observation", "code:not=8480-6&code:not=29463-7", []string{"o4", "o5", "o6", "o7"}},
		{"Observation", "value-concept=http://snomed.info/sct|260385009", []string{"o5"}},
		{"Observation", "value-concept:text=neg", []string{"o5"}},
		{"Observation", "status=final,preliminary&code=8480-6", []string{"o1", "o2"}},
		{"Encounter", "class=AMB", []string{"e1"}},

		// reference
		{"Observation", "subject=Patient/p1", []string{"o1", "o3"}},
		{"Observation", "subject=p1", []string{"o1", "o3"}},
		{"Observation", "subject=http://base/fhir/Patient/p1", []string{"o1", "o3"}},
		{"Observation", "subject=Patient/p1/_history/4", []string{"o1", "o3"}},
		{"Observation", "subject:Patient=p1", []string{"o1", "o3"}},
		{"Observation", "subject:Group=p1", nil},
		{"Observation", "subject:Group=Patient/p1", nil},
		{"Observation", "subject:Patient=Patient/p1,Group/g1", []string{"o1", "o3"}},
		{"Observation", "subject=Group/g1", []string{"o4"}},
		{"Observation", "subject=g1,p3", []string{"o4", "o5"}},
		{"Observation", "patient=p1", []string{"o1", "o3"}},
		{"Observation", "patient=g1", nil},
		{"Observation", "subject:identifier=urn:ssn|999", []string{"o6"}},
		{"Observation", "subject:identifier=999", []string{"o6"}},
		{"Patient", "organization=Organization/o1", []string{"p1"}},
		{"Patient", "organization=o1", []string{"p1"}},
		{"Patient", "organization=http://base/fhir/Organization/o1", []string{"p1"}},
		{"Patient", "organization=http://other/fhir/Organization/o9", []string{"p2"}},
		{"Patient", "organization=o9", nil},
		{"Patient", "general-practitioner=gp1", []string{"p1"}},
		{"QuestionnaireResponse", "questionnaire=http://acme.org/Questionnaire/q1", []string{"qr1"}},
		{"QuestionnaireResponse", "questionnaire=http://acme.org/Questionnaire/q1|2.0", []string{"qr1"}},
		{"QuestionnaireResponse", "questionnaire=http://acme.org/Questionnaire/q1|1.0", nil},

		// chains
		{"Observation", "subject:Patient.name=peter", []string{"o1", "o3"}},
		{"Observation", "subject:Patient.name=nobody", nil},
		{"Observation", "patient.gender=female", []string{"o2", "o5"}},
		{"Observation", "subject.gender=female", []string{"o2", "o5"}},
		{"Observation", "encounter.subject:Patient.birthdate=1974", []string{"o1"}},
		{"Observation", "encounter.patient.family=chalmers", []string{"o1"}},
		{"Observation", "encounter.patient.family=chalmers,menard", []string{"o1", "o2"}},
		{"Observation", "patient.name=chalmers&patient.gender=female", []string{"o5"}}, // Anne Chalmers
		{"Observation", "patient.name=peter&patient.gender=female", nil},
		{"Observation", "patient.name=chalmers&patient.gender=male", []string{"o1", "o3"}},

		// _has
		{"Patient", "_has:Observation:patient:code=8480-6", []string{"p1", "p2"}},
		{"Patient", "_has:Observation:subject:code=85354-9", nil}, // its subject is a Group
		{"Group", "_has:Observation:subject:code=85354-9", []string{"g1"}},
		{"Patient", "_has:Encounter:patient:_has:Observation:encounter:code=8480-6", []string{"p1", "p2"}},
		{"Patient", "_has:Encounter:patient:_has:Observation:encounter:value-quantity=gt110", []string{"p1"}},
		{"Patient", "_has:Observation:patient:code:text=weight", []string{"p1"}},

		// date, on a day
		{"Patient", "birthdate=1974-12-25", []string{"p1"}},
		{"Patient", "birthdate=1974-12", []string{"p1"}},
		{"Patient", "birthdate=1974-12-25T10:00:00Z", nil}, // the stored day is not within that second
		{"Patient", "birthdate=1970", []string{"p2", "p3"}},
		{"Patient", "birthdate=eq1970", []string{"p2", "p3"}},
		{"Patient", "birthdate=1970-06", []string{"p2"}},
		{"Patient", "birthdate=ne1970", []string{"p1"}},
		{"Patient", "birthdate=gt1970", []string{"p1"}},
		{"Patient", "birthdate=ge1970", []string{"p1", "p2", "p3"}},
		{"Patient", "birthdate=lt1970-06-01", []string{"p3"}},
		{"Patient", "birthdate=le1970-06-01", []string{"p2", "p3"}},
		{"Patient", "birthdate=sa1970-06-01", []string{"p1"}},
		{"Patient", "birthdate=eb1970-06-01", nil},
		{"Patient", "birthdate=eb1971", []string{"p2", "p3"}},
		{"Patient", "birthdate=ge1970&birthdate=lt1971", []string{"p2", "p3"}},
		{"Patient", "birthdate=1970,1974", []string{"p1", "p2", "p3"}},
		{"Patient", "_lastUpdated=gt2024-01-01", []string{"p1"}},
		{"Patient", "_lastUpdated=2024-05-01T10:00:00Z", []string{"p1"}},
		{"Patient", "_lastUpdated=2024-05-01T12:00:00%2B02:00", []string{"p1"}},
		{"Patient", "_lastUpdated=2024-05-01T12:00:00+02:00", []string{"p1"}}, // '+' decoded as a space
		{"Patient", "_lastUpdated=lt2024-05-01T10:00:00Z", nil},

		// date, on instants and periods
		{"Observation", "date=2020", []string{"o1", "o4"}},
		{"Observation", "date=ge2020-01-01", []string{"o1", "o2", "o3", "o4"}},
		{"Observation", "date=lt2020-01-01", []string{"o2"}},
		{"Observation", "date=gt2020-01-01", []string{"o1", "o2", "o3"}},
		{"Observation", "date=sa2020-01-01", []string{"o1", "o3"}},
		{"Observation", "date=eb2020-01-01", nil},
		{"Observation", "date=eb2020-03-05", []string{"o2", "o4"}},
		{"Observation", "date=le2019-12-31", []string{"o2"}},
		{"Observation", "date=2020-03-05T10:00:00Z", []string{"o1"}},
		{"Observation", "date=2020-03-05T11:00:00%2B01:00", []string{"o1"}},
		{"Observation", "date=2020-03-05T10:00", []string{"o1"}},
		{"Observation", "date=2020-03-05T10:01", nil},
		{"Observation", "date=ne2020", []string{"o2", "o3"}},
		{"Observation", "date=2019-12-30", nil}, // the period is longer than that day
		{"Observation", "date=2019-12", nil},
		{"Observation", "date=ap2020-01-01", []string{"o2", "o4"}}, // now is 10 days later: ±1 day
		{"Observation", "date=ap2019-12-25", nil},
		{"Encounter", "date=ge2030", []string{"e2"}}, // no end
		{"Encounter", "date=lt2021", []string{"e1"}},
		{"Encounter", "date=le2021-06-01", []string{"e1", "e2"}},
		{"Encounter", "date=2020-03-05", []string{"e1"}},
		{"Encounter", "date=2020-03-05T10:00", nil},

		// number: the search value's precision
		{"RiskAssessment", "probability=100", []string{"ra1", "ra2", "ra3", "ra5"}},
		{"RiskAssessment", "probability=100.00", []string{"ra1", "ra5"}},
		{"RiskAssessment", "probability=1e2", []string{"ra1", "ra2", "ra3", "ra4", "ra5"}},
		{"RiskAssessment", "probability=1.00e2", []string{"ra1", "ra2", "ra3", "ra5"}},
		{"RiskAssessment", "probability=gt100", []string{"ra3", "ra4"}},
		{"RiskAssessment", "probability=ge100", []string{"ra1", "ra3", "ra4"}},
		{"RiskAssessment", "probability=lt100", []string{"ra2", "ra5", "ra6"}},
		{"RiskAssessment", "probability=le99.5", []string{"ra2", "ra6"}},
		{"RiskAssessment", "probability=ne100", []string{"ra4", "ra6"}},
		{"RiskAssessment", "probability=ap100", []string{"ra1", "ra2", "ra3", "ra4", "ra5"}},
		{"RiskAssessment", "probability=15", nil},
		{"RiskAssessment", "probability=sa20", []string{"ra1", "ra2", "ra3", "ra4", "ra5"}},
		{"RiskAssessment", "probability=eb20", nil},
		{"RiskAssessment", "probability=eb21", []string{"ra6"}},
		{"RiskAssessment", "probability=ap18", []string{"ra6"}},

		// quantity
		{"Observation", "value-quantity=120", []string{"o1"}},
		{"Observation", "value-quantity=120|http://unitsofmeasure.org|mm[Hg]", []string{"o1"}},
		{"Observation", "value-quantity=120||mm[Hg]", []string{"o1"}},
		{"Observation", "value-quantity=120||mmHg", []string{"o1"}},
		{"Observation", "value-quantity=120|http://unitsofmeasure.org|kg", nil},
		{"Observation", "value-quantity=gt99|http://unitsofmeasure.org|mm[Hg]", []string{"o1", "o2"}},
		{"Observation", "value-quantity=99.5||kg", []string{"o3"}},
		{"Observation", "value-quantity=lt100", []string{"o3", "o6"}},
		{"Observation", "value-quantity=100", []string{"o2", "o3"}},
		{"Observation", "value-quantity=ap110", []string{"o1", "o2", "o3"}},
		{"Observation", "value-quantity=5||mg", []string{"o6"}},
		{"Observation", "value-quantity=5|http://unitsofmeasure.org|mg", nil},

		// composite
		{"Observation", "code-value-quantity=http://loinc.org|8480-6$gt110", []string{"o1"}},
		{"Observation", "code-value-quantity=8480-6$100", []string{"o2"}},
		{"Observation", "code-value-quantity=http://loinc.org|8480-6$lt130|http://unitsofmeasure.org|mm[Hg]", []string{"o1", "o2"}},
		{"Observation", "code-value-quantity=http://loinc.org|8480-6$lt130||kg", nil},
		{"Observation", "code-value-quantity=29463-7$gt100", nil},
		{"Observation", "code-value-quantity=8480-6$gt110,29463-7$lt100", []string{"o1", "o3"}},
		{"Observation", "component-code-value-quantity=http://loinc.org|8480-6$140", []string{"o4"}},
		{"Observation", "component-code-value-quantity=8462-4$140", nil}, // 140 is the other component's
		{"Observation", "component-code-value-quantity=8462-4$90", []string{"o4"}},
		{"Observation", "combo-code-value-quantity=8480-6$140", []string{"o4"}},
		{"Observation", "combo-code-value-quantity=8480-6$120", []string{"o1"}},
		{"Observation", "code-value-concept=http://loinc.org|12345-6$http://snomed.info/sct|260385009", []string{"o5"}},
		{"Observation", "code-value-concept=12345-6$260385009", []string{"o5"}},
		{"Observation", "code-value-concept=12345-6$1", nil},

		// uri
		{"ValueSet", "url=http://acme.org/fhir/ValueSet/123", []string{"vs1"}},
		{"ValueSet", "url=http://acme.org/fhir/ValueSet/12", nil},
		{"ValueSet", "url:below=http://acme.org/fhir/", []string{"vs1", "vs2"}},
		{"ValueSet", "url:below=http://acme.org/fhir", []string{"vs1", "vs2", "vs4"}},
		{"ValueSet", "url:above=http://acme.org/fhir/ValueSet/123/_history/5", []string{"vs1", "vs4"}},
		{"ValueSet", "url=urn:oid:1.2.3", []string{"vs3"}},

		// :missing
		{"Patient", "birthdate:missing=true", []string{"p4"}},
		{"Patient", "birthdate:missing=false", []string{"p1", "p2", "p3"}},
		{"Patient", "gender:missing=true", []string{"p4"}},
		{"Patient", "name:missing=true", nil},
		{"Patient", "telecom:missing=true", []string{"p2", "p3", "p4"}},
		{"Observation", "subject:missing=true", []string{"o7"}},
		{"Observation", "code:missing=true", nil}, // text-only codes are values too
		{"Observation", "value-quantity:missing=false", []string{"o1", "o2", "o3", "o6"}},
		{"Observation", "code-value-concept:missing=false", []string{"o5"}},
		{"ValueSet", "url:missing=true", nil},

		// _id
		{"Patient", "_id=p1,p2", []string{"p1", "p2"}},
		{"Patient", "_id=p1&gender=female", nil},
		{"Patient", "_id:not=p1", []string{"p2", "p3", "p4"}},

		// result parameters do not filter
		{"Patient", "_count=1&_sort=-birthdate&_total=accurate&_summary=data&_elements=name&_format=json&_pretty=true", []string{"p1", "p2", "p3", "p4"}},
	}
	for _, c := range cases {
		plan, err := compileQuery(t, r, c.typ, c.query, true, mem.find)
		if err != nil {
			t.Errorf("%s?%s: %v", c.typ, c.query, err)
			continue
		}
		if got := matching(plan, vs); !slices.Equal(got, c.want) {
			t.Errorf("%s?%s = %q, want %q\nfilter %v", c.typ, c.query, got, c.want, plan.Filter)
		}
	}
}

// TestPatientHint checks which searches say which patients' records hold
// every match.
func TestPatientHint(t *testing.T) {
	r := r4Registry(t)
	vs := corpusVersions(t, r)
	mem := &memFinder{vs: vs}
	cases := []struct {
		typ, query string
		want       []string // nil: no hint
	}{
		{"Observation", "patient=p1", []string{"p1"}},
		{"Observation", "patient=p1,Patient/p2", []string{"p1", "p2"}},
		{"Observation", "subject=Patient/p1", []string{"p1"}},
		{"Observation", "subject:Patient=p1", []string{"p1"}},
		{"Observation", "subject=p1", nil},                  // could be a Group's id
		{"Observation", "subject=Patient/p1,Group/g1", nil}, // not only patients
		{"Observation", "subject:Patient.name=peter", []string{"p1"}},
		{"Observation", "patient.gender=female", []string{"p2", "p3"}},
		{"Observation", "performer=Patient/p1", nil},
		{"Observation", "code=8480-6", nil},
		{"Observation", "subject:identifier=999", nil},
		{"Condition", "subject=Patient/p1", []string{"p1"}},
		{"Encounter", "patient=p2", []string{"p2"}},
		{"Appointment", "actor=Patient/p1", nil}, // several patients per appointment
	}
	for _, c := range cases {
		plan, err := compileQuery(t, r, c.typ, c.query, true, mem.find)
		if err != nil {
			t.Errorf("%s?%s: %v", c.typ, c.query, err)
			continue
		}
		ids, ok := plan.Filter.PatientsOf()
		if !ok {
			ids = nil
		}
		slices.Sort(ids)
		if !slices.Equal(ids, c.want) {
			t.Errorf("%s?%s: patients %q, want %q (filter %v)", c.typ, c.query, ids, c.want, plan.Filter)
		}
		// The hint never changes the results.
		for _, v := range vs {
			if v.Type != c.typ || !plan.Filter.Match(v) || !ok {
				continue
			}
			if !slices.Contains(ids, v.Patient) {
				t.Errorf("%s?%s: match %s has Patient %q", c.typ, c.query, v.ID, v.Patient)
			}
		}
	}
}

func TestCompileResultParams(t *testing.T) {
	r := r4Registry(t)
	plan, err := compileQuery(t, r, "Patient",
		"_count=10&_total=accurate&_summary=count&_elements=name,birthDate&_elements=gender&_sort=-birthdate,name&_sort=_id&_page=abc&_format=json&_pretty=true&foo=bar&_text=x", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Type != "Patient" || plan.Count != 10 || plan.Total != "accurate" || plan.Summary != "count" || plan.Page != "abc" {
		t.Errorf("plan = %+v", plan)
	}
	if !slices.Equal(plan.Elements, []string{"name", "birthDate", "gender"}) {
		t.Errorf("Elements = %q", plan.Elements)
	}
	wantSort := []store.SortKey{{Param: "birthdate", Desc: true}, {Param: "name"}, {Param: "_id"}}
	if !slices.Equal(plan.Sort, wantSort) {
		t.Errorf("Sort = %v", plan.Sort)
	}
	if !slices.Equal(plan.Ignored, []string{"_text", "foo"}) {
		t.Errorf("Ignored = %q", plan.Ignored)
	}
	if plan.Filter.Op != store.OpAll {
		t.Errorf("Filter = %v", plan.Filter)
	}
	plan, err = compileQuery(t, r, "Observation", "", true, nil)
	if err != nil || plan.Count != -1 || plan.Filter.Op != store.OpAll || plan.Sort != nil {
		t.Errorf("empty: %+v, %v", plan, err)
	}
	plan, err = compileQuery(t, r, "Observation",
		"_include=Observation:subject&_include=Observation:subject:Patient&_revinclude=Provenance:target&_include:iterate=Encounter:subject&_revinclude:iterate=Observation:has-member", true, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantInc := []Include{{SourceType: "Observation", Param: "subject"}, {SourceType: "Observation", Param: "subject", TargetType: "Patient"},
		{SourceType: "Encounter", Param: "subject", Iterate: true}}
	if !slices.Equal(plan.Include, wantInc) {
		t.Errorf("Include = %+v", plan.Include)
	}
	wantRev := []Include{{SourceType: "Provenance", Param: "target"}, {SourceType: "Observation", Param: "has-member", Iterate: true}}
	if !slices.Equal(plan.RevInclude, wantRev) {
		t.Errorf("RevInclude = %+v", plan.RevInclude)
	}
	// Sorting by every kind of sortable parameter.
	for _, s := range []string{"_id", "-_lastUpdated", "date", "code", "subject", "value-quantity", "status"} {
		if _, err := compileQuery(t, r, "Observation", "_sort="+s, true, nil); err != nil {
			t.Errorf("_sort=%s: %v", s, err)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	r := r4Registry(t)
	mem := &memFinder{}
	cases := []struct {
		typ, query string
		strict     bool
		param      string // the parameter the error names
	}{
		{"Patient", "birthdate=1970-13", false, "birthdate"},
		{"Patient", "birthdate=xx1970", false, "birthdate"},
		{"Patient", "birthdate=", false, "birthdate"},
		{"Patient", "birthdate=1970,", false, "birthdate"},
		{"Patient", "birthdate:exact=1970", false, "birthdate:exact"},
		{"RiskAssessment", "probability=abc", false, "probability"},
		{"RiskAssessment", "probability=gt", false, "probability"},
		{"RiskAssessment", "probability=1,2x", false, "probability"},
		{"Observation", "value-quantity=1|http://unitsofmeasure.org|", false, "value-quantity"},
		{"Observation", "value-quantity=1|a", false, "value-quantity"},
		{"Observation", "code-value-quantity=8480-6", false, "code-value-quantity"},
		{"Observation", "code-value-quantity=8480-6$xx", false, "code-value-quantity"},
		{"Observation", "code-value-quantity:missing=true", false, "code-value-quantity:missing"},
		{"Patient", "name=", false, "name"},
		{"Patient", "name=%20", false, "name"},
		{"Patient", "name:foo=x", false, "name:foo"},
		{"Patient", "name:text=x", false, "name:text"},
		{"Patient", "gender=|", false, "gender"},
		{"Patient", "gender:in=http://x/vs", false, "gender:in"},
		{"Patient", "gender:below=x", false, "gender:below"},
		{"Patient", "gender:missing=maybe", false, "gender:missing"},
		{"Patient", "identifier:of-type=a|b", false, "identifier:of-type"},
		{"Observation", "subject:above=Patient/1", false, "subject:above"},
		{"Observation", "subject:Medication=1", false, "subject:Medication"},
		{"Observation", "code.name=x", false, "code.name"},
		{"Observation", "subject:Nope.name=x", false, "subject:Nope.name"},
		{"Patient", "_has:Observation:code:code=1", false, "_has:Observation:code:code"},
		{"Patient", "_has:Nope:patient:code=1", false, "_has:Nope:patient:code"},
		{"Patient", "_has:Observation:patient", false, "_has:Observation:patient"},
		{"Patient", "_count=-1", false, "_count"},
		{"Patient", "_count=ten", false, "_count"},
		{"Patient", "_count=1&_count=2", false, "_count"},
		{"Patient", "_total=all", false, "_total"},
		{"Patient", "_summary=yes", false, "_summary"},
		{"Patient", "_elements=na%20me", false, "_elements"},
		{"Patient", "_sort=nope", false, "_sort"},
		{"Patient", "_sort=name:missing", false, "_sort"},
		{"Patient", "_include=*", false, "_include"},
		{"Patient", "_include=Patient:*", false, "_include"},
		{"Patient", "_include=Patient:nope", false, "_include"},
		{"Patient", "_include=Patient:gender", false, "_include"},
		{"Patient", "_include=Patient", false, "_include"},
		{"Patient", "_include:nope=Patient:organization", false, "_include:nope"},
		{"Patient", "_revinclude=Observation:subject:Medication", false, "_revinclude"},
		{"Patient", "foo=bar", true, "foo"},
		{"Patient", "_text=x", true, "_text"},
		{"Patient", "_type=Patient", true, "_type"},
		{"Location", "near=1|2|3|km", true, "near"},
		{"Observation", "subject.nope=x", true, "subject.nope"},
	}
	for _, c := range cases {
		_, err := compileQuery(t, r, c.typ, c.query, c.strict, mem.find)
		var oe *outcome.Error
		if !errors.As(err, &oe) {
			t.Errorf("%s?%s: error %v, want an *outcome.Error", c.typ, c.query, err)
			continue
		}
		if oe.Kind != outcome.Invalid || len(oe.Issues) != 1 || !slices.Equal(oe.Issues[0].Expression, []string{c.param}) {
			t.Errorf("%s?%s: %+v, want Invalid naming %s", c.typ, c.query, oe, c.param)
		}
		if strings.Contains(oe.Error(), "1970-13") || strings.Contains(oe.Error(), "abc") {
			t.Errorf("%s?%s: the message repeats the value: %v", c.typ, c.query, oe)
		}
	}
	// Lenient: unknown and unsupported parameters are reported, not refused.
	plan, err := compileQuery(t, r, "Patient", "foo=bar&_text=x&_type=Patient&subject.nope=x&gender=male", false, mem.find)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plan.Ignored, []string{"_text", "_type", "foo", "subject.nope"}) {
		t.Errorf("Ignored = %q", plan.Ignored)
	}
	if _, err := compileQuery(t, r, "Nope", "", false, nil); err == nil {
		t.Error("unknown type: no error")
	}
	// A Finder's error is passed on.
	boom := errors.New("boom")
	_, err = compileQuery(t, r, "Observation", "patient.name=x", false,
		func(context.Context, store.Query) ([]*store.Version, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Errorf("finder error: %v", err)
	}
}

func TestIncludes(t *testing.T) {
	r := r4Registry(t)
	vs := corpusVersions(t, r)
	mem := &memFinder{vs: vs}
	cases := []struct {
		typ, query string
		matches    []string
		included   []string // Type/id, sorted
	}{
		{"Observation", "code=8480-6&_include=Observation:subject", []string{"o1", "o2"}, []string{"Patient/p1", "Patient/p2"}},
		{"Observation", "_id=o1,o4&_include=Observation:subject", []string{"o1", "o4"}, []string{"Group/g1", "Patient/p1"}},
		{"Observation", "_id=o1,o4&_include=Observation:subject:Patient", []string{"o1", "o4"}, []string{"Patient/p1"}},
		{"Observation", "_id=o7&_include=Observation:subject", []string{"o7"}, nil},
		{"Patient", "_id=p1&_revinclude=Observation:subject", []string{"p1"}, []string{"Observation/o1", "Observation/o3"}},
		{"Patient", "_id=p1&_revinclude=Observation:patient&_revinclude=Encounter:subject", []string{"p1"},
			[]string{"Encounter/e1", "Observation/o1", "Observation/o3"}},
		// Non-iterating includes apply to the matches only.
		{"Observation", "_id=o1&_include=Observation:encounter&_include=Encounter:subject", []string{"o1"}, []string{"Encounter/e1"}},
		{"Observation", "_id=o1&_include=Observation:encounter&_include:iterate=Encounter:subject", []string{"o1"},
			[]string{"Encounter/e1", "Patient/p1"}},
		{"Patient", "_id=p2&_revinclude=Encounter:subject&_revinclude:iterate=Observation:encounter", []string{"p2"},
			[]string{"Encounter/e2", "Observation/o2"}},
		// Matches are not included again.
		{"Observation", "_id=o1&_include=Observation:encounter&_revinclude:iterate=Observation:encounter", []string{"o1"},
			[]string{"Encounter/e1"}},
	}
	for _, c := range cases {
		plan, err := compileQuery(t, r, c.typ, c.query, true, mem.find)
		if err != nil {
			t.Errorf("%s?%s: %v", c.typ, c.query, err)
			continue
		}
		var matches []*store.Version
		for _, v := range vs {
			if v.Type == plan.Type && plan.Filter.Match(v) {
				matches = append(matches, v)
			}
		}
		if got := matching(plan, vs); !slices.Equal(got, c.matches) {
			t.Errorf("%s?%s matches %q, want %q", c.typ, c.query, got, c.matches)
			continue
		}
		inc, err := r.Includes(context.Background(), plan, matches, mem.find)
		if err != nil {
			t.Errorf("%s?%s: %v", c.typ, c.query, err)
			continue
		}
		var got []string
		for _, v := range inc {
			got = append(got, v.Type+"/"+v.ID)
		}
		slices.Sort(got)
		if !slices.Equal(got, c.included) {
			t.Errorf("%s?%s included %q, want %q", c.typ, c.query, got, c.included)
		}
	}
}

func TestSortValues(t *testing.T) {
	r := r4Registry(t)
	vs := corpusVersions(t, r)
	var patients []*store.Version
	for _, v := range vs {
		if v.Type == "Patient" {
			patients = append(patients, v)
		}
	}
	for _, c := range []struct {
		sort string
		want []string
	}{
		{"birthdate", []string{"p3", "p2", "p1", "p4"}},  // 1970 starts before 1970-06-01; missing last
		{"-birthdate", []string{"p1", "p3", "p2", "p4"}}, // by the end: 1974, end of 1970, 1970-06-01
		{"family", []string{"p1", "p3", "p2", "p4"}},     // chalmers (then by id), menard
		{"name", []string{"p4", "p3", "p1", "p2"}},       // bob smith, chalmers anne, chalmers peter…, menard zoe
		{"gender,-_id", []string{"p3", "p2", "p1", "p4"}},
	} {
		plan, err := compileQuery(t, r, "Patient", "_sort="+c.sort, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		sorted := store.SortPage(slices.Clone(patients), store.Query{Sort: plan.Sort})
		var got []string
		for _, v := range sorted {
			got = append(got, v.ID)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("_sort=%s: %q, want %q", c.sort, got, c.want)
		}
	}
}

func TestSplitEscapes(t *testing.T) {
	if got := splitEsc(`a\,b,c\\,d`, ','); !slices.Equal(got, []string{`a\,b`, `c\\`, `d`}) {
		t.Errorf("splitEsc = %q", got)
	}
	if got := unescape(`a\,b\$c\|d\\e\x`); got != `a,b$c|d\e\x` {
		t.Errorf("unescape = %q", got)
	}
	if got, ok := tokenForm(`sys|co\|de`); !ok || got != "sys|co|de" {
		t.Errorf("tokenForm = %q", got)
	}
	if got := uriAbove("http://a.org/b/c"); !slices.Equal(got, []string{"http://a.org/b/c", "http://a.org/b", "http://a.org"}) {
		t.Errorf("uriAbove = %q", got)
	}
	if got := uriAbove("urn:oid:1.2"); !slices.Equal(got, []string{"urn:oid:1.2"}) {
		t.Errorf("uriAbove = %q", got)
	}
}
