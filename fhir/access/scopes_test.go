package access

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/dossier-fhir/dossier/profiles"
)

func TestScopesNarrow(t *testing.T) {
	pro := func(scope ...string) *Requester {
		return &Requester{Role: RoleProfessional, RPPS: "1", Profession: "10", Scopes: scope}
	}
	for _, tc := range []struct {
		r    *Requester
		act  Action
		typ  string
		want bool
	}{
		{pro(), Read, "DocumentReference", true}, // no resource scope: not narrowed
		{pro("openid", "fhirUser"), Read, "DocumentReference", true},
		{pro("user/Observation.rs"), Read, "DocumentReference", false},
		{pro("user/Observation.rs"), Search, "Observation", true},
		{pro("user/Observation.rs"), Create, "Observation", false},
		{pro("patient/*.rs"), Read, "DocumentReference", true},
		{pro("patient/*.rs"), Update, "DocumentReference", false},
		{pro("user/DocumentReference.cruds"), Delete, "DocumentReference", true},
		{pro("user/DocumentReference.cud"), Read, "DocumentReference", false},
		{pro("user/*.read"), Search, "Encounter", true},
		{pro("user/*.read"), Create, "Encounter", false},
		{pro("user/*.write"), Create, "Encounter", true},
		{pro("user/*.sr"), Read, "Encounter", false},                                 // not a v2 permission string
		{pro("user/Observation.rs?category=laboratory"), Read, "Observation", false}, // restricted scopes grant nothing
		{pro("user/*.rs"), History, "", true},
		{pro("user/Observation.rs"), History, "", false},
		// Scopes never widen: a campaign tool may not write whatever its scopes say.
		{&Requester{Role: RoleCampaign, Scopes: []string{"system/*.cruds"}}, Create, "CarePlan", false},
	} {
		d := &DMP{}
		err := d.Allow(tc.r, tc.act, tc.typ)
		if got := err == nil; got != tc.want {
			t.Errorf("%v %s %s: allowed %v, want %v (%v)", tc.r.Scopes, tc.act, tc.typ, got, tc.want, err)
		}
	}
}

// TestMatrixTypesKnown: every type the matrix names is a document type of
// the record (profiles/document-types.json), so a rule cannot silently
// name a code no document carries.
func TestMatrixTypesKnown(t *testing.T) {
	m, err := LoadMatrix(profiles.FS, "access-matrix.json")
	if err != nil {
		t.Fatal(err)
	}
	data, err := profiles.FS.ReadFile("document-types.json")
	if err != nil {
		t.Fatal(err)
	}
	var dt struct {
		Types []struct{ System, Code string } `json:"types"`
	}
	if err := json.Unmarshal(data, &dt); err != nil {
		t.Fatal(err)
	}
	var known []string
	for _, x := range dt.Types {
		known = append(known, x.System+"|"+x.Code)
	}
	all := append(slices.Clone(m.KnownTypes), m.PreventionTypes...)
	for _, d := range m.Deny {
		all = append(all, d.Types...)
	}
	for _, x := range all {
		if !slices.Contains(known, x) {
			t.Errorf("the matrix names %s, which is not in document-types.json", x)
		}
	}
	for _, x := range m.PreventionTypes {
		if !slices.Contains(m.KnownTypes, x) {
			t.Errorf("prevention type %s is not a known type", x)
		}
	}
	if len(m.Deny["60"].Types) != 5 || len(m.Deny["80"].Types) != 1 || len(m.Deny["40"].Types) != 1 {
		t.Errorf("the known cells of DOMAIN.md are not all in the matrix: %+v", m.Deny)
	}
}
