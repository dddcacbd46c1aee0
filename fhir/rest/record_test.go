package rest_test

// The personal record's rules over real HTTP: $validate and profiles, one
// record per INS, closing and reopening a record, document size and hash,
// document replacement, Patient/$everything and the prevention campaign
// query (CarePlan?due-activity=...).

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dossier-fhir/dossier/fhir/profile"
	"github.com/dossier-fhir/dossier/profiles"
)

const (
	recINSNIR      = "urn:oid:1.2.250.1.213.1.4.8"
	recINSTest     = "urn:oid:1.2.250.1.213.1.4.10"
	recClosureURL  = "https://dossier-fhir.github.io/fhir/StructureDefinition/record-closure"
	recPrevCat     = "https://dossier-fhir.github.io/fhir/CodeSystem/careplan-category"
	recPrevAct     = "https://dossier-fhir.github.io/fhir/CodeSystem/prevention-activity"
	recProfPatient = profile.Base + "/StructureDefinition/dossier-patient-ins"
	recProfEnc     = profile.Base + "/StructureDefinition/dossier-encounter"
	recProfDoc     = profile.Base + "/StructureDefinition/dossier-document-reference"
	recProfCP      = profile.Base + "/StructureDefinition/dossier-careplan-prevention"
)

var (
	recProfOnce sync.Once
	recProfSet  *profile.Set
	recProfErr  error
)

// recProfiles is the profile set of profiles/, loaded once.
func recProfiles(tb testing.TB) *profile.Set {
	tb.Helper()
	recProfOnce.Do(func() { recProfSet, recProfErr = profile.Load(profiles.FS) })
	if recProfErr != nil {
		tb.Fatal(recProfErr)
	}
	return recProfSet
}

// recNIR returns a 15-digit NIR with a right key, distinct for each n < 10^6.
func recNIR(n int) string {
	body := fmt.Sprintf("1840375%06d", n)
	b, _ := new(big.Int).SetString(body, 10)
	key := 97 - new(big.Int).Mod(b, big.NewInt(97)).Int64()
	return fmt.Sprintf("%s%02d", body, key)
}

// recJSON marshals v (a fixture built as maps).
func recJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// recClone deep-copies a fixture.
func recClone(tb testing.TB, m map[string]any) map[string]any {
	tb.Helper()
	var out map[string]any
	if err := json.Unmarshal([]byte(recJSON(tb, m)), &out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// recPatient is a Patient that conforms to dossier-patient-ins, with an
// INS-NIR (system sys) and the given id ("" for none).
func recPatient(id, sys, nir string) map[string]any {
	m := map[string]any{
		"resourceType": "Patient",
		"meta":         map[string]any{"profile": []any{recProfPatient}},
		"extension": []any{map[string]any{
			"url": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability",
			"extension": []any{map[string]any{"url": "identityStatus", "valueCoding": map[string]any{
				"system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0445", "code": "QUAL"}}},
		}},
		"identifier": []any{
			map[string]any{"system": "urn:oid:1.2.250.1.71.4.2.7", "value": "IPP-" + nir},
			map[string]any{"system": sys, "value": nir},
		},
		"name":      []any{map[string]any{"family": "Durand", "given": []any{"Sophie"}}},
		"gender":    "female",
		"birthDate": "1982-05-14",
	}
	if id != "" {
		m["id"] = id
	}
	return m
}

func recEncounter() map[string]any {
	return map[string]any{
		"resourceType": "Encounter",
		"meta":         map[string]any{"profile": []any{recProfEnc}},
		"status":       "finished",
		"class":        map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
		"subject":      map[string]any{"reference": "Patient/p1"},
		"period":       map[string]any{"start": "2025-09-18T10:00:00+02:00"},
	}
}

// recFullDoc is a DocumentReference that conforms to dossier-document-reference.
func recFullDoc() map[string]any {
	return map[string]any{
		"resourceType":     "DocumentReference",
		"meta":             map[string]any{"profile": []any{recProfDoc}},
		"masterIdentifier": map[string]any{"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.250.1.999.1"},
		"status":           "current",
		"type":             map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "11488-4"}}},
		"category":         []any{map[string]any{"coding": []any{map[string]any{"system": "urn:oid:1.2.250.1.213.1.1.4.1", "code": "10"}}}},
		"subject":          map[string]any{"reference": "Patient/p1"},
		"date":             "2025-09-18T10:30:00+02:00",
		"author":           []any{map[string]any{"reference": "Practitioner/pr1"}},
		"custodian":        map[string]any{"reference": "Organization/o1"},
		"securityLabel": []any{
			map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "N"}}},
		},
		"content": []any{map[string]any{
			"attachment": map[string]any{"contentType": "text/plain", "language": "fr-FR", "data": "Qm9uam91cg==", "size": 7,
				"hash": "8w7L9bHLhcYx/ewLOWeFUJc8/Lw=", "title": "CR", "creation": "2025-09-18T10:30:00+02:00"},
			"format": map[string]any{"system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode", "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient"},
		}},
		"context": map[string]any{
			"facilityType":    map[string]any{"coding": []any{map[string]any{"system": "urn:oid:1.2.250.1.71.4.2.4", "code": "SA07"}}},
			"practiceSetting": map[string]any{"coding": []any{map[string]any{"system": "urn:oid:1.2.250.1.71.4.2.5", "code": "SM54"}}},
			"period":          map[string]any{"start": "2025-09-18T10:00:00+02:00"},
		},
	}
}

func recCarePlan() map[string]any {
	return map[string]any{
		"resourceType": "CarePlan",
		"meta":         map[string]any{"profile": []any{recProfCP}},
		"status":       "active",
		"intent":       "plan",
		"category":     []any{map[string]any{"coding": []any{map[string]any{"system": recPrevCat, "code": "prevention"}}}},
		"subject":      map[string]any{"reference": "Patient/p1"},
		"activity": []any{
			map[string]any{"detail": map[string]any{
				"code":   map[string]any{"coding": []any{map[string]any{"system": recPrevAct, "code": "vaccination-dtp"}}},
				"status": "not-started", "scheduledPeriod": map[string]any{"start": "2027-05-14"}}},
		},
	}
}

// recIssue is an OperationOutcome issue.
type recIssue struct {
	Severity, Code, Diagnostics string
	Expression                  []string
}

func recIssues(tb testing.TB, r resp, want ...int) []recIssue {
	tb.Helper()
	fxOutcome(tb, r, want...)
	var oo struct{ Issue []recIssue }
	if err := json.Unmarshal(r.Body, &oo); err != nil {
		tb.Fatal(err)
	}
	return oo.Issue
}

// recHasIssue reports whether issues has one with code and expression.
func recHasIssue(issues []recIssue, code, expr string) bool {
	for _, is := range issues {
		if is.Code == code && (expr == "" || slices.Contains(is.Expression, expr)) {
			return true
		}
	}
	return false
}

// recCreate POSTs a resource, expects 201 and returns its id.
func recCreate(tb testing.TB, e *env, typ, body string) string {
	tb.Helper()
	r := e.Do("POST", "/"+typ, body)
	fxStatus(tb, r, http.StatusCreated)
	id := fxStr(fxObj(tb, r.Body), "id")
	if id == "" {
		tb.Fatalf("created %s without id", typ)
	}
	return id
}

// recRead GETs typ/id, expects 200 and returns the resource.
func recRead(tb testing.TB, e *env, typ, id string) map[string]any {
	tb.Helper()
	r := e.Do("GET", "/"+typ+"/"+id, "")
	fxStatus(tb, r, http.StatusOK)
	return fxObj(tb, r.Body)
}

// ---- 1. $validate and profiles ----

