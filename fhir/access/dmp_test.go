package access_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/fhir/search"
	"github.com/dossier-fhir/dossier/profiles"
	"github.com/dossier-fhir/dossier/store"
	"github.com/dossier-fhir/dossier/store/embedded"
)

// world is a random population of records stored in the embedded engine
// through the repo (so versions carry the keys, owner and organization
// production writes give them).
type world struct {
	st       store.Store
	dmp      *access.DMP
	byType   map[string][]string // type → ids
	pracRefs []string            // Practitioner/<id> of rpps[i]
	patients []string
}

var (
	rppsOf      = []string{"10000000001", "10000000002", "10000000003"}
	professions = []string{"10", "21", "40", "60", "80"}
	modes       = []string{"", access.ModeNormal, access.ModeBrisDeGlace, access.ModeCentre15}
	orgs        = []string{"org1", "org2"}
	docTypes    = []string{
		"http://loinc.org|34112-3", "http://loinc.org|68817-6", "http://loinc.org|87273-9",
		"urn:oid:1.2.250.1.213.1.1.4.12|EXPPAT_3", "http://loinc.org|99999-9", // the last one is not in the matrix
		"https://dossier-fhir.github.io/fhir/CodeSystem/document-type|CR-ACCOUCHEMENT",
	}
	labels = []string{
		access.SysConfidentiality + "|N", access.LabelRestricted, access.LabelVeryRestricted,
		access.LabelMasked, access.LabelInvisiblePatient, access.LabelInvisibleReps,
	}
)

func coding(sc string) map[string]string {
	i := len(sc) - 1
	for sc[i] != '|' {
		i--
	}
	return map[string]string{"system": sc[:i], "code": sc[i+1:]}
}

func newWorld(t *testing.T, rng *rand.Rand) *world {
	t.Helper()
	ctx := context.Background()
	st := embedded.TestStore(t, "policy")
	reg, err := search.LoadRegistry(profiles.FS, profiles.SearchParameterFiles...)
	if err != nil {
		t.Fatal(err)
	}
	parser, err := resource.NewParser()
	if err != nil {
		t.Fatal(err)
	}
	matrix, err := access.LoadMatrix(profiles.FS, "access-matrix.json")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{st: st, byType: map[string][]string{}}
	w.dmp = access.NewDMP(st, matrix, func(typ string) bool { return typ != "Patient" && len(reg.OwnerParam(typ)) > 0 })
	rp := repo.New(st, parser, reg, access.Interim{})
	create := func(org string, res map[string]any) string {
		t.Helper()
		body, _ := json.Marshal(res)
		typ := res["resourceType"].(string)
		out, err := rp.Create(ctx, &access.Requester{Role: access.RoleIntegration, Org: org, Subject: "engine"}, typ, body, "")
		if err != nil {
			t.Fatalf("create %s: %v\n%s", typ, err, body)
		}
		w.byType[typ] = append(w.byType[typ], out.Version.ID)
		return out.Version.ID
	}
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	for i, rpps := range rppsOf {
		sys := access.SysRPPS
		if i == 2 {
			sys, rpps = access.SysPSNational, "8"+rpps // the national PS id form
		}
		id := create(pick(orgs), map[string]any{"resourceType": "Practitioner",
			"identifier": []any{map[string]string{"system": sys, "value": rpps}}})
		w.pracRefs = append(w.pracRefs, "Practitioner/"+id)
	}
	for i := 0; i < 5; i++ {
		p := map[string]any{"resourceType": "Patient", "gender": "female"}
		if rng.IntN(3) > 0 {
			p["generalPractitioner"] = []any{map[string]string{"reference": pick(w.pracRefs)}}
		}
		w.patients = append(w.patients, create(pick(orgs), p))
	}
	consent := func(patient, typ string, actor string, purpose string, status string) {
		c := map[string]any{"resourceType": "Consent", "status": status,
			"scope":    map[string]any{"coding": []any{map[string]string{"system": access.SysConsentScope, "code": "patient-privacy"}}},
			"category": []any{map[string]any{"coding": []any{map[string]string{"system": "http://loinc.org", "code": "59284-0"}}}},
			"patient":  map[string]string{"reference": "Patient/" + patient},
		}
		prov := map[string]any{"type": typ}
		if actor != "" {
			prov["actor"] = []any{map[string]any{
				"role":      map[string]any{"coding": []any{map[string]string{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}}},
				"reference": map[string]string{"reference": actor}}}
		}
		if purpose != "" {
			prov["purpose"] = []any{coding(purpose)}
		}
		c["provision"] = prov
		create(pick(orgs), c)
	}
	for i := 0; i < 14; i++ {
		status := "active"
		if rng.IntN(5) == 0 {
			status = pick([]string{"inactive", "rejected"})
		}
		pat := pick(w.patients)
		switch rng.IntN(6) {
		case 0, 1:
			consent(pat, "permit", pick(w.pracRefs), "", status)
		case 2:
			consent(pat, "deny", pick(w.pracRefs), "", status)
		case 3:
			consent(pat, "deny", "", pick([]string{access.PurposeBTG, access.PurposeETREAT}), status)
		case 4:
			consent(pat, "permit", "", access.PurposeMasked, status)
		case 5:
			consent(pat, "deny", "", access.PurposeCampaign, status)
		}
	}
	for i := 0; i < 60; i++ {
		pat := "Patient/" + pick(w.patients)
		var ls []any
		for _, l := range labels {
			if rng.IntN(4) == 0 {
				ls = append(ls, map[string]any{"coding": []any{coding(l)}})
			}
		}
		switch rng.IntN(5) {
		case 0, 1, 2:
			d := map[string]any{"resourceType": "DocumentReference", "status": "current", "subject": map[string]string{"reference": pat},
				"type":    map[string]any{"coding": []any{coding(pick(docTypes))}},
				"content": []any{map[string]any{"attachment": map[string]string{"contentType": "text/plain", "data": "aGVsbG8="}}}}
			if len(ls) > 0 {
				d["securityLabel"] = ls
			}
			if rng.IntN(2) == 0 {
				d["author"] = []any{map[string]string{"reference": pick(w.pracRefs)}}
			}
			create(pick(orgs), d)
		case 3:
			o := map[string]any{"resourceType": "Observation", "status": "final", "subject": map[string]string{"reference": pat},
				"code": map[string]any{"text": "x"}}
			if len(ls) > 0 {
				var sec []any
				for _, l := range ls {
					sec = append(sec, l.(map[string]any)["coding"].([]any)[0])
				}
				o["meta"] = map[string]any{"security": sec}
			}
			create(pick(orgs), o)
		case 4:
			cat := "https://dossier-fhir.github.io/fhir/CodeSystem/careplan-category|prevention"
			if rng.IntN(2) == 0 {
				cat = "http://snomed.info/sct|734163000"
			}
			create(pick(orgs), map[string]any{"resourceType": "CarePlan", "status": "active", "intent": "plan",
				"subject": map[string]string{"reference": pat}, "category": []any{map[string]any{"coding": []any{coding(cat)}}}})
		}
	}
	create(pick(orgs), map[string]any{"resourceType": "Organization", "name": "H"})
	return w
}

