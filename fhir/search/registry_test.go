package search

import (
	"encoding/json"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/dossier-fhir/dossier/profiles"
)

const bundleFile = "Bundle-searchParams.json"

// skipExpressions lists the search parameters, by URL, whose expression
// the registry does not evaluate, with the reason. Every other parameter
// of the R4 bundle (and every builtin) must have an expression that
// compiles, for each of its base types.
var skipExpressions = map[string]string{
	// In the R4 bundle, without an expression:
	"http://hl7.org/fhir/SearchParameter/DomainResource-text": "_text searches the narrative (text.div); no expression, the server implements it",
	"http://hl7.org/fhir/SearchParameter/Resource-content":    "_content searches the whole resource text; no expression, the server implements it",
	"http://hl7.org/fhir/SearchParameter/Resource-query":      "_query names a custom named query; it selects nothing from a resource",
	// Builtins of this package (search page parameters not in the bundle):
	"http://hl7.org/fhir/SearchParameter/Resource-has":    "_has is reverse chaining, evaluated on the resources that refer to this one",
	"http://hl7.org/fhir/SearchParameter/Resource-list":   "_list is membership in a List resource, evaluated on that List",
	"http://hl7.org/fhir/SearchParameter/Resource-type":   "_type restricts a system-level search to resource types; nothing to extract",
	"http://hl7.org/fhir/SearchParameter/Resource-filter": "_filter is a query language over the other parameters",
}

var (
	testRegistryOnce sync.Once
	testRegistry     *Registry
	testRegistryErr  error
)

func r4Registry(t *testing.T) *Registry {
	t.Helper()
	testRegistryOnce.Do(func() {
		testRegistry, testRegistryErr = LoadRegistry(profiles.FS, bundleFile)
	})
	if testRegistryErr != nil {
		t.Fatal(testRegistryErr)
	}
	return testRegistry
}