func TestRecordValidate(t *testing.T) {
	e := newEnvWith(t, setup{profiles: recProfiles(t)})
	nir := recNIR(1)

	// A valid Patient: All OK.
	is := recIssues(t, e.Do("POST", "/Patient/$validate", recJSON(t, recPatient("", recINSNIR, nir))), http.StatusOK)
	if len(is) != 1 || is[0].Severity != "information" || is[0].Diagnostics != "All OK" {
		t.Errorf("valid Patient: %+v, want one informational All OK", is)
	}

	cases := []struct {
		name, typ string
		base      func() map[string]any
		edit      func(m map[string]any)
		code      string
		expr      string
	}{
		{"patient NIR regex", "Patient", func() map[string]any { return recPatient("", recINSNIR, nir) },
			func(m map[string]any) { fxAt(m, "identifier", 1).(map[string]any)["value"] = "28205751120X449" },
			"value", "Patient.identifier[1].value"},
		{"patient test NIR regex", "Patient", func() map[string]any { return recPatient("", recINSTest, nir) },
			func(m map[string]any) { fxAt(m, "identifier", 1).(map[string]any)["value"] = "12" },
			"value", "Patient.identifier[1].value"},
		{"patient two INS-NIR (slice max)", "Patient", func() map[string]any { return recPatient("", recINSNIR, nir) },
			func(m map[string]any) {
				m["identifier"] = append(m["identifier"].([]any), map[string]any{"system": recINSNIR, "value": recNIR(2)})
			},
			"structure", "Patient.identifier"},
		{"patient name missing", "Patient", func() map[string]any { return recPatient("", recINSNIR, nir) },
			func(m map[string]any) { delete(m, "name") }, "required", "Patient.name"},
		{"encounter period start missing", "Encounter", recEncounter,
			func(m map[string]any) { m["period"] = map[string]any{"end": "2025-09-18T11:00:00+02:00"} },
			"required", "Encounter.period.start"},
		{"encounter subject missing", "Encounter", recEncounter,
			func(m map[string]any) { delete(m, "subject") }, "required", "Encounter.subject"},
		{"document securityLabel missing", "DocumentReference", recFullDoc,
			func(m map[string]any) { delete(m, "securityLabel") }, "required", "DocumentReference.securityLabel"},
		{"document size wrong (content rule)", "DocumentReference", recFullDoc,
			func(m map[string]any) { fxAt(m, "content", 0, "attachment").(map[string]any)["size"] = 8 },
			"value", "DocumentReference.content[0].attachment.size"},
		{"careplan scheduled start missing", "CarePlan", recCarePlan,
			func(m map[string]any) {
				fxAt(m, "activity", 0, "detail").(map[string]any)["scheduledPeriod"] = map[string]any{"end": "2027-12-31"}
			},
			"required", "CarePlan.activity[0].detail.scheduled.start"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := c.base()
			// The fixture itself is valid.
			ok := recIssues(t, e.Do("POST", "/"+c.typ+"/$validate", recJSON(t, base)), http.StatusOK)
			if len(ok) != 1 || ok[0].Diagnostics != "All OK" {
				t.Fatalf("fixture not valid: %+v", ok)
			}
			m := recClone(t, base)
			c.edit(m)
			is := recIssues(t, e.Do("POST", "/"+c.typ+"/$validate", recJSON(t, m)), http.StatusOK)
			if !recHasIssue(is, c.code, c.expr) {
				t.Errorf("issues %+v, want code %s at %s", is, c.code, c.expr)
			}
			for _, x := range is {
				if x.Severity == "information" {
					t.Errorf("All OK beside errors: %+v", is)
				}
			}
			// The same in the Parameters form.
			params := recJSON(t, map[string]any{"resourceType": "Parameters", "parameter": []any{
				map[string]any{"name": "resource", "resource": m},
				map[string]any{"name": "mode", "valueCode": "create"},
			}})
			is = recIssues(t, e.Do("POST", "/"+c.typ+"/$validate", params), http.StatusOK)
			if !recHasIssue(is, c.code, c.expr) {
				t.Errorf("Parameters form: issues %+v, want code %s at %s", is, c.code, c.expr)
			}
		})
	}

	t.Run("profile parameter applies a profile", func(t *testing.T) {
		m := recPatient("", recINSNIR, nir)
		delete(m, "meta")
		delete(m, "gender")
		is := recIssues(t, e.Do("POST", "/Patient/$validate", recJSON(t, m)), http.StatusOK)
		if len(is) != 1 || is[0].Diagnostics != "All OK" {
			t.Errorf("no profile claimed, not strict: %+v, want All OK", is)
		}
		params := recJSON(t, map[string]any{"resourceType": "Parameters", "parameter": []any{
			map[string]any{"name": "resource", "resource": m},
			map[string]any{"name": "profile", "valueCanonical": recProfPatient},
		}})
		is = recIssues(t, e.Do("POST", "/Patient/$validate", params), http.StatusOK)
		if !recHasIssue(is, "required", "Patient.gender") {
			t.Errorf("profile parameter: %+v, want required Patient.gender", is)
		}
	})

	t.Run("mode=update id mismatch", func(t *testing.T) {
		m := recPatient("p2", recINSNIR, nir)
		params := recJSON(t, map[string]any{"resourceType": "Parameters", "parameter": []any{
			map[string]any{"name": "resource", "resource": m},
			map[string]any{"name": "mode", "valueCode": "update"},
		}})
		is := recIssues(t, e.Do("POST", "/Patient/p1/$validate", params), http.StatusOK)
		if !recHasIssue(is, "invalid", "Patient.id") {
			t.Errorf("issues %+v, want invalid at Patient.id", is)
		}
		// Matching ids: All OK.
		m["id"] = "p1"
		params = recJSON(t, map[string]any{"resourceType": "Parameters", "parameter": []any{
			map[string]any{"name": "resource", "resource": m},
			map[string]any{"name": "mode", "valueCode": "update"},
		}})
		is = recIssues(t, e.Do("POST", "/Patient/p1/$validate", params), http.StatusOK)
		if len(is) != 1 || is[0].Diagnostics != "All OK" {
			t.Errorf("matching ids: %+v, want All OK", is)
		}
	})

	t.Run("mode=delete", func(t *testing.T) {
		params := `{"resourceType":"Parameters","parameter":[{"name":"mode","valueCode":"delete"}]}`
		recIssues(t, e.Do("POST", "/Patient/nosuch/$validate", params), http.StatusNotFound)
		id := recCreate(t, e, "Patient", recJSON(t, recPatient("", recINSNIR, recNIR(3))))
		is := recIssues(t, e.Do("POST", "/Patient/"+id+"/$validate", params), http.StatusOK)
		if len(is) != 1 || is[0].Diagnostics != "All OK" {
			t.Errorf("existing Patient: %+v, want All OK", is)
		}
	})

	t.Run("nothing stored by $validate", func(t *testing.T) {
		if n := fxTotal(t, e, "/Patient", "searchset"); n != 1 {
			t.Errorf("%d Patients stored, want 1 (the mode=delete one)", n)
		}
	})
}

func TestRecordStrictProfiles(t *testing.T) {
	bad := recPatient("", recINSNIR, recNIR(1))
	delete(bad, "meta") // claims nothing: only strict mode applies the profile
	delete(bad, "gender")
	delete(bad, "birthDate")

	t.Run("strict", func(t *testing.T) {
		e := newEnvWith(t, setup{profiles: recProfiles(t), strict: true})
		is := recIssues(t, e.Do("POST", "/Patient", recJSON(t, bad)), http.StatusUnprocessableEntity)
		if !recHasIssue(is, "required", "Patient.gender") || !recHasIssue(is, "required", "Patient.birthDate") {
			t.Errorf("issues %+v, want both missing elements reported", is)
		}
		if n := fxTotal(t, e, "/Patient", "searchset"); n != 0 {
			t.Errorf("%d Patients stored after a refused create", n)
		}
		// In a transaction too.
		r := e.Do("POST", "", txBundle("transaction", postEntry("urn:uuid:11111111-1111-4111-8111-111111111111", recJSON(t, bad))))
		fxOutcome(t, r, http.StatusUnprocessableEntity)
		if n := fxTotal(t, e, "/Patient", "searchset"); n != 0 {
			t.Errorf("%d Patients stored after a refused transaction", n)
		}
		// A conforming one is accepted.
		good := recPatient("", recINSNIR, recNIR(1))
		delete(good, "meta")
		recCreate(t, e, "Patient", recJSON(t, good))
	})
	t.Run("sample record conforms", func(t *testing.T) {
		e := newEnvWith(t, setup{profiles: recProfiles(t), strict: true})
		recLoadSample(t, e)
	})
	t.Run("not strict", func(t *testing.T) {
		e := newEnvWith(t, setup{profiles: recProfiles(t)})
		recCreate(t, e, "Patient", recJSON(t, bad))
		// Claiming the profile makes it apply.
		claimed := recClone(t, bad)
		claimed["meta"] = map[string]any{"profile": []any{recProfPatient}}
		claimed["identifier"] = []any{map[string]any{"system": recINSNIR, "value": recNIR(2)}}
		fxOutcome(t, e.Do("POST", "/Patient", recJSON(t, claimed)), http.StatusUnprocessableEntity)
		if n := fxTotal(t, e, "/Patient", "searchset"); n != 1 {
			t.Errorf("%d Patients stored, want 1", n)
		}
	})
}