func randomRequester(rng *rand.Rand, w *world) *access.Requester {
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	roles := []access.Role{access.RoleProfessional, access.RoleProfessional, access.RoleProfessional,
		access.RolePatient, access.RoleRepresentative, access.RoleCampaign, access.RoleIntegration, access.RoleAdmin}
	r := &access.Requester{Role: roles[rng.IntN(len(roles))], Subject: "s"}
	switch r.Role {
	case access.RoleProfessional:
		r.RPPS = pick(append(slices.Clone(rppsOf), "19999999999"))
		r.Profession = pick(professions)
		r.Mode = pick(modes)
	case access.RolePatient, access.RoleRepresentative:
		r.Patient = pick(w.patients)
	case access.RoleIntegration:
		r.Org = pick(orgs)
	}
	return r
}

// TestPolicyFormsAgree is the property test of the secrecy policy's two
// forms: for random records and random requesters, the store query with
// the policy's filter (translated to SQL by the embedded engine) returns
// exactly the resources that Visible accepts after a read by id.
func TestPolicyFormsAgree(t *testing.T) {
	ctx := context.Background()
	seen := map[access.Role][2]int{} // role → [visible, hidden] over the run
	for seed := uint64(1); seed <= 3; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		w := newWorld(t, rng)
		for i := 0; i < 40; i++ {
			req := randomRequester(rng, w)
			sc, err := w.dmp.Scope(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			for typ, ids := range w.byType {
				found, err := w.st.Find(ctx, store.Query{Type: typ, Filter: sc.Filter(typ)})
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, v := range found {
					got = append(got, v.ID)
				}
				var want []string
				for _, id := range ids {
					v, err := w.st.Read(ctx, typ, id)
					if err != nil {
						t.Fatal(err)
					}
					if sc.Visible(v) {
						want = append(want, id)
					}
				}
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d, requester %+v, %s: the store query finds %v, Visible accepts %v (filter %v)",
						seed, *req, typ, got, want, sc.Filter(typ))
				}
				n, err := w.st.Count(ctx, store.Query{Type: typ, Filter: sc.Filter(typ)})
				if err != nil {
					t.Fatal(err)
				}
				if int(n) != len(want) {
					t.Fatalf("seed %d, %+v, %s: count %d, want %d", seed, *req, typ, n, len(want))
				}
				c := seen[req.Role]
				c[0] += len(want)
				c[1] += len(ids) - len(want)
				seen[req.Role] = c
			}
		}
	}
	// The property means something only if every role both sees and
	// misses resources somewhere in the run.
	for _, role := range []access.Role{access.RoleProfessional, access.RolePatient, access.RoleRepresentative,
		access.RoleCampaign, access.RoleIntegration, access.RoleAdmin} {
		if c := seen[role]; c[0] == 0 || c[1] == 0 {
			t.Errorf("%s: %d visible, %d hidden over the run: the random world does not exercise this role", role, c[0], c[1])
		}
	}
	_ = fmt.Sprint
}