// TestBundleExpressions walks every SearchParameter of the official R4
// bundle, reading the file directly rather than through the registry, and
// compiles its expression for every base type.
func TestBundleExpressions(t *testing.T) {
	data, err := profiles.FS.ReadFile(bundleFile)
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		Entry []struct {
			Resource struct {
				URL        string   `json:"url"`
				Code       string   `json:"code"`
				Base       []string `json:"base"`
				Type       string   `json:"type"`
				Expression string   `json:"expression"`
				Component  []struct {
					Expression string `json:"expression"`
				} `json:"component"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(data, &bundle); err != nil {
		t.Fatal(err)
	}
	if len(bundle.Entry) != 1375 {
		t.Errorf("bundle has %d entries, want 1375", len(bundle.Entry))
	}
	var handled, skipped, perBase, components int
	seen := map[string]bool{}
	for _, e := range bundle.Entry {
		sp := e.Resource
		seen[sp.URL] = true
		if reason, ok := skipExpressions[sp.URL]; ok {
			if reason == "" {
				t.Errorf("%s: skipped without a reason", sp.URL)
			}
			skipped++
			continue
		}
		if sp.Expression == "" {
			t.Errorf("%s (%s): no expression and not in skipExpressions", sp.URL, sp.Code)
			continue
		}
		split, err := splitByBase(sp.Expression, sp.Base)
		if err != nil {
			t.Errorf("%s: %v", sp.URL, err)
			continue
		}
		ok := true
		for _, base := range sp.Base {
			expr := split[base]
			if expr == "" {
				t.Errorf("%s: no branch of %q for base %s", sp.URL, sp.Expression, base)
				ok = false
				continue
			}
			if _, err := Compile(expr); err != nil {
				t.Errorf("%s, base %s: %v", sp.URL, base, err)
				ok = false
				continue
			}
			// The branches of a base must start with it (or be relative).
			if root := rootType(mustCompile(t, expr).root); root != "" && root != base && root != "Resource" && root != "DomainResource" {
				t.Errorf("%s, base %s: branch %q starts with %s", sp.URL, base, expr, root)
			}
			perBase++
		}
		for i, c := range sp.Component {
			if _, err := Compile(c.Expression); err != nil {
				t.Errorf("%s: component %d: %v", sp.URL, i, err)
				ok = false
			}
			components++
		}
		if ok {
			handled++
		}
	}
	for _, b := range builtins {
		seen[b.URL] = true
	}
	for url := range skipExpressions {
		if !seen[url] {
			t.Errorf("skipExpressions lists %s, which is neither in the bundle nor a builtin", url)
		}
	}
	t.Logf("%d expressions handled (%d per-base expressions, %d component expressions), %d skipped",
		handled, perBase, components, skipped)
	if handled+skipped != len(bundle.Entry) {
		t.Errorf("handled %d + skipped %d != %d entries", handled, skipped, len(bundle.Entry))
	}
}

func mustCompile(t *testing.T, src string) *Expr {
	t.Helper()
	e, err := Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestRegistryParamsCompiled checks the loaded registry: every parameter
// of every type has a compiled expression unless it is in skipExpressions.
func TestRegistryParamsCompiled(t *testing.T) {
	r := r4Registry(t)
	n := 0
	for _, typ := range r.Types() {
		for _, p := range r.Params(typ) {
			n++
			_, skip := skipExpressions[p.URL]
			switch {
			case skip && p.Expression != "":
				t.Errorf("%s %s: skipped but has expression %q", typ, p.Code, p.Expression)
			case !skip && p.expr == nil:
				t.Errorf("%s %s (%s): no compiled expression", typ, p.Code, p.URL)
			case p.expr != nil && p.expr.String() != p.Expression:
				t.Errorf("%s %s: compiled %q, expression %q", typ, p.Code, p.expr, p.Expression)
			}
			if p.Type == "composite" {
				if len(p.Components) < 2 {
					t.Errorf("%s %s: %d components", typ, p.Code, len(p.Components))
				}
				for _, c := range p.Components {
					if _, ok := r.ByURL(c.Definition); !ok {
						t.Errorf("%s %s: component definition %s not found", typ, p.Code, c.Definition)
					}
				}
			}
		}
	}
	t.Logf("%d (type, parameter) pairs", n)
}

func TestLookupCommonParams(t *testing.T) {
	r := r4Registry(t)
	if got := len(r.Types()); got != 146 {
		t.Errorf("%d types, want 146", got)
	}
	common := []string{"_id", "_lastUpdated", "_tag", "_profile", "_security", "_source",
		"_content", "_query", "_has", "_list", "_type", "_filter"}
	for _, typ := range resourceTypes {
		for _, code := range common {
			if _, ok := r.Lookup(typ, code); !ok {
				t.Errorf("Lookup(%s, %s) not found", typ, code)
			}
		}
		_, ok := r.Lookup(typ, "_text")
		if want := !resourceOnly[typ]; ok != want {
			t.Errorf("Lookup(%s, _text) = %v, want %v", typ, ok, want)
		}
		params := r.Params(typ)
		if !slices.IsSortedFunc(params, func(a, b *Param) int { return strings.Compare(a.Code, b.Code) }) {
			t.Errorf("Params(%s) not sorted by code", typ)
		}
		for i := 1; i < len(params); i++ {
			if params[i].Code == params[i-1].Code {
				t.Errorf("Params(%s) repeats %s", typ, params[i].Code)
			}
		}
	}
	p, ok := r.Lookup("Patient", "_lastUpdated")
	if !ok || p.Type != "date" || p.Expression != "Resource.meta.lastUpdated" || p.URL != "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated" {
		t.Errorf("Patient _lastUpdated = %+v", p)
	}
	for _, bad := range [][2]string{{"Patient", "nope"}, {"NotAType", "_id"}, {"Patient", "code"}, {"Resource", "_id"}} {
		if p, ok := r.Lookup(bad[0], bad[1]); ok {
			t.Errorf("Lookup(%s, %s) = %+v, want not found", bad[0], bad[1], p)
		}
	}
	if got := r.Params("NotAType"); got != nil {
		t.Errorf("Params(NotAType) = %v", got)
	}
}

func TestLookupSplitsExpressions(t *testing.T) {
	r := r4Registry(t)
	for _, tc := range []struct{ typ, code, typeName, expr string }{
		{"AllergyIntolerance", "patient", "reference", "AllergyIntolerance.patient"},
		{"CarePlan", "patient", "reference", "CarePlan.subject.where(resolve() is Patient)"},
		{"Observation", "patient", "reference", "Observation.subject.where(resolve() is Patient)"},
		{"Observation", "date", "date", "Observation.effective"},
		{"Encounter", "date", "date", "Encounter.period"},
		{"Patient", "family", "string", "Patient.name.family"},
		{"Practitioner", "family", "string", "Practitioner.name.family"},
		{"Patient", "email", "token", "Patient.telecom.where(system='email')"},
		{"Patient", "deceased", "token", "Patient.deceased.exists() and Patient.deceased != false"},
		{"MedicationRequest", "code", "token", "(MedicationRequest.medication as CodeableConcept)"},
		{"MedicationRequest", "medication", "reference", "(MedicationRequest.medication as Reference)"},
		{"Observation", "combo-code-value-quantity", "composite", "Observation | Observation.component"},
		{"Composition", "entry", "reference", "Composition.section.entry"},
		{"Bundle", "composition", "reference", "Bundle.entry[0].resource"},
	} {
		p, ok := r.Lookup(tc.typ, tc.code)
		if !ok {
			t.Errorf("Lookup(%s, %s) not found", tc.typ, tc.code)
			continue
		}
		if p.Expression != tc.expr || p.Type != tc.typeName || p.Code != tc.code {
			t.Errorf("Lookup(%s, %s) = %s %s %q, want %s %q", tc.typ, tc.code, p.Code, p.Type, p.Expression, tc.typeName, tc.expr)
		}
	}
	// The definition itself keeps the whole expression and all bases.
	def, ok := r.ByURL("http://hl7.org/fhir/SearchParameter/clinical-patient")
	if !ok || len(def.Base) < 30 || !strings.Contains(def.Expression, "CarePlan.subject.where(resolve() is Patient) | ") {
		t.Errorf("ByURL(clinical-patient) = %+v", def)
	}
	p, _ := r.Lookup("CarePlan", "patient")
	if !slices.Equal(p.Base, def.Base) || !slices.Equal(p.Target, []string{"Patient", "Group"}) {
		t.Errorf("CarePlan patient Base %v Target %v", p.Base, p.Target)
	}
	cvq, _ := r.Lookup("Observation", "code-value-quantity")
	want := []Component{
		{Definition: "http://hl7.org/fhir/SearchParameter/clinical-code", Expression: "code"},
		{Definition: "http://hl7.org/fhir/SearchParameter/Observation-value-quantity", Expression: "value.as(Quantity)"},
	}
	if len(cvq.Components) != 2 {
		t.Fatalf("code-value-quantity components: %+v", cvq.Components)
	}
	for i, c := range cvq.Components {
		if c.Definition != want[i].Definition || c.Expression != want[i].Expression {
			t.Errorf("code-value-quantity component %d = %+v, want %+v", i, c, want[i])
		}
	}
	if vq, ok := r.ByURL(want[1].Definition); !ok || vq.Type != "quantity" {
		t.Errorf("ByURL(%s) = %+v", want[1].Definition, vq)
	}
	date, _ := r.Lookup("Observation", "date")
	if !slices.Contains(date.Comparators, "ge") {
		t.Errorf("Observation date comparators = %v", date.Comparators)
	}
	// The R4 bundle gives multipleOr only on composites, always false.
	if cvq.MultipleOr == nil || *cvq.MultipleOr || cvq.MultipleAnd != nil {
		t.Errorf("code-value-quantity multipleOr = %v, multipleAnd = %v", cvq.MultipleOr, cvq.MultipleAnd)
	}
}

const usCoreRace = `{
  "resourceType": "SearchParameter",
  "url": "http://example.org/SearchParameter/race",
  "name": "race",
  "code": "race",
  "base": ["Patient"],
  "type": "token",
  "expression": "Patient.extension.where(url = 'http://hl7.org/fhir/us/core/StructureDefinition/us-core-race').extension.value.code"
}`

const ownBundle = `{
  "resourceType": "Bundle",
  "type": "collection",
  "entry": [
    {"resource": {"resourceType": "SearchParameter", "url": "http://example.org/SearchParameter/birthsex",
      "name": "birthsex", "code": "birthsex", "base": ["Patient"], "type": "token",
      "expression": "Patient.extension('http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex').value"}},
    {"resource": {"resourceType": "SearchParameter", "url": "http://example.org/SearchParameter/family",
      "name": "family", "code": "family", "base": ["Patient"], "type": "string",
      "expression": "Patient.name.where(use = 'official').family"}},
    {"resource": {"resourceType": "CompartmentDefinition", "url": "http://example.org/ignored"}}
  ]
}`

func TestLoadRegistryOwnParams(t *testing.T) {
	fsys := fstest.MapFS{
		bundleFile:  &fstest.MapFile{Data: mustRead(t, bundleFile)},
		"race.json": &fstest.MapFile{Data: []byte(usCoreRace)},
		"own.json":  &fstest.MapFile{Data: []byte(ownBundle)},
	}
	r, err := LoadRegistry(fsys, bundleFile, "race.json", "own.json")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := r.Lookup("Patient", "race"); !ok || p.Type != "token" {
		t.Errorf("race: %+v", p)
	}
	fam, _ := r.Lookup("Patient", "family")
	if fam.URL != "http://example.org/SearchParameter/family" {
		t.Errorf("Patient family not overridden: %+v", fam)
	}
	// The override is per base type: Practitioner keeps the official one.
	if p, _ := r.Lookup("Practitioner", "family"); p.URL != "http://hl7.org/fhir/SearchParameter/individual-family" {
		t.Errorf("Practitioner family = %+v", p)
	}
	pat := decode(t, `{
	  "resourceType": "Patient",
	  "extension": [
	    {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", "extension": [
	      {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3"}},
	      {"url": "detailed", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2108-9"}},
	      {"url": "text", "valueString": "White"}]},
	    {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": "F"}
	  ],
	  "name": [{"use": "official", "family": "Official"}, {"use": "maiden", "family": "Maiden"}]
	}`)
	got, err := r.Extract("Patient", pat)
	if err != nil {
		t.Fatal(err)
	}
	for code, want := range map[string]string{
		"race":     `["2106-3", "2108-9"]`,
		"birthsex": `["F"]`,
		"family":   `["Official"]`,
	} {
		if diff := jsonDiff(js(t, want), got[code]); diff != "" {
			t.Errorf("%s: %s", code, diff)
		}
	}

	// Redefining a URL replaces the earlier definition.
	fsys["race2.json"] = &fstest.MapFile{Data: []byte(strings.ReplaceAll(usCoreRace, `"code": "race"`, `"code": "race2"`))}
	r, err = LoadRegistry(fsys, "race.json", "race2.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Lookup("Patient", "race"); ok {
		t.Error("race still defined after its URL was redefined as race2")
	}
	if _, ok := r.Lookup("Patient", "race2"); !ok {
		t.Error("race2 not defined")
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := profiles.FS.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLoadRegistryErrors(t *testing.T) {
	sp := func(fields string) string {
		return `{"resourceType": "SearchParameter", "url": "http://example.org/sp", ` + fields + `}`
	}
	for name, content := range map[string]string{
		"unsupported": sp(`"code": "x", "base": ["Patient"], "type": "token", "expression": "Patient.code.memberOf('http://vs')"`),
		"syntax":      sp(`"code": "x", "base": ["Patient"], "type": "token", "expression": "Patient.(name"`),
		"no code":     sp(`"base": ["Patient"], "type": "token", "expression": "Patient.name"`),
		"no base":     sp(`"code": "x", "type": "token", "expression": "Patient.name"`),
		"bad type":    sp(`"code": "x", "base": ["Patient"], "type": "text", "expression": "Patient.name"`),
		"composite":   sp(`"code": "x", "base": ["Patient"], "type": "composite", "expression": "Patient"`),
		"component":   sp(`"code": "x", "base": ["Patient"], "type": "composite", "expression": "Patient", "component": [{"definition": "u", "expression": "a +"}]`),
		"not sp":      `{"resourceType": "Patient"}`,
		"not json":    `{`,
	} {
		fsys := fstest.MapFS{"f.json": &fstest.MapFile{Data: []byte(content)}}
		if _, err := LoadRegistry(fsys, "f.json"); err == nil {
			t.Errorf("%s: LoadRegistry succeeded, want an error", name)
		}
	}
	if _, err := LoadRegistry(fstest.MapFS{}, "missing.json"); err == nil {
		t.Error("missing file: LoadRegistry succeeded")
	}
	// With no files: only the builtins, which have no expression.
	r, err := LoadRegistry(fstest.MapFS{})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(r.Params("Patient")); got != len(builtins) {
		t.Errorf("empty registry: %d Patient params, want %d", got, len(builtins))
	}
}

func profilesFS() fs.FS { return profiles.FS }