// ---- 2. one record per INS ----

func TestRecordOnePatientPerINS(t *testing.T) {
	e := newEnv(t)
	nir := recNIR(42)
	body := recJSON(t, recPatient("", recINSNIR, nir))
	search := "/Patient?identifier=" + url.QueryEscape(recINSNIR+"|"+nir)

	// 20 concurrent creates: one record.
	const n = 20
	statuses := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := fxDo(e, "POST", "/Patient", body)
			statuses[i], errs[i] = r.Status, err
			if err == nil && r.Status != http.StatusCreated && r.Status != http.StatusConflict {
				errs[i] = fmt.Errorf("status %d: %.300s", r.Status, r.Body)
			}
		}()
	}
	close(start)
	wg.Wait()
	created, conflicts := 0, 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("request %d: %v", i, errs[i])
		}
		switch statuses[i] {
		case http.StatusCreated:
			created++
		case http.StatusConflict:
			conflicts++
		}
	}
	if created != 1 || conflicts != n-1 {
		t.Fatalf("%d created, %d conflicts; want 1 and %d (statuses %v)", created, conflicts, n-1, statuses)
	}
	b := fxGetBundle(t, e, search, "searchset")
	if *b.Total != 1 || len(b.Entry) != 1 {
		t.Fatalf("%d Patients with the INS, want 1", *b.Total)
	}
	first := fxStr(fxDecodeAny(t, b.Entry[0].Resource), "id")
	if n := fxTotal(t, e, "/Patient", "searchset"); n != 1 {
		t.Errorf("%d Patients stored, want 1", n)
	}

	// The 409 is an OperationOutcome on Patient.identifier.
	is := recIssues(t, e.Do("POST", "/Patient", body), http.StatusConflict)
	if !recHasIssue(is, "duplicate", "Patient.identifier") {
		t.Errorf("409 issues %+v", is)
	}

	// Conditional create on the INS returns the record.
	r := e.Do("POST", "/Patient", body, "If-None-Exist", "identifier="+recINSNIR+"|"+nir)
	fxStatus(t, r, http.StatusOK)
	if got := fxStr(fxObj(t, r.Body), "id"); got != first {
		t.Errorf("conditional create returned %s, want %s", got, first)
	}

	// Updating the record itself, INS kept: fine.
	upd := recPatient(first, recINSNIR, nir)
	upd["gender"] = "other"
	fxStatus(t, e.Do("PUT", "/Patient/"+first, recJSON(t, upd)), http.StatusOK)

	// Another Patient taking that INS by update: 409, unchanged.
	other := recCreate(t, e, "Patient", recJSON(t, recPatient("", recINSNIR, recNIR(43))))
	fxOutcome(t, e.Do("PUT", "/Patient/"+other, recJSON(t, recPatient(other, recINSNIR, nir))), http.StatusConflict)
	if got := fxStr(recRead(t, e, "Patient", other), "meta", "versionId"); got != "1" {
		t.Errorf("refused update stored version %s", got)
	}
	// ... or by being created with a client id.
	fxOutcome(t, e.Do("PUT", "/Patient/newone", recJSON(t, recPatient("newone", recINSNIR, nir))), http.StatusConflict)
	fxStatus(t, e.Do("GET", "/Patient/newone", ""), http.StatusNotFound)

	// Two Patients with the same INS in one transaction: refused whole.
	tx := txBundle("transaction",
		postEntry("urn:uuid:21111111-1111-4111-8111-111111111111", recJSON(t, recPatient("", recINSNIR, recNIR(44)))),
		postEntry("urn:uuid:21111111-1111-4111-8111-111111111112", recJSON(t, recPatient("", recINSNIR, recNIR(44)))))
	fxOutcome(t, e.Do("POST", "", tx), http.StatusConflict)
	if n := fxTotal(t, e, "/Patient?identifier="+url.QueryEscape(recINSNIR+"|"+recNIR(44)), "searchset"); n != 0 {
		t.Errorf("refused transaction stored %d Patients", n)
	}
	// ...and the refused transaction left no claim behind.
	recCreate(t, e, "Patient", recJSON(t, recPatient("", recINSNIR, recNIR(44))))

	// The same NIR under another INS system is another identifier.
	recCreate(t, e, "Patient", recJSON(t, recPatient("", recINSTest, nir)))

	// After deleting the record, the INS is free again.
	fxStatus(t, e.Do("DELETE", "/Patient/"+first, ""), http.StatusOK, http.StatusNoContent)
	again := recCreate(t, e, "Patient", body)
	if again == first {
		t.Errorf("new record has the deleted id")
	}
	if n := fxTotal(t, e, search, "searchset"); n != 1 {
		t.Errorf("%d Patients with the INS after re-creation, want 1", n)
	}
	// And a moved INS frees the old one: the other Patient drops it...
	o := recRead(t, e, "Patient", other)
	o["identifier"] = []any{map[string]any{"system": recINSNIR, "value": recNIR(45)}}
	fxStatus(t, e.Do("PUT", "/Patient/"+other, recJSON(t, o)), http.StatusOK)
	recCreate(t, e, "Patient", recJSON(t, recPatient("", recINSNIR, recNIR(43))))
}

// ---- 3. closing and reopening a record ----

