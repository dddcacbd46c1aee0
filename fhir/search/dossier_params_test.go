package search

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"

	"github.com/dossier-fhir/dossier/profiles"
	"github.com/dossier-fhir/dossier/store"
)

// TestDueActivity checks Dossier's campaign parameters: due-activity
// correlates the kind and the date of one open activity, which
// due-activity-code and due-activity-date alone cannot.
func TestDueActivity(t *testing.T) {
	reg, err := LoadRegistry(profiles.FS, profiles.SearchParameterFiles...)
	if err != nil {
		t.Fatal(err)
	}
	const cs = "https://dossier-fhir.github.io/fhir/CodeSystem/prevention-activity"
	plan := `{"resourceType":"CarePlan","id":"cp1","status":"active","intent":"plan","subject":{"reference":"Patient/p1"},
	 "activity":[
	  {"detail":{"code":{"coding":[{"system":"` + cs + `","code":"vaccination-hpv"}]},"status":"completed","scheduledPeriod":{"start":"2026-01-10"}}},
	  {"detail":{"code":{"coding":[{"system":"` + cs + `","code":"screening-colorectal"}]},"status":"not-started","scheduledPeriod":{"start":"2027-03-01"}}}
	 ]}`
	var m map[string]any
	if err := json.Unmarshal([]byte(plan), &m); err != nil {
		t.Fatal(err)
	}
	ix, err := reg.Index("CarePlan", "cp1", m, "")
	if err != nil {
		t.Fatal(err)
	}
	v := &store.Version{Type: "CarePlan", ID: "cp1", Keys: ix.Keys, Ranges: ix.Ranges, Patient: ix.Patient}
	for _, tc := range []struct {
		query string
		want  bool
	}{
		{"due-activity=" + cs + "|screening-colorectal$le2027-06-30", true},
		{"due-activity=screening-colorectal$le2027-06-30", true},
		{"due-activity=" + cs + "|screening-colorectal$le2026-12-31", false}, // not due yet by then
		{"due-activity=" + cs + "|vaccination-hpv$le2027-06-30", false},      // done
		{"due-activity-code=" + cs + "|vaccination-hpv", false},
		{"due-activity-code=" + cs + "|screening-colorectal", true},
		{"due-activity-date=le2026-06-30", false},
		{"due-activity-date=le2027-06-30", true},
	} {
		vals, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		p, err := reg.Compile(context.Background(), "CarePlan", vals, "", true, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		if got := p.Filter.Match(v); got != tc.want {
			t.Errorf("%s: match %v, want %v", tc.query, got, tc.want)
		}
	}
}
