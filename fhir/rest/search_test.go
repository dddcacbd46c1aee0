package rest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
)

// searchIDs runs a search and returns the ids of the match entries (in
// order) and the total.
func (e *env) searchIDs(path string, headers ...string) ([]string, int, resp) {
	e.tb.Helper()
	r := e.Do("GET", path, "", headers...)
	if r.Status != http.StatusOK {
		return nil, -1, r
	}
	var b struct {
		Total *int `json:"total"`
		Entry []struct {
			Resource struct {
				ID string `json:"id"`
			} `json:"resource"`
			Search struct {
				Mode string `json:"mode"`
			} `json:"search"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil {
		e.tb.Fatalf("search %s: %v", path, err)
	}
	var ids []string
	for _, en := range b.Entry {
		if en.Search.Mode == "match" {
			ids = append(ids, en.Resource.ID)
		}
	}
	total := -1
	if b.Total != nil {
		total = *b.Total
	}
	return ids, total, r
}

// seed loads a small record: three patients, observations, an encounter.
func seed(t *testing.T, e *env) {
	t.Helper()
	for _, body := range []string{
		`{"resourceType":"Patient","id":"p1","gender":"male","birthDate":"1970-06-15","name":[{"family":"Martin","given":["Éloïse","Anne"]}],"identifier":[{"system":"urn:oid:1.2.250.1.213.1.4.10","value":"170066"}],"active":true}`,
		`{"resourceType":"Patient","id":"p2","gender":"female","birthDate":"1985","name":[{"family":"Martinez","given":["Ana"]}],"active":false}`,
		`{"resourceType":"Patient","id":"p3","gender":"female","birthDate":"2001-02-03","name":[{"family":"Dupont","given":["Léa"]}]}`,
		`{"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},"subject":{"reference":"Patient/p1"},"period":{"start":"2024-03-01T10:00:00Z","end":"2024-03-01T11:00:00Z"}}`,
		`{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}],"text":"Heart rate"},"subject":{"reference":"Patient/p1"},"encounter":{"reference":"Encounter/e1"},"effectiveDateTime":"2024-03-01T10:15:00Z","valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}`,
		`{"resourceType":"Observation","id":"o2","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2024-05-20","valueQuantity":{"value":100.5,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}}`,
		`{"resourceType":"Observation","id":"o3","status":"amended","code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},"subject":{"reference":"Patient/p2"},"effectiveDateTime":"2023-12-31T23:00:00Z","valueQuantity":{"value":60,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}}`,
		`{"resourceType":"Observation","id":"o4","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p3"},"effectiveDateTime":"2024"}`,
	} {
		var h struct{ ResourceType, ID string }
		_ = json.Unmarshal([]byte(body), &h)
		if r := e.Do("PUT", "/"+h.ResourceType+"/"+h.ID, body); r.Status != http.StatusCreated {
			t.Fatalf("seed %s/%s: %d %s", h.ResourceType, h.ID, r.Status, r.Body)
		}
	}
}

func TestSearchParameters(t *testing.T) {
	e := newEnv(t)
	seed(t, e)
	cases := []struct {
		query string
		want  string // ids in order when sorted, else compared as a set
	}{
		// string: prefix, case and accent insensitive; :exact; :contains
		{"Patient?name=mart", "p1 p2"},
		{"Patient?family=MARTIN", "p1 p2"},
		{"Patient?given=eloise", "p1"},
		{"Patient?family:exact=Martin", "p1"},
		{"Patient?family:exact=martin", ""},
		{"Patient?name:contains=tine", "p2"},
		// token
		{"Patient?gender=female", "p2 p3"},
		{"Patient?gender:not=female", "p1"},
		{"Patient?identifier=urn:oid:1.2.250.1.213.1.4.10|170066", "p1"},
		{"Patient?identifier=170066", "p1"},
		{"Patient?identifier=urn:oid:1.2.250.1.213.1.4.10|", "p1"},
		{"Patient?identifier=|170066", ""},
		{"Patient?active=true", "p1"},
		{"Observation?code=http://loinc.org|8867-4", "o1 o2 o4"},
		{"Observation?code=8867-4,29463-7", "o1 o2 o3 o4"},
		{"Observation?code:text=heart", "o1"},
		// AND of repeated parameters
		{"Observation?code=8867-4&status=final&subject=Patient/p1", "o1 o2"},
		// date: partial dates are ranges
		{"Patient?birthdate=1970", "p1"},
		{"Patient?birthdate=1970-06", "p1"},
		{"Patient?birthdate=ge1985-01-01", "p2 p3"},
		{"Patient?birthdate=lt1985", "p1"},
		{"Patient?birthdate=1985-06-01", ""}, // stored 1985 is wider than that day
		{"Patient?birthdate=sa1980", "p2 p3"},
		{"Patient?birthdate=eb1986", "p1 p2"},
		{"Observation?date=2024", "o1 o2 o4"},
		{"Observation?date=ge2024-03-01&date=lt2024-04", "o1 o4"}, // o4's "2024" overlaps both bounds
		{"Encounter?date=2024-03-01", "e1"},
		{"Encounter?date=gt2024-03-02", ""},
		// quantity and number precision
		{"Observation?value-quantity=72", "o1"},
		{"Observation?value-quantity=gt70", "o1 o2"},
		{"Observation?value-quantity=100", ""}, // 100 means [99.5, 100.5): 100.5 is out
		{"Observation?value-quantity=100.5", "o2"},
		{"Observation?value-quantity=101", "o2"}, // [100.5, 101.5)
		{"Observation?value-quantity=60|http://unitsofmeasure.org|kg", "o3"},
		{"Observation?value-quantity=60||kg", "o3"},
		{"Observation?value-quantity=60|http://unitsofmeasure.org|/min", ""},
		// composite
		{"Observation?code-value-quantity=http://loinc.org|8867-4$gt90", "o2"},
		{"Observation?code-value-quantity=8867-4$lt80", "o1"},
		// reference forms
		{"Observation?subject=p1", "o1 o2"},
		{"Observation?subject:Patient=p2", "o3"},
		{"Observation?patient=Patient/p3", "o4"},
		{"Observation?encounter=Encounter/e1", "o1"},
		// chains
		{"Observation?subject:Patient.family=dupont", "o4"},
		{"Observation?patient.gender=female", "o3 o4"},
		{"Observation?encounter.subject:Patient.birthdate=1970", "o1"},
		// reverse chain
		{"Patient?_has:Observation:patient:code=29463-7", "p2"},
		{"Patient?_has:Observation:patient:_has:Encounter:patient:status=finished", ""},
		// :missing
		{"Observation?value-quantity:missing=true", "o4"},
		{"Observation?encounter:missing=false", "o1"},
		{"Patient?active:missing=true", "p3"},
		// _id, _lastUpdated
		{"Patient?_id=p1,p3", "p1 p3"},
		{"Patient?_lastUpdated=gt2000-01-01", "p1 p2 p3"},
		// sorting
		{"Patient?_sort=birthdate", "p1 p2 p3!"},
		{"Patient?_sort=-birthdate", "p3 p2 p1!"},
		// descending sorts a range by its end: o4's "2024" ends last
		{"Observation?_sort=-date,_id", "o4 o2 o1 o3!"},
		{"Observation?_sort=status,-date", "o3 o4 o2 o1!"},
	}
	for _, c := range cases {
		t.Run(c.query, func(t *testing.T) {
			ordered := strings.HasSuffix(c.want, "!")
			want := strings.Fields(strings.TrimSuffix(c.want, "!"))
			ids, total, r := e.searchIDs("/" + c.query)
			if r.Status != http.StatusOK {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if !ordered {
				sort.Strings(ids)
			}
			if fmt.Sprint(ids) != fmt.Sprint(want) {
				t.Fatalf("got %v, want %v", ids, want)
			}
			if total != len(want) {
				t.Fatalf("total %d, want %d", total, len(want))
			}
		})
	}
}

func TestSearchErrorsAndHandling(t *testing.T) {
	e := newEnv(t)
	seed(t, e)
	for _, q := range []string{
		"Patient?birthdate=notadate",
		"Patient?birthdate=xx2020",
		"Observation?value-quantity=abc",
		"Patient?_count=-1",
		"Patient?_sort=nosuchparam",
		"Patient?gender:in=http://x",
		"Patient?_page=garbage",
	} {
		r := e.Do("GET", "/"+q, "")
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "OperationOutcome") {
			t.Errorf("%s: %d %s, want 400", q, r.Status, r.Body)
		}
	}
	// Unknown parameters: ignored and reported (lenient), 400 when strict.
	ids, _, r := e.searchIDs("/Patient?gender=male&frobnicate=1")
	if fmt.Sprint(ids) != "[p1]" || !strings.Contains(string(r.Body), `"mode":"outcome"`) || !strings.Contains(string(r.Body), "frobnicate") {
		t.Errorf("lenient: %v %s", ids, r.Body)
	}
	if r := e.Do("GET", "/Patient?gender=male&frobnicate=1", "", "Prefer", "handling=strict"); r.Status != 400 {
		t.Errorf("strict: %d", r.Status)
	}
	// _summary=count, _total=none, _elements
	ids, total, _ := e.searchIDs("/Patient?_summary=count")
	if len(ids) != 0 || total != 3 {
		t.Errorf("_summary=count: %v %d", ids, total)
	}
	if _, total, _ := e.searchIDs("/Patient?_total=none"); total != -1 {
		t.Errorf("_total=none gave a total")
	}
	r = e.Do("GET", "/Patient?_id=p1&_elements=gender", "")
	if !strings.Contains(string(r.Body), `"gender":"male"`) || strings.Contains(string(r.Body), "birthDate") || !strings.Contains(string(r.Body), "SUBSETTED") {
		t.Errorf("_elements: %s", r.Body)
	}
	// POST _search with a form body
	form := url.Values{"gender": {"female"}}
	r = e.Do("POST", "/Patient/_search", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	if r.Status != 200 || !strings.Contains(string(r.Body), `"id":"p2"`) || strings.Contains(string(r.Body), `"id":"p1"`) {
		t.Errorf("POST _search: %d %s", r.Status, r.Body)
	}
	// Compartment search
	ids, _, r = e.searchIDs("/Patient/p1/Observation?code=8867-4")
	sort.Strings(ids)
	if fmt.Sprint(ids) != "[o1 o2]" {
		t.Errorf("compartment: %v %s", ids, r.Body)
	}
	// Conditional create with any criteria now
	body := `{"resourceType":"Patient","name":[{"family":"Dupont"}]}`
	if r := e.Do("POST", "/Patient", body, "If-None-Exist", "family:exact=Dupont&birthdate=2001"); r.Status != 200 || !strings.Contains(string(r.Body), `"id":"p3"`) {
		t.Errorf("conditional create by family+birthdate: %d %s", r.Status, r.Body)
	}
	if r := e.Do("POST", "/Patient", body, "If-None-Exist", "gender=female"); r.Status != 412 {
		t.Errorf("conditional create with two matches: %d", r.Status)
	}
	if r := e.Do("POST", "/Patient", body, "If-None-Exist", "frobnicate=1"); r.Status != 400 {
		t.Errorf("conditional create with an unknown criterion: %d", r.Status)
	}
}

func TestSearchIncludes(t *testing.T) {
	e := newEnv(t)
	seed(t, e)
	r := e.Do("GET", "/Observation?code=29463-7&_include=Observation:subject", "")
	if !strings.Contains(string(r.Body), `"mode":"include"`) || !strings.Contains(string(r.Body), `"id":"p2"`) {
		t.Errorf("_include: %s", r.Body)
	}
	_, total, _ := e.searchIDs("/Observation?code=29463-7&_include=Observation:subject")
	if total != 1 {
		t.Errorf("includes counted in total: %d", total)
	}
	r = e.Do("GET", "/Patient?_id=p2&_revinclude=Observation:subject", "")
	if !strings.Contains(string(r.Body), `"id":"o3"`) {
		t.Errorf("_revinclude: %s", r.Body)
	}
	r = e.Do("GET", "/Observation?_id=o1&_include=Observation:encounter&_include:iterate=Encounter:subject", "")
	if !strings.Contains(string(r.Body), `"id":"e1"`) || !strings.Contains(string(r.Body), `"id":"p1"`) {
		t.Errorf("_include:iterate: %s", r.Body)
	}
}

// TestSearchPaging follows next links while resources are created and
// deleted between pages: every resource that existed at the first page
// and still exists is seen exactly once, in order; previous links walk back.
func TestSearchPaging(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 23; i++ {
		body := fmt.Sprintf(`{"resourceType":"Patient","id":"pg%02d","birthDate":"19%02d-01-01"}`, i, 50+i)
		e.Do("PUT", fmt.Sprintf("/Patient/pg%02d", i), body)
	}
	next := "/Patient?_sort=birthdate&_count=5"
	var seen []string
	var pages []string
	for page := 0; next != "" && page < 20; page++ {
		ids, total, r := e.searchIDs(next)
		if r.Status != 200 {
			t.Fatalf("page %d: %d %s", page, r.Status, r.Body)
		}
		if page == 0 && total != 23 {
			t.Fatalf("total %d", total)
		}
		pages = append(pages, next)
		seen = append(seen, ids...)
		if page == 1 {
			// A new resource sorting first, and one sorting last.
			e.Do("PUT", "/Patient/new-first", `{"resourceType":"Patient","id":"new-first","birthDate":"1900-01-01"}`)
			e.Do("PUT", "/Patient/new-last", `{"resourceType":"Patient","id":"new-last","birthDate":"2099-01-01"}`)
		}
		next = linkOf(t, r.Body, "next")
	}
	var want []string
	for i := 0; i < 23; i++ {
		want = append(want, fmt.Sprintf("pg%02d", i))
	}
	want = append(want, "new-last") // after the cursor: seen; new-first is before it: not
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("paged:\n got %v\nwant %v", seen, want)
	}
	// previous from the third page gives the second page again
	_, _, r3 := e.searchIDs(pages[2])
	prev := linkOf(t, r3.Body, "previous")
	ids, _, _ := e.searchIDs(prev)
	if fmt.Sprint(ids) != "[pg05 pg06 pg07 pg08 pg09]" {
		t.Fatalf("previous: %v", ids)
	}
}

func linkOf(t *testing.T, body []byte, rel string) string {
	var b struct {
		Link []struct{ Relation, URL string } `json:"link"`
	}
	_ = json.Unmarshal(body, &b)
	for _, l := range b.Link {
		if l.Relation == rel {
			u, err := url.Parse(l.URL)
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimPrefix(u.Path, "/fhir") + "?" + u.RawQuery
		}
	}
	return ""
}

func TestSystemSearch(t *testing.T) {
	e := newEnv(t)
	seed(t, e)
	next := "?_type=Patient,Observation&_count=3"
	var seen []string
	for page := 0; next != "" && page < 10; page++ {
		ids, total, r := e.searchIDs(next)
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if total != 7 {
			t.Fatalf("total %d, want 7", total)
		}
		seen = append(seen, ids...)
		next = linkOf(t, r.Body, "next")
	}
	if fmt.Sprint(seen) != "[p1 p2 p3 o1 o2 o3 o4]" {
		t.Fatalf("system search pages: %v", seen)
	}
	ids, total, _ := e.searchIDs("?_type=Patient,Observation&_id=p2,o3")
	if total != 2 || fmt.Sprint(ids) != "[p2 o3]" {
		t.Fatalf("system search with criteria: %v %d", ids, total)
	}
	if r := e.Do("GET", "?gender=male", ""); r.Status != 400 {
		t.Fatalf("system search without _type: %d", r.Status)
	}
}