func TestRecordCloseReopen(t *testing.T) {
	e := newEnv(t)
	pid := recCreate(t, e, "Patient", recJSON(t, recPatient("", recINSNIR, recNIR(7))))
	obs := func(subject string) string {
		return `{"resourceType":"Observation","status":"final","code":{"text":"poids"},"subject":{"reference":"Patient/` + subject + `"},"valueQuantity":{"value":62,"unit":"kg"}}`
	}
	oid := recCreate(t, e, "Observation", obs(pid))

	before := time.Now().UTC().Add(-time.Second)
	r := e.Do("POST", "/Patient/"+pid+"/$close", "")
	fxStatus(t, r, http.StatusOK)
	after := time.Now().UTC().Add(time.Second)
	checkClosed := func(p map[string]any) {
		t.Helper()
		if p["active"] != false {
			t.Errorf("closed Patient active = %v", p["active"])
		}
		var closed, retain string
		for _, x := range fxAt(p, "extension").([]any) {
			if fxStr(x, "url") != recClosureURL {
				continue
			}
			for _, sub := range fxAt(x, "extension").([]any) {
				switch fxStr(sub, "url") {
				case "closed":
					closed = fxStr(sub, "valueDateTime")
				case "retainUntil":
					retain = fxStr(sub, "valueDateTime")
				}
			}
		}
		ct, err1 := time.Parse(time.RFC3339, closed)
		rt, err2 := time.Parse(time.RFC3339, retain)
		if err1 != nil || err2 != nil {
			t.Fatalf("closure extension: closed %q retainUntil %q", closed, retain)
		}
		if ct.Before(before.Truncate(time.Second)) || ct.After(after) {
			t.Errorf("closed %s, not now", ct)
		}
		if !rt.Equal(ct.AddDate(10, 0, 0)) {
			t.Errorf("retainUntil %s, want closed + 10 years (%s)", rt, ct.AddDate(10, 0, 0))
		}
	}
	checkClosed(fxObj(t, r.Body))
	closedP := recRead(t, e, "Patient", pid)
	checkClosed(closedP)
	vid := fxStr(closedP, "meta", "versionId")

	// Closing again changes nothing.
	fxStatus(t, e.Do("POST", "/Patient/"+pid+"/$close", ""), http.StatusOK)
	if got := fxStr(recRead(t, e, "Patient", pid), "meta", "versionId"); got != vid {
		t.Errorf("second $close made version %s (was %s)", got, vid)
	}

	// Every write to the record is refused.
	o := recRead(t, e, "Observation", oid)
	o["status"] = "amended"
	pNoExt := recClone(t, closedP)
	delete(pNoExt, "extension")
	pNoExt["gender"] = "other"
	pWithExt := recClone(t, closedP)
	pWithExt["gender"] = "other"
	writes := []struct {
		name, method, path, body string
	}{
		{"create Observation", "POST", "/Observation", obs(pid)},
		{"update Observation", "PUT", "/Observation/" + oid, recJSON(t, o)},
		{"patch Observation", "PATCH", "/Observation/" + oid, ""},
		{"delete Observation", "DELETE", "/Observation/" + oid, ""},
		{"update Patient", "PUT", "/Patient/" + pid, recJSON(t, pNoExt)},
		{"update Patient keeping the extension", "PUT", "/Patient/" + pid, recJSON(t, pWithExt)},
		{"delete Patient", "DELETE", "/Patient/" + pid, ""},
		{"transaction", "POST", "", txBundle("transaction", postEntry("urn:uuid:31111111-1111-4111-8111-111111111111", obs(pid)))},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			var r resp
			if w.method == "PATCH" {
				r = e.Do("PATCH", w.path, `[{"op":"replace","path":"/status","value":"amended"}]`, "Content-Type", "application/json-patch+json")
			} else {
				r = e.Do(w.method, w.path, w.body)
			}
			is := recIssues(t, r, http.StatusUnprocessableEntity)
			if !recHasIssue(is, "business-rule", "") {
				t.Errorf("issues %+v, want business-rule", is)
			}
		})
	}
	// Nothing changed; reads and searches work.
	if got := fxStr(recRead(t, e, "Observation", oid), "meta", "versionId"); got != "1" {
		t.Errorf("Observation at version %s", got)
	}
	if got := fxStr(recRead(t, e, "Patient", pid), "meta", "versionId"); got != vid {
		t.Errorf("Patient at version %s, want %s", got, vid)
	}
	if n := fxTotal(t, e, "/Observation?subject=Patient/"+pid, "searchset"); n != 1 {
		t.Errorf("%d Observations of the closed record, want 1", n)
	}
	if n := fxTotal(t, e, "/Patient?_id="+pid, "searchset"); n != 1 {
		t.Errorf("closed Patient not found by search")
	}
	ev := recEverything(t, e, "/Patient/"+pid+"/$everything")
	if len(ev.Entry) != 2 {
		t.Errorf("$everything of the closed record: %d entries, want 2", len(ev.Entry))
	}
	// $validate mode=delete reports the closure.
	is := recIssues(t, e.Do("POST", "/Observation/"+oid+"/$validate?mode=delete", ""), http.StatusOK)
	if !recHasIssue(is, "business-rule", "") {
		t.Errorf("$validate mode=delete in a closed record: %+v", is)
	}

	// A client may not set the closure extension, on an open record either.
	other := recCreate(t, e, "Patient", recJSON(t, recPatient("", recINSNIR, recNIR(8))))
	forged := recPatient(other, recINSNIR, recNIR(8))
	forged["extension"] = append(forged["extension"].([]any), map[string]any{"url": recClosureURL,
		"extension": []any{map[string]any{"url": "closed", "valueDateTime": "2025-01-01T00:00:00Z"}}})
	is = recIssues(t, e.Do("PUT", "/Patient/"+other, recJSON(t, forged)), http.StatusUnprocessableEntity)
	if !recHasIssue(is, "business-rule", "Patient.extension") {
		t.Errorf("forged closure: %+v", is)
	}
	delete(forged, "id")
	fxOutcome(t, e.Do("POST", "/Patient", recJSON(t, forged)), http.StatusUnprocessableEntity)
	if got := fxStr(recRead(t, e, "Patient", other), "meta", "versionId"); got != "1" {
		t.Errorf("forged closure stored version %s", got)
	}

	// Reopen: writes work again.
	r = e.Do("POST", "/Patient/"+pid+"/$reopen", "")
	fxStatus(t, r, http.StatusOK)
	reopened := fxObj(t, r.Body)
	if reopened["active"] != true || strings.Contains(string(r.Body), recClosureURL) {
		t.Errorf("reopened Patient: %s", r.Body)
	}
	recCreate(t, e, "Observation", obs(pid))
	o = recRead(t, e, "Observation", oid)
	o["status"] = "amended"
	fxStatus(t, e.Do("PUT", "/Observation/"+oid, recJSON(t, o)), http.StatusOK)
	p := recRead(t, e, "Patient", pid)
	p["gender"] = "other"
	fxStatus(t, e.Do("PUT", "/Patient/"+pid, recJSON(t, p)), http.StatusOK)
	fxStatus(t, e.Do("DELETE", "/Observation/"+oid, ""), http.StatusOK, http.StatusNoContent)

	// Unknown Patient: 404.
	fxOutcome(t, e.Do("POST", "/Patient/nosuch/$close", ""), http.StatusNotFound)
}

// ---- 4. document size and hash ----

// recDoc is a minimal DocumentReference of Patient pid with the given
// attachments.
func recDoc(pid string, atts ...map[string]any) map[string]any {
	var content []any
	for _, a := range atts {
		content = append(content, map[string]any{"attachment": a})
	}
	return map[string]any{
		"resourceType": "DocumentReference",
		"status":       "current",
		"subject":      map[string]any{"reference": "Patient/" + pid},
		"content":      content,
	}
}

// recDocID is recDoc with an id.
func recDocID(id, pid string, atts ...map[string]any) map[string]any {
	m := recDoc(pid, atts...)
	m["id"] = id
	return m
}

func recSHA1(b []byte) string {
	s := sha1.Sum(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// recAttachment returns the size and hash of the stored document's i-th attachment.
func recAttachment(tb testing.TB, e *env, id string, i int) (string, string) {
	tb.Helper()
	d := recRead(tb, e, "DocumentReference", id)
	n, _ := fxAt(d, "content", i, "attachment", "size").(json.Number)
	return n.String(), fxStr(d, "content", i, "attachment", "hash")
}

func TestRecordDocumentDigest(t *testing.T) {
	e := newEnv(t)
	pid := recCreate(t, e, "Patient", recJSON(t, recPatient("", recINSNIR, recNIR(9))))
	text := []byte("Compte rendu de consultation.\n")
	data := base64.StdEncoding.EncodeToString(text)
	wantSize, wantHash := fmt.Sprint(len(text)), recSHA1(text)

	// Computed when absent.
	id := recCreate(t, e, "DocumentReference", recJSON(t, recDoc(pid, map[string]any{"contentType": "text/plain", "data": data})))
	if s, h := recAttachment(t, e, id, 0); s != wantSize || h != wantHash {
		t.Errorf("stored size %s hash %s, want %s %s", s, h, wantSize, wantHash)
	}
	// Accepted when right.
	recCreate(t, e, "DocumentReference", recJSON(t, recDoc(pid, map[string]any{"contentType": "text/plain", "data": data, "size": len(text), "hash": wantHash})))

	// Mismatches: 400 on the element, nothing stored.
	good := map[string]any{"contentType": "text/plain", "data": data}
	bad := []struct {
		name string
		atts []map[string]any
		code string
		expr string
	}{
		{"size", []map[string]any{{"contentType": "text/plain", "data": data, "size": len(text) + 1}}, "value", "DocumentReference.content[0].attachment.size"},
		{"hash", []map[string]any{{"contentType": "text/plain", "data": data, "hash": recSHA1([]byte("autre"))}}, "value", "DocumentReference.content[0].attachment.hash"},
		// Not base64: base R4 validation refuses it first.
		{"hash not base64", []map[string]any{{"contentType": "text/plain", "data": data, "hash": "###"}}, "invalid", "DocumentReference.content[0].attachment.hash"},
		{"second attachment", []map[string]any{good, {"contentType": "text/plain", "data": data, "size": 1}}, "value", "DocumentReference.content[1].attachment.size"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			is := recIssues(t, e.Do("POST", "/DocumentReference", recJSON(t, recDoc(pid, c.atts...))), http.StatusBadRequest)
			if !recHasIssue(is, c.code, c.expr) {
				t.Errorf("issues %+v, want %s at %s", is, c.code, c.expr)
			}
			// Update too.
			m := recDoc(pid, c.atts...)
			m["id"] = id
			recIssues(t, e.Do("PUT", "/DocumentReference/"+id, recJSON(t, m)), http.StatusBadRequest)
		})
	}
	if n := fxTotal(t, e, "/DocumentReference", "searchset"); n != 2 {
		t.Errorf("%d documents stored, want 2", n)
	}
	if got := fxStr(recRead(t, e, "DocumentReference", id), "meta", "versionId"); got != "1" {
		t.Errorf("refused updates stored version %s", got)
	}

	// A raw Binary named by attachment.url.
	pdf := pdfLike(5000, 7)
	r := e.Do("POST", "/Binary", string(pdf), "Content-Type", "application/pdf")
	fxStatus(t, r, http.StatusCreated)
	bid := binaryIDOf(t, r)
	did := recCreate(t, e, "DocumentReference", recJSON(t, recDoc(pid, map[string]any{"contentType": "application/pdf", "url": "Binary/" + bid})))
	if s, h := recAttachment(t, e, did, 0); s != "5000" || h != recSHA1(pdf) {
		t.Errorf("raw Binary: stored size %s hash %s, want 5000 %s", s, h, recSHA1(pdf))
	}
	is := recIssues(t, e.Do("POST", "/DocumentReference", recJSON(t, recDoc(pid,
		map[string]any{"contentType": "application/pdf", "url": "Binary/" + bid, "hash": wantHash}))), http.StatusBadRequest)
	if !recHasIssue(is, "value", "DocumentReference.content[0].attachment.hash") {
		t.Errorf("raw Binary hash mismatch: %+v", is)
	}
	// An unknown Binary: 422 on the url.
	is = recIssues(t, e.Do("POST", "/DocumentReference", recJSON(t, recDoc(pid,
		map[string]any{"contentType": "application/pdf", "url": "Binary/nosuch"}))), http.StatusUnprocessableEntity)
	if !recHasIssue(is, "not-found", "DocumentReference.content[0].attachment.url") {
		t.Errorf("unknown Binary: %+v", is)
	}

	// A FHIR JSON Binary.
	jb := recCreate(t, e, "Binary", `{"resourceType":"Binary","contentType":"text/plain","data":"`+data+`"}`)
	did = recCreate(t, e, "DocumentReference", recJSON(t, recDoc(pid, map[string]any{"contentType": "text/plain", "url": "Binary/" + jb})))
	if s, h := recAttachment(t, e, did, 0); s != wantSize || h != wantHash {
		t.Errorf("JSON Binary: stored size %s hash %s", s, h)
	}

	// A Binary of the same transaction, written after the document in the
	// bundle, with an id the client chose.
	tx := txBundle("transaction",
		`{"resource":`+recJSON(t, recDocID("tx-doc", pid, map[string]any{"contentType": "text/plain", "url": "Binary/tx-bin"}))+
			`,"request":{"method":"PUT","url":"DocumentReference/tx-doc"}}`,
		`{"resource":{"resourceType":"Binary","id":"tx-bin","contentType":"text/plain","data":"`+data+`"},"request":{"method":"PUT","url":"Binary/tx-bin"}}`)
	r = e.Do("POST", "", tx)
	fxStatus(t, r, http.StatusOK)
	if s, h := recAttachment(t, e, strings.TrimPrefix(recLocations(t, r)[0], "DocumentReference/"), 0); s != wantSize || h != wantHash {
		t.Errorf("Binary PUT in the bundle: stored size %q hash %q", s, h)
	}

	// The same with the Binary named by its urn:uuid: FHIR R4 transaction
	// rules resolve urn:uuid in elements of type url too (Attachment.url).
	tx = txBundle("transaction",
		postEntry("urn:uuid:41111111-1111-4111-8111-111111111111", recJSON(t, recDoc(pid,
			map[string]any{"contentType": "text/plain", "url": "urn:uuid:41111111-1111-4111-8111-111111111112"}))),
		postEntry("urn:uuid:41111111-1111-4111-8111-111111111112", `{"resourceType":"Binary","contentType":"text/plain","data":"`+data+`"}`))
	r = e.Do("POST", "", tx)
	fxStatus(t, r, http.StatusOK)
	locs := recLocations(t, r)
	docID := strings.TrimPrefix(locs[0], "DocumentReference/")
	d := recRead(t, e, "DocumentReference", docID)
	if got, want := fxStr(d, "content", 0, "attachment", "url"), locs[1]; got != want {
		t.Errorf("attachment.url %q, want %q: the transaction does not resolve urn:uuid in Attachment.url (FHIR R4 http.html#trules: uri/url elements too)", got, want)
	}
	if s, h := recAttachment(t, e, docID, 0); s != wantSize || h != wantHash {
		t.Errorf("Binary of the bundle by urn:uuid: stored size %q hash %q", s, h)
	}
	// ... with a wrong hash: the whole transaction fails.
	before := fxTotal(t, e, "/DocumentReference", "searchset")
	tx = txBundle("transaction",
		`{"resource":`+recJSON(t, recDocID("tx-doc2", pid, map[string]any{"contentType": "text/plain", "url": "Binary/tx-bin2", "size": 3}))+
			`,"request":{"method":"PUT","url":"DocumentReference/tx-doc2"}}`,
		`{"resource":{"resourceType":"Binary","id":"tx-bin2","contentType":"text/plain","data":"`+data+`"},"request":{"method":"PUT","url":"Binary/tx-bin2"}}`)
	is = recIssues(t, e.Do("POST", "", tx), http.StatusBadRequest)
	if !recHasIssue(is, "value", "") {
		t.Errorf("transaction size mismatch: %+v", is)
	}
	fxStatus(t, e.Do("GET", "/Binary/tx-bin2", ""), http.StatusNotFound)
	if n := fxTotal(t, e, "/DocumentReference", "searchset"); n != before {
		t.Errorf("failed transaction stored documents: %d, was %d", n, before)
	}
}

// recLocations returns "Type/id" of each entry of a transaction response.
func recLocations(tb testing.TB, r resp) []string {
	tb.Helper()
	var b fxBundle
	if err := json.Unmarshal(r.Body, &b); err != nil {
		tb.Fatal(err)
	}
	out := make([]string, len(b.Entry))
	for i, en := range b.Entry {
		if en.Response == nil {
			tb.Fatalf("entry %d without response", i)
		}
		loc := en.Response.Location
		if j := strings.Index(loc, "/_history/"); j >= 0 {
			loc = loc[:j]
		}
		parts := strings.Split(loc, "/")
		if len(parts) < 2 {
			tb.Fatalf("entry %d: location %q", i, en.Response.Location)
		}
		out[i] = parts[len(parts)-2] + "/" + parts[len(parts)-1]
	}
	return out
}

// ---- 5. document replacement ----

func TestRecordSupersede(t *testing.T) {
	e := newEnv(t)
	p1 := recCreate(t, e, "Patient", recJSON(t, recPatient("", recINSNIR, recNIR(11))))
	p2 := recCreate(t, e, "Patient", recJSON(t, recPatient("", recINSNIR, recNIR(12))))
	doc := func(pid string, replaces ...string) map[string]any {
		m := recDoc(pid, map[string]any{"contentType": "text/plain", "data": "Qm9uam91cg=="})
		for _, r := range replaces {
			rel, _ := m["relatesTo"].([]any)
			m["relatesTo"] = append(rel, map[string]any{"code": "replaces", "target": map[string]any{"reference": r}})
		}
		return m
	}
	a := recCreate(t, e, "DocumentReference", recJSON(t, doc(p1)))

	refused := []struct {
		name   string
		body   map[string]any
		status int
		code   string
	}{
		{"missing document", doc(p1, "DocumentReference/nosuch"), http.StatusUnprocessableEntity, "not-found"},
		{"another patient's document", doc(p2, "DocumentReference/"+a), http.StatusUnprocessableEntity, "business-rule"},
		{"itself", func() map[string]any { m := doc(p1, "DocumentReference/self"); m["id"] = "self"; return m }(), http.StatusUnprocessableEntity, "business-rule"},
		// relatesTo.target is Reference(DocumentReference): base validation.
		{"not a document", doc(p1, "Patient/"+p1), http.StatusBadRequest, "invalid"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			method, path := "POST", "/DocumentReference"
			if id, ok := c.body["id"].(string); ok {
				method, path = "PUT", path+"/"+id
			}
			is := recIssues(t, e.Do(method, path, recJSON(t, c.body)), c.status)
			if !recHasIssue(is, c.code, "DocumentReference.relatesTo[0].target") {
				t.Errorf("issues %+v, want %s at relatesTo[0].target", is, c.code)
			}
		})
	}
	if n := fxTotal(t, e, "/DocumentReference", "searchset"); n != 1 {
		t.Errorf("%d documents after refused replacements, want 1", n)
	}
	if d := recRead(t, e, "DocumentReference", a); fxStr(d, "status") != "current" || fxStr(d, "meta", "versionId") != "1" {
		t.Errorf("A changed by refused replacements: status %s version %s", fxStr(d, "status"), fxStr(d, "meta", "versionId"))
	}

	b := recCreate(t, e, "DocumentReference", recJSON(t, doc(p1, "DocumentReference/"+a)))
	da := recRead(t, e, "DocumentReference", a)
	if fxStr(da, "status") != "superseded" || fxStr(da, "meta", "versionId") != "2" {
		t.Errorf("A: status %s version %s, want superseded 2", fxStr(da, "status"), fxStr(da, "meta", "versionId"))
	}
	if db := recRead(t, e, "DocumentReference", b); fxStr(db, "status") != "current" {
		t.Errorf("B: status %s", fxStr(db, "status"))
	}
	if n := fxTotal(t, e, "/DocumentReference?status=current", "searchset"); n != 1 {
		t.Errorf("%d current documents, want 1", n)
	}
	// Replacing a superseded document again changes nothing in it.
	recCreate(t, e, "DocumentReference", recJSON(t, doc(p1, "DocumentReference/"+a)))
	if v := fxStr(recRead(t, e, "DocumentReference", a), "meta", "versionId"); v != "2" {
		t.Errorf("A at version %s after a second replacement", v)
	}

	// In a transaction, replacing a document of the store.
	a2 := recCreate(t, e, "DocumentReference", recJSON(t, doc(p1)))
	r := e.Do("POST", "", txBundle("transaction", postEntry("urn:uuid:51111111-1111-4111-8111-111111111111", recJSON(t, doc(p1, "DocumentReference/"+a2)))))
	fxStatus(t, r, http.StatusOK)
	if s := fxStr(recRead(t, e, "DocumentReference", a2), "status"); s != "superseded" {
		t.Errorf("replaced in a transaction: status %s", s)
	}

	// Atomicity: no reader sees B while A is still current.
	var violations, searchViolations atomic.Int64
	var reads atomic.Int64
	var firstErr atomic.Value
	for round := range 3 {
		a := recCreate(t, e, "DocumentReference", recJSON(t, doc(p1)))
		bid := fmt.Sprintf("b-%d", round)
		bm := doc(p1, "DocumentReference/"+a)
		bm["id"] = bid
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					var bSeen, aCurrent bool
					if i%2 == 0 {
						// One search returns both.
						r, err := fxDo(e, "GET", "/DocumentReference?_id="+a+","+bid, "")
						if err != nil || r.Status != http.StatusOK {
							firstErr.CompareAndSwap(nil, fmt.Sprintf("search: %v %d %.200s", err, r.Status, r.Body))
							return
						}
						var sb fxBundle
						_ = json.Unmarshal(r.Body, &sb)
						for _, en := range sb.Entry {
							var d struct{ ID, Status string }
							_ = json.Unmarshal(en.Resource, &d)
							if d.ID == bid {
								bSeen = true
							}
							if d.ID == a && d.Status == "current" {
								aCurrent = true
							}
						}
					} else {
						// B first, then A: once B is seen, A must be superseded.
						r, err := fxDo(e, "GET", "/DocumentReference/"+bid, "")
						if err != nil {
							firstErr.CompareAndSwap(nil, err.Error())
							return
						}
						bSeen = r.Status == http.StatusOK
						if bSeen {
							r, err = fxDo(e, "GET", "/DocumentReference/"+a, "")
							if err != nil || r.Status != http.StatusOK {
								firstErr.CompareAndSwap(nil, fmt.Sprintf("read A: %v %d", err, r.Status))
								return
							}
							aCurrent = strings.Contains(string(r.Body), `"status":"current"`)
						}
					}
					reads.Add(1)
					if bSeen && aCurrent {
						violations.Add(1)
						if i%2 == 0 {
							searchViolations.Add(1)
						}
					}
				}
			}()
		}
		time.Sleep(20 * time.Millisecond)
		fxStatus(t, e.Do("PUT", "/DocumentReference/"+bid, recJSON(t, bm)), http.StatusCreated)
		time.Sleep(30 * time.Millisecond)
		close(stop)
		wg.Wait()
		if s := fxStr(recRead(t, e, "DocumentReference", a), "status"); s != "superseded" {
			t.Errorf("round %d: A %s", round, s)
		}
	}
	if v := firstErr.Load(); v != nil {
		t.Errorf("reader error: %v", v)
	}
	if n := violations.Load(); n > 0 {
		t.Errorf("%d of %d reads saw B while A was still current (%d by a search of both, %d by reading B then A)",
			n, reads.Load(), searchViolations.Load(), n-searchViolations.Load())
	}
	t.Logf("%d concurrent reads", reads.Load())
}

// ---- 6. Patient/$everything ----

// recEverything GETs a $everything page (its Bundle has no total).
func recEverything(tb testing.TB, e *env, path string) *fxBundle {
	tb.Helper()
	r := e.Do("GET", path, "")
	fxStatus(tb, r, http.StatusOK)
	var b fxBundle
	if err := json.Unmarshal(r.Body, &b); err != nil || b.ResourceType != "Bundle" || b.Type != "searchset" {
		tb.Fatalf("GET %s: not a searchset Bundle (%v): %.300s", path, err, r.Body)
	}
	return &b
}

func recKeyOf(tb testing.TB, en fxEntry) string {
	tb.Helper()
	var h struct{ ResourceType, ID string }
	if err := json.Unmarshal(en.Resource, &h); err != nil || h.ResourceType == "" || h.ID == "" {
		tb.Fatalf("entry without resource: %.200s", en.Resource)
	}
	return h.ResourceType + "/" + h.ID
}

func recLoadSample(t *testing.T, e *env) (locs []string, types []string) {
	t.Helper()
	raw, err := os.ReadFile("../../testdata/sample-record.json")
	if err != nil {
		t.Fatal(err)
	}
	r := e.Do("POST", "", string(raw))
	fxStatus(t, r, http.StatusOK)
	locs = recLocations(t, r)
	var in struct {
		Entry []struct {
			Resource struct{ ResourceType string } `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		t.Fatal(err)
	}
	for i, en := range in.Entry {
		types = append(types, en.Resource.ResourceType)
		if !strings.HasPrefix(locs[i], en.Resource.ResourceType+"/") {
			t.Fatalf("entry %d: location %s for a %s", i, locs[i], en.Resource.ResourceType)
		}
	}
	return locs, types
}

func TestRecordEverything(t *testing.T) {
	e := newEnv(t)
	locs, _ := recLoadSample(t, e)
	var pid string
	wantMatch, wantInclude := map[string]bool{}, map[string]bool{}
	for _, l := range locs {
		typ, id, _ := strings.Cut(l, "/")
		switch typ {
		case "Patient":
			pid = id
			wantMatch[l] = true
		case "Organization", "Practitioner", "Binary":
			wantInclude[l] = true
		default:
			wantMatch[l] = true
		}
	}
	// Another record, which must not show.
	other := recCreate(t, e, "Patient", recJSON(t, recPatient("", recINSNIR, recNIR(13))))
	recCreate(t, e, "Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/`+other+`"}}`)

	// The sample's document naming the Binary by urn:uuid now names Binary/{id}.
	var binary string
	for l := range wantInclude {
		if strings.HasPrefix(l, "Binary/") {
			binary = l
		}
	}

	type page struct{ match, include []string }
	walk := func(path string) []page {
		t.Helper()
		var pages []page
		for path != "" && len(pages) < 50 {
			b := recEverything(t, e, path)
			var p page
			for _, en := range b.Entry {
				k := recKeyOf(t, en)
				if en.Search == nil {
					t.Fatalf("%s: entry without search.mode", k)
				}
				if en.FullURL != e.URL+"/"+k {
					t.Errorf("fullUrl %s for %s", en.FullURL, k)
				}
				switch en.Search.Mode {
				case "match":
					if len(p.include) > 0 {
						t.Errorf("match %s after includes", k)
					}
					p.match = append(p.match, k)
				case "include":
					p.include = append(p.include, k)
				default:
					t.Errorf("%s: mode %q", k, en.Search.Mode)
				}
			}
			pages = append(pages, p)
			path = b.next()
		}
		return pages
	}

	pages := walk("/Patient/" + pid + "/$everything?_count=3")
	seen, included := map[string]bool{}, map[string]bool{}
	var order []string
	for i, p := range pages {
		if len(p.match) > 3 {
			t.Errorf("page %d: %d matches, _count=3", i, len(p.match))
		}
		if len(p.match) == 0 {
			t.Errorf("page %d has no match", i)
		}
		for _, k := range p.match {
			if seen[k] {
				t.Errorf("%s matched twice", k)
			}
			seen[k] = true
			order = append(order, k)
		}
		inc := map[string]bool{}
		for _, k := range p.include {
			if inc[k] {
				t.Errorf("page %d: %s included twice", i, k)
			}
			inc[k] = true
			included[k] = true
		}
	}
	if len(order) == 0 || order[0] != "Patient/"+pid {
		t.Fatalf("first match %v, want the Patient", order)
	}
	for i := 2; i < len(order); i++ { // by type name, then id
		ta, ia, _ := strings.Cut(order[i-1], "/")
		tb, ib, _ := strings.Cut(order[i], "/")
		if ta > tb || (ta == tb && ia >= ib) {
			t.Errorf("order: %s before %s", order[i-1], order[i])
		}
	}
	if fmt.Sprint(recKeys(seen)) != fmt.Sprint(recKeys(wantMatch)) {
		t.Errorf("matches %v\nwant    %v", recKeys(seen), recKeys(wantMatch))
	}
	if fmt.Sprint(recKeys(included)) != fmt.Sprint(recKeys(wantInclude)) {
		t.Errorf("includes %v\nwant     %v", recKeys(included), recKeys(wantInclude))
	}
	if binary == "" || !included[binary] {
		t.Errorf("the document's Binary %q not included", binary)
	}
	// The same with a page size that holds all.
	all := walk("/Patient/" + pid + "/$everything")
	if len(all) != 1 || len(all[0].match) != len(wantMatch) {
		t.Errorf("one page: %d pages, %v", len(all), all)
	}
	// POST with Parameters.
	r := e.Do("POST", "/Patient/"+pid+"/$everything", `{"resourceType":"Parameters","parameter":[{"name":"_count","valueInteger":4}]}`)
	fxStatus(t, r, http.StatusOK)
	var pb fxBundle
	_ = json.Unmarshal(r.Body, &pb)
	nm := 0
	for _, en := range pb.Entry {
		if en.Search != nil && en.Search.Mode == "match" {
			nm++
		}
	}
	if nm != 4 || pb.next() == "" {
		t.Errorf("POST _count=4: %d matches, next %q", nm, pb.next())
	}

	// _type=DocumentReference: only the documents (the Patient is a type
	// like the others: not listed, not returned), and what they refer to.
	docs := walk("/Patient/" + pid + "/$everything?_type=DocumentReference")
	var dm []string
	dinc := map[string]bool{}
	for _, p := range docs {
		dm = append(dm, p.match...)
		for _, k := range p.include {
			dinc[k] = true
		}
	}
	if len(dm) != 5 {
		t.Errorf("_type=DocumentReference: matches %v, want the 5 documents", dm)
	}
	for _, k := range dm {
		if !strings.HasPrefix(k, "DocumentReference/") {
			t.Errorf("_type=DocumentReference returned %s", k)
		}
	}
	if !dinc[binary] {
		t.Errorf("_type=DocumentReference: includes %v lack the Binary", recKeys(dinc))
	}
	if got := walk("/Patient/" + pid + "/$everything?_type=Patient,Encounter"); len(got[0].match) != 3 || got[0].match[0] != "Patient/"+pid {
		t.Errorf("_type=Patient,Encounter: %v", got)
	}

	// _since: what changed since then (the Patient too is filtered).
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if got := walk("/Patient/" + pid + "/$everything?_since=" + url.QueryEscape(future)); len(got) != 1 || len(got[0].match)+len(got[0].include) != 0 {
		t.Errorf("_since in the future: %v, want nothing", got)
	}
	time.Sleep(5 * time.Millisecond)
	since := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(5 * time.Millisecond)
	var enc string
	for _, l := range locs {
		if strings.HasPrefix(l, "Encounter/") {
			enc = l
			break
		}
	}
	em := recRead(t, e, "Encounter", strings.TrimPrefix(enc, "Encounter/"))
	em["status"] = "cancelled"
	fxStatus(t, e.Do("PUT", "/"+enc, recJSON(t, em)), http.StatusOK)
	if got := walk("/Patient/" + pid + "/$everything?_since=" + url.QueryEscape(since)); len(got) != 1 || fmt.Sprint(got[0].match) != fmt.Sprint([]string{enc}) {
		t.Errorf("_since before one update: %v, want only %s", got, enc)
	}

	// Errors.
	fxOutcome(t, e.Do("GET", "/Patient/nosuch/$everything", ""), http.StatusNotFound)
	fxOutcome(t, e.Do("GET", "/Patient/"+pid+"/$everything?_cursor=xyz", ""), http.StatusBadRequest)
	fxOutcome(t, e.Do("GET", "/Patient/"+pid+"/$everything?_since=yesterday", ""), http.StatusBadRequest)
	fxOutcome(t, e.Do("GET", "/Patient/"+pid+"/$everything?_type=Nonsense", ""), http.StatusBadRequest)
	fxOutcome(t, e.Do("GET", "/Observation/"+pid+"/$everything", ""), http.StatusNotFound)
}

func recKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ---- 7. the prevention campaign query ----

// recActivity is one generated CarePlan activity.
type recActivity struct {
	code, status, start string
}

type recPlan struct {
	status, category string
	acts             []recActivity
}

func TestRecordCampaignQuery(t *testing.T) {
	e := newEnv(t)
	const (
		patients = 2000
		perTx    = 100 // patients per transaction: 200 entries
	)
	kinds := []string{"vaccination-dtp", "vaccination-grippe", "depistage-colorectal", "depistage-sein"}
	statuses := []string{"not-started", "scheduled", "in-progress", "on-hold", "completed", "cancelled", "stopped"}
	const K, D = "depistage-colorectal", "2027-06-30"
	rng := rand.New(rand.NewPCG(2026, 7))
	day0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	days := int(time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC).Sub(day0).Hours() / 24)

	plans := make([]recPlan, patients)
	for i := range plans {
		p := recPlan{status: "active", category: "prevention"}
		switch x := rng.IntN(100); {
		case x < 5:
			p.status = "completed"
		case x < 8:
			p.status = "draft"
		case x < 11:
			p.category = "suivi"
		}
		n := 2 + rng.IntN(2)
		for _, k := range rng.Perm(len(kinds))[:n] {
			start := day0.AddDate(0, 0, rng.IntN(days)).Format("2006-01-02")
			if rng.IntN(40) == 0 {
				start = D // the bound itself: le includes it
			}
			p.acts = append(p.acts, recActivity{kinds[k], statuses[rng.IntN(len(statuses))], start})
		}
		// Sometimes the kind K twice: one done, one open.
		if rng.IntN(20) == 0 {
			p.acts = append(p.acts, recActivity{K, "completed", "2026-02-01"})
		}
		plans[i] = p
	}
	open := map[string]bool{"not-started": true, "scheduled": true, "in-progress": true, "on-hold": true}

	cpJSON := func(p recPlan, subject string) string {
		var acts []any
		for _, a := range p.acts {
			acts = append(acts, map[string]any{"detail": map[string]any{
				"code":            map[string]any{"coding": []any{map[string]any{"system": recPrevAct, "code": a.code}}},
				"status":          a.status,
				"scheduledPeriod": map[string]any{"start": a.start},
			}})
		}
		return recJSON(t, map[string]any{
			"resourceType": "CarePlan", "status": p.status, "intent": "plan",
			"category": []any{map[string]any{"coding": []any{map[string]any{"system": recPrevCat, "code": p.category}}}},
			"subject":  map[string]any{"reference": subject},
			"activity": acts,
		})
	}

	t0 := time.Now()
	cpID := make([]string, patients)  // CarePlan id of plan i
	patID := make([]string, patients) // its Patient
	for lo := 0; lo < patients; lo += perTx {
		var entries []string
		for i := lo; i < min(lo+perTx, patients); i++ {
			pu := fmt.Sprintf("urn:uuid:00000000-0000-4000-8000-%012d", i)
			entries = append(entries,
				postEntry(pu, fmt.Sprintf(`{"resourceType":"Patient","name":[{"family":"Cohorte%d"}],"gender":"female","birthDate":"1970-01-01"}`, i)),
				postEntry(fmt.Sprintf("urn:uuid:10000000-0000-4000-8000-%012d", i), cpJSON(plans[i], pu)))
		}
		r := e.Do("POST", "", txBundle("transaction", entries...), "Prefer", "return=minimal")
		fxStatus(t, r, http.StatusOK)
		locs := recLocations(t, r)
		for j := 0; j < len(locs); j += 2 {
			i := lo + j/2
			patID[i] = strings.TrimPrefix(locs[j], "Patient/")
			cpID[i] = strings.TrimPrefix(locs[j+1], "CarePlan/")
		}
	}
	t.Logf("loaded %d patients and care plans in %v", patients, time.Since(t0))

	query := func(t *testing.T, K, D, token string) {
		want := map[string]string{} // CarePlan id -> Patient id
		atBound := 0                // open activities due on D itself (le includes D)
		for i, p := range plans {
			if p.status != "active" || p.category != "prevention" {
				continue
			}
			for _, a := range p.acts {
				if a.code == K && open[a.status] && a.start <= D {
					want[cpID[i]] = patID[i]
					if a.start == D {
						atBound++
					}
				}
			}
		}

		t1 := time.Now()
		q := url.Values{
			"category":     {recPrevCat + "|prevention"},
			"status":       {"active"},
			"due-activity": {token + "$le" + D},
			"_include":     {"CarePlan:subject"},
			"_count":       {"100"},
		}
		path := "/CarePlan?" + q.Encode()
		got := map[string]string{}
		pages := 0
		for path != "" {
			pages++
			if pages > 100 {
				t.Fatal("more than 100 pages")
			}
			b := fxGetBundle(t, e, path, "searchset")
			subjects, inc := map[string]bool{}, map[string]bool{}
			nm := 0
			for _, en := range b.Entry {
				var res struct {
					ResourceType, ID string
					Subject          struct{ Reference string }
				}
				if err := json.Unmarshal(en.Resource, &res); err != nil {
					t.Fatal(err)
				}
				mode := ""
				if en.Search != nil {
					mode = en.Search.Mode
				}
				switch {
				case res.ResourceType == "CarePlan" && mode == "match":
					nm++
					if _, dup := got[res.ID]; dup {
						t.Errorf("CarePlan/%s on two pages", res.ID)
					}
					got[res.ID] = strings.TrimPrefix(res.Subject.Reference, "Patient/")
					subjects[strings.TrimPrefix(res.Subject.Reference, "Patient/")] = true
				case res.ResourceType == "Patient" && mode == "include":
					if inc[res.ID] {
						t.Errorf("page %d: Patient/%s included twice", pages, res.ID)
					}
					inc[res.ID] = true
				default:
					t.Errorf("page %d: unexpected %s/%s mode %q", pages, res.ResourceType, res.ID, mode)
				}
			}
			if nm > 100 {
				t.Errorf("page %d: %d matches, _count=100", pages, nm)
			}
			if fmt.Sprint(recKeys(subjects)) != fmt.Sprint(recKeys(inc)) {
				t.Errorf("page %d: included Patients %d are not the %d subjects", pages, len(inc), len(subjects))
			}
			if *b.Total != len(want) {
				t.Errorf("page %d: total %d, want %d", pages, *b.Total, len(want))
			}
			path = b.next()
		}
		t.Logf("%d expected care plans out of %d, %d pages in %v", len(want), patients, pages, time.Since(t1))
		if D == "2027-06-30" && atBound == 0 {
			t.Errorf("no activity due on the bound itself: inclusivity not tested")
		}
		if len(want) < 20 || len(want) > patients/2 {
			t.Errorf("the cohort gives %d expected plans: not a useful test", len(want))
		}
		var missing, extra []string
		for id := range want {
			if _, ok := got[id]; !ok {
				missing = append(missing, id)
			}
		}
		for id, subj := range got {
			w, ok := want[id]
			if !ok {
				extra = append(extra, id)
			} else if subj != w {
				t.Errorf("CarePlan/%s subject %s, want %s", id, subj, w)
			}
		}
		if len(missing)+len(extra) > 0 {
			t.Errorf("%d expected plans missing (e.g. %v), %d unexpected (e.g. %v)", len(missing), recFirst(missing), len(extra), recFirst(extra))
			for _, id := range recFirst(extra) {
				for i := range cpID {
					if cpID[i] == id {
						t.Logf("unexpected %s: %+v", id, plans[i])
					}
				}
			}
			for _, id := range recFirst(missing) {
				for i := range cpID {
					if cpID[i] == id {
						t.Logf("missing %s: %+v", id, plans[i])
					}
				}
			}
		}
	}
	t.Run("colorectal screening due mid-2027", func(t *testing.T) { query(t, K, D, recPrevAct+"|"+K) })
	t.Run("flu vaccination due by March 2026, code only", func(t *testing.T) { query(t, "vaccination-grippe", "2026-03-15", "vaccination-grippe") })
}

func recFirst(s []string) []string {
	sort.Strings(s)
	return s[:min(3, len(s))]
}
