package rest_test

// The proof of medical secrecy (README "Medical secrecy (who may see
// what)"): one fixture world on the embedded engine, every requester kind
// (each professional in the three access modes, patient, representative,
// campaign tool, two integration engines, admin) against every read path
// over HTTP, asserting the exact visible set and that the rest is absent
// (hidden ≡ missing, counts included). The expected sets come from a small
// oracle (sxSees) written from the README's rules, independent of the
// policy code it checks.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/profiles"
	"github.com/dossier-fhir/dossier/store"
)

// ---- codes (DOMAIN.md, README) ----

const (
	sxConf      = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
	sxA07       = "urn:oid:1.2.250.1.213.1.1.4.13"
	sxLOINC     = "http://loinc.org"
	sxA05       = "urn:oid:1.2.250.1.213.1.1.4.12"
	sxDocType   = "https://dossier-fhir.github.io/fhir/CodeSystem/document-type"
	sxPurpose   = "https://dossier-fhir.github.io/fhir/CodeSystem/consent-purpose"
	sxActReason = "http://terminology.hl7.org/CodeSystem/v3-ActReason"

	tConsult    = sxLOINC + "|11488-4" // consultation report: every profession
	tChildCheck = sxLOINC + "|68817-6" // child prevention check: not the nurse; prevention
	tVaccNote   = sxLOINC + "|87273-9" // vaccination note: prevention
	tDelivery   = sxDocType + "|CR-ACCOUCHEMENT"
	tDirectives = sxA05 + "|EXPPAT_3"
	tUnknown    = sxLOINC + "|51851-4" // not in the matrix: médecins only
)

// sxLabelSys gives the system of a label code.
func sxLabelSys(code string) string {
	switch code {
	case "N", "R", "V":
		return sxConf
	}
	return sxA07
}

// ---- the world, as facts the oracle reads ----

type sxPro struct {
	key, rpps, profession string
	national              bool // identifier as the national PS id "8"+RPPS
}

var sxPros = []sxPro{
	{key: "gp", rpps: "10000000001", profession: "10"},
	{key: "nurse", rpps: "10000000002", profession: "60"},
	{key: "med", rpps: "10000000003", profession: "10"},
	{key: "blocked", rpps: "10000000004", profession: "10"},
	{key: "unrel", rpps: "10000000005", profession: "10"},
	{key: "podo", rpps: "10000000006", profession: "80"},
	{key: "dent", rpps: "10000000007", profession: "40", national: true},
}

// Record facts (written as Patient.generalPractitioner and Consents).
var (
	sxGP      = map[string]string{"pa": "gp"}
	sxPermit  = map[string][]string{"pa": {"nurse", "med", "podo", "dent"}, "pb": {"nurse"}}
	sxBlock   = map[string][]string{"pa": {"blocked"}}
	sxRefuse  = map[string][]string{"pa": {"BTG"}} // emergency refusals (purpose)
	sxMasked  = []string{"pb"}                     // allow masked documents in an emergency
	sxObjects = []string{"pb"}                     // objected to prevention campaigns
)

// sxMaskedForAuthorisedInEmergency: the README says that in an emergency
// "masked documents [are shown] only where the patient allowed them (a
// permit with purpose MASKED)", without exception for a professional who
// also holds an ordinary authorisation to the record; the policy shows
// them only to professionals reached through the emergency. This is the
// README's reading; set it to false for the policy's.
const sxMaskedForAuthorisedInEmergency = true

// sxRes is one fixture resource.
type sxRes struct {
	typ, id, patient string
	labels           []string // DocumentReference.securityLabel codes
	meta             []string // meta.security codes
	docType          string
	author           string // practitioner key
	org              string // writing engine
	prevention       bool   // CarePlan category prevention
	actor            string // Consent: the practitioner key named
	context          string // Binary: DocumentReference id
	attach           string // DocumentReference: attachment.url Binary/<attach>
	date             string
	body             string
}

func (x *sxRes) ref() string { return x.typ + "/" + x.id }

func (x *sxRes) has(code string) bool {
	return slices.Contains(x.labels, code) || slices.Contains(x.meta, code)
}

// ---- the oracle: the README's rules ----

func sxMatrixAllows(profession, docType string) bool {
	known := []string{tConsult, tChildCheck, tVaccNote, tDelivery, tDirectives}
	if !slices.Contains(known, docType) {
		return profession == "10" // unknown types: médecins only
	}
	denied := map[string][]string{"60": {tChildCheck}, "80": {tDelivery}, "40": {tDirectives}}
	return !slices.Contains(denied[profession], docType)
}

func sxPrevention(docType string) bool {
	return slices.Contains([]string{sxLOINC + "|87273-9", sxLOINC + "|11369-6", sxLOINC + "|96173-0", sxLOINC + "|68817-6", sxLOINC + "|75492-9"}, docType)
}

// sxRq is a requester.
type sxRq struct {
	name, kind         string // pro, patient, rep, campaign, integration, admin
	pro, profession    string
	mode, patient, org string
	tok                string
}

func (rq *sxRq) emergency() bool { return rq.kind == "pro" && rq.mode != access.ModeNormal }

func (w *sxWorld) sees(rq *sxRq, x *sxRes) bool {
	switch x.typ {
	case "Practitioner":
		return rq.kind != "campaign"
	case "Patient":
		switch rq.kind {
		case "pro":
			return !slices.Contains(sxBlock[x.id], rq.pro)
		case "patient", "rep":
			return x.id == rq.patient
		case "campaign":
			return !slices.Contains(sxObjects, x.id)
		}
		return true
	case "Binary":
		if rq.kind == "integration" {
			return x.org == rq.org
		}
		return w.sees(rq, w.byRef["DocumentReference/"+x.context])
	}
	switch rq.kind {
	case "admin":
		return false
	case "integration":
		return x.org == rq.org
	case "patient":
		return x.patient == rq.patient && !x.has("INVISIBLE_PATIENT")
	case "rep":
		return x.patient == rq.patient && !x.has("INVISIBLE_PATIENT") && !x.has("INVISIBLE_REPRESENTANTS_LEGAUX") && !x.has("V")
	case "campaign":
		if slices.Contains(sxObjects, x.patient) {
			return false
		}
		switch x.typ {
		case "CarePlan":
			return x.prevention
		case "DocumentReference":
			for _, l := range []string{"R", "V", "MASQUE_PS", "INVISIBLE_PATIENT", "INVISIBLE_REPRESENTANTS_LEGAUX"} {
				if x.has(l) {
					return false
				}
			}
			return sxPrevention(x.docType)
		}
		return false
	case "pro":
		if slices.Contains(sxBlock[x.patient], rq.pro) {
			return false
		}
		if x.typ == "Consent" {
			return sxGP[x.patient] == rq.pro || x.actor == rq.pro
		}
		if sxGP[x.patient] == rq.pro {
			return true
		}
		if x.typ == "DocumentReference" && x.author == rq.pro {
			return true
		}
		refused := false
		for _, p := range sxRefuse[x.patient] {
			refused = refused || (p == "BTG" && rq.mode == access.ModeBrisDeGlace) || (p == "ETREAT" && rq.mode == access.ModeCentre15)
		}
		authorised := slices.Contains(sxPermit[x.patient], rq.pro) || (rq.emergency() && !refused)
		if !authorised || x.has("V") {
			return false
		}
		emergencyMasked := rq.emergency() && slices.Contains(sxMasked, x.patient)
		if !sxMaskedForAuthorisedInEmergency && slices.Contains(sxPermit[x.patient], rq.pro) {
			emergencyMasked = false
		}
		if x.has("MASQUE_PS") && !emergencyMasked {
			return false
		}
		if x.typ == "DocumentReference" && !sxMatrixAllows(rq.profession, x.docType) {
			return false
		}
		return true
	}
	return false
}

// ---- building the world ----

type sxWorld struct {
	e     *env
	res   []*sxRes
	byRef map[string]*sxRes
	org1  string
	org2  string
	rqs   []*sxRq
}

func sxCoding(sc string) string {
	i := strings.LastIndexByte(sc, '|')
	return fmt.Sprintf(`{"system":%q,"code":%q}`, sc[:i], sc[i+1:])
}

func sxLabels(codes []string) string {
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf(`{"coding":[%s]}`, sxCoding(sxLabelSys(c)+"|"+c)))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func sxMeta(codes []string) string {
	if len(codes) == 0 {
		return ""
	}
	var parts []string
	for _, c := range codes {
		parts = append(parts, sxCoding(sxLabelSys(c)+"|"+c))
	}
	return `"meta":{"security":[` + strings.Join(parts, ",") + `]},`
}

func sxDocJSON(x *sxRes) string {
	labels := ""
	if len(x.labels) > 0 {
		labels = `"securityLabel":` + sxLabels(x.labels) + `,`
	}
	att := `"data":"aGVsbG8="`
	if x.attach != "" {
		att = fmt.Sprintf(`"url":"Binary/%s"`, x.attach)
	}
	return fmt.Sprintf(`{"resourceType":"DocumentReference","id":%q,%s"status":"current",
		"type":{"coding":[%s]},"category":[{"coding":[{"system":"urn:oid:1.2.250.1.213.1.1.4.1","code":"10"}]}],
		"subject":{"reference":"Patient/%s"},"date":%q,"author":[{"reference":"Practitioner/pr-%s"}],%s
		"description":"fixture %s",
		"content":[{"attachment":{"contentType":"text/plain",%s}}]}`,
		x.id, sxMeta(x.meta), sxCoding(x.docType), x.patient, x.date, x.author, labels, x.id, att)
}

func sxConsentJSON(id, patient, typ, actor, purpose string) string {
	prov := fmt.Sprintf(`"type":%q`, typ)
	if actor != "" {
		prov += fmt.Sprintf(`,"actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"PRCP"}]},"reference":{"reference":"Practitioner/pr-%s"}}]`, actor)
	}
	if purpose != "" {
		prov += `,"purpose":[` + sxCoding(purpose) + `]`
	}
	idPart := ""
	if id != "" {
		idPart = fmt.Sprintf(`"id":%q,`, id)
	}
	return fmt.Sprintf(`{"resourceType":"Consent",%s"status":"active",
		"scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},
		"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],
		"patient":{"reference":"Patient/%s"},"provision":{%s}}`, idPart, patient, prov)
}

func newSecrecyWorld(t *testing.T) *sxWorld {
	t.Helper()
	matrix, err := access.LoadMatrix(profiles.FS, "access-matrix.json")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, setup{policy: func(st store.Store) access.Policy {
		clinical := func(typ string) bool { return typ != "Patient" && len(registry.OwnerParam(typ)) > 0 }
		return access.NewDMP(st, matrix, clinical)
	}})
	w := &sxWorld{e: e, byRef: map[string]*sxRes{}}
	w.org1 = e.token
	w.org2 = e.Token(access.Claims{Role: "integration", Org: "org2", Subject: "engine-2"})

	add := func(x *sxRes) {
		if x.org == "" {
			x.org = "org1"
		}
		w.res = append(w.res, x)
		w.byRef[x.ref()] = x
	}
	for _, p := range sxPros {
		ident := fmt.Sprintf(`{"system":"https://rpps.esante.gouv.fr","value":%q}`, p.rpps)
		if p.national {
			ident = fmt.Sprintf(`{"system":"urn:oid:1.2.250.1.71.4.2.1","value":"8%s"}`, p.rpps)
		}
		add(&sxRes{typ: "Practitioner", id: "pr-" + p.key, body: fmt.Sprintf(
			`{"resourceType":"Practitioner","id":"pr-%s","identifier":[%s],"name":[{"family":"Doc-%s"}]}`, p.key, ident, p.key)})
	}
	add(&sxRes{typ: "Patient", id: "pa", body: `{"resourceType":"Patient","id":"pa",
		"identifier":[{"system":"urn:oid:1.2.250.1.213.1.4.10","value":"212037512345678"}],
		"name":[{"family":"Martin","given":["Alice"]}],"gender":"female","birthDate":"2012-03-04",
		"maritalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus","code":"U"}]},
		"generalPractitioner":[{"reference":"Practitioner/pr-gp"}]}`})
	add(&sxRes{typ: "Patient", id: "pb", body: `{"resourceType":"Patient","id":"pb",
		"identifier":[{"system":"urn:oid:1.2.250.1.213.1.4.10","value":"180017512345612"}],
		"name":[{"family":"Durand","given":["Bruno"]}],"gender":"male","birthDate":"1980-01-01"}`})

	// Consents, in the README's shapes.
	for _, pat := range []string{"pa", "pb"} {
		for _, k := range sxPermit[pat] {
			add(&sxRes{typ: "Consent", id: "c-" + pat + "-permit-" + k, patient: pat, actor: k})
		}
		for _, k := range sxBlock[pat] {
			add(&sxRes{typ: "Consent", id: "c-" + pat + "-deny-" + k, patient: pat, actor: k})
		}
		for _, p := range sxRefuse[pat] {
			add(&sxRes{typ: "Consent", id: "c-" + pat + "-refuse-" + strings.ToLower(p), patient: pat,
				body: sxConsentJSON("c-"+pat+"-refuse-"+strings.ToLower(p), pat, "deny", "", sxActReason+"|"+p)})
		}
		if slices.Contains(sxMasked, pat) {
			add(&sxRes{typ: "Consent", id: "c-" + pat + "-masked", patient: pat,
				body: sxConsentJSON("c-"+pat+"-masked", pat, "permit", "", sxPurpose+"|MASKED")})
		}
		if slices.Contains(sxObjects, pat) {
			add(&sxRes{typ: "Consent", id: "c-" + pat + "-campaign", patient: pat,
				body: sxConsentJSON("c-"+pat+"-campaign", pat, "deny", "", sxPurpose+"|CAMPAIGN")})
		}
	}
	for _, x := range w.res {
		if x.typ == "Consent" && x.body == "" {
			kind := "permit"
			if strings.Contains(x.id, "-deny-") {
				kind = "deny"
			}
			x.body = sxConsentJSON(x.id, x.patient, kind, x.actor, "")
		}
	}

	// The Binary of a-masked (stored first: a-n's attachment names it
	// too, a visible document pointing at a hidden Binary).
	add(&sxRes{typ: "Binary", id: "bin", context: "a-masked", body: `{"resourceType":"Binary","id":"bin","contentType":"text/plain",
		"securityContext":{"reference":"DocumentReference/a-masked"},"data":"c2VjcmV0"}`})

	// Documents.
	day := 0
	doc := func(id, patient, docType, author string, labels, meta []string) *sxRes {
		day++
		x := &sxRes{typ: "DocumentReference", id: id, patient: patient, docType: docType, author: author,
			labels: labels, meta: meta, date: fmt.Sprintf("2024-01-%02dT10:00:00Z", 29-day)}
		add(x)
		return x
	}
	doc("a-none", "pa", tConsult, "gp", nil, nil)
	doc("a-n", "pa", tConsult, "gp", []string{"N"}, nil).attach = "bin"
	doc("a-r", "pa", tConsult, "gp", []string{"N", "R"}, nil)
	doc("a-v", "pa", tConsult, "gp", []string{"V"}, nil)
	doc("a-masked", "pa", tConsult, "gp", []string{"N", "MASQUE_PS"}, nil)
	doc("a-metamasked", "pa", tConsult, "gp", []string{"N"}, []string{"MASQUE_PS"})
	doc("a-invp", "pa", tConsult, "gp", []string{"N", "INVISIBLE_PATIENT"}, nil)
	doc("a-invr", "pa", tConsult, "gp", []string{"N", "INVISIBLE_REPRESENTANTS_LEGAUX"}, nil)
	doc("a-child", "pa", tChildCheck, "gp", []string{"N"}, nil)
	doc("a-delivery", "pa", tDelivery, "gp", []string{"N"}, nil)
	doc("a-directives", "pa", tDirectives, "gp", []string{"N"}, nil)
	doc("a-unknown", "pa", tUnknown, "gp", []string{"N"}, nil)
	doc("a-byunrel", "pa", tConsult, "unrel", []string{"N", "MASQUE_PS"}, nil)
	doc("a-vacc", "pa", tVaccNote, "gp", []string{"N"}, nil)
	doc("a-vacc-r", "pa", tVaccNote, "gp", []string{"N", "R"}, nil)
	doc("a-org2", "pa", tConsult, "gp", []string{"N"}, nil).org = "org2"
	doc("b-n", "pb", tConsult, "med", []string{"N"}, nil)
	doc("b-masked", "pb", tConsult, "med", []string{"N", "MASQUE_PS"}, nil)
	doc("b-v", "pb", tConsult, "med", []string{"V"}, nil)
	doc("b-vacc", "pb", tVaccNote, "med", []string{"N"}, nil)
	for _, x := range w.res {
		if x.typ == "DocumentReference" {
			x.body = sxDocJSON(x)
		}
	}

	// Other clinical content.
	carePlan := func(id, patient string, prevention bool) {
		cat := `{"system":"http://snomed.info/sct","code":"736271009"}`
		if prevention {
			cat = `{"system":"https://dossier-fhir.github.io/fhir/CodeSystem/careplan-category","code":"prevention"}`
		}
		add(&sxRes{typ: "CarePlan", id: id, patient: patient, prevention: prevention, body: fmt.Sprintf(
			`{"resourceType":"CarePlan","id":%q,"status":"active","intent":"plan","subject":{"reference":"Patient/%s"},"category":[{"coding":[%s]}]}`,
			id, patient, cat)})
	}
	carePlan("cp-a-prev", "pa", true)
	carePlan("cp-a-other", "pa", false)
	carePlan("cp-b-prev", "pb", true)
	obs := func(id, patient string, meta []string) {
		add(&sxRes{typ: "Observation", id: id, patient: patient, meta: meta, body: fmt.Sprintf(
			`{"resourceType":"Observation","id":%q,%s"status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/%s"},"valueQuantity":{"value":72,"unit":"/min"}}`,
			id, sxMeta(meta), patient)})
	}
	obs("obs-a", "pa", nil)
	obs("obs-a-masked", "pa", []string{"MASQUE_PS"})
	obs("obs-b-v", "pb", []string{"V"})
	add(&sxRes{typ: "Encounter", id: "enc-a", patient: "pa", body: `{"resourceType":"Encounter","id":"enc-a","status":"finished",
		"class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"Patient/pa"}}`})

	// Store everything (update as create, client ids).
	for _, x := range w.res {
		tok := w.org1
		if x.org == "org2" {
			tok = w.org2
		}
		r := sxDo(t, e, tok, "PUT", "/"+x.ref(), x.body)
		if r.Status != http.StatusCreated {
			t.Fatalf("fixture PUT %s: %d %.600s", x.ref(), r.Status, r.Body)
		}
	}

	// Requesters.
	for _, p := range sxPros {
		for _, mode := range []string{access.ModeNormal, access.ModeBrisDeGlace, access.ModeCentre15} {
			w.rqs = append(w.rqs, &sxRq{name: p.key + "/" + mode, kind: "pro", pro: p.key, profession: p.profession, mode: mode,
				tok: e.Token(access.Claims{Role: "professional", RPPS: p.rpps, Profession: p.profession, Mode: mode, Subject: "ps-" + p.key})})
		}
	}
	w.rqs = append(w.rqs,
		&sxRq{name: "patient-pa", kind: "patient", patient: "pa", tok: e.Token(access.Claims{Role: "patient", Patient: "pa", Subject: "alice"})},
		&sxRq{name: "patient-pb", kind: "patient", patient: "pb", tok: e.Token(access.Claims{Role: "patient", Patient: "pb", Subject: "bruno"})},
		&sxRq{name: "representative-pa", kind: "rep", patient: "pa", tok: e.Token(access.Claims{Role: "representative", Patient: "pa", Subject: "alice-mother"})},
		&sxRq{name: "campaign", kind: "campaign", tok: e.Token(access.Claims{Role: "campaign", Subject: "campaign-tool"})},
		&sxRq{name: "integration-org1", kind: "integration", org: "org1", tok: w.org1},
		&sxRq{name: "integration-org2", kind: "integration", org: "org2", tok: w.org2},
		&sxRq{name: "admin", kind: "admin", tok: e.Token(access.Claims{Role: "admin", Subject: "host-admin"})},
	)
	return w
}

func (w *sxWorld) rq(name string) *sxRq {
	for _, r := range w.rqs {
		if r.name == name {
			return r
		}
	}
	panic("no requester " + name)
}

// ---- HTTP ----

var sxClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 60 * time.Second}

// sxDo sends a request with tok (safe in parallel subtests: it fails t,
// not the env's test).
func sxDo(t testing.TB, e *env, tok, method, path, body string, headers ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := sxClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// sxBundle reads a Bundle's entries as "Type/id" by search mode.
type sxParsed struct {
	total   *int
	matches []string
	include []string
	all     []string
}

func sxReadBundle(t testing.TB, r resp, what string) sxParsed {
	t.Helper()
	return sxReadPage(t, r, what, false)
}

// sxReadPage is sxReadBundle; paged allows a next link.
func sxReadPage(t testing.TB, r resp, what string, paged bool) sxParsed {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("%s: status %d: %.600s", what, r.Status, r.Body)
	}
	var b struct {
		ResourceType string `json:"resourceType"`
		Total        *int   `json:"total"`
		Link         []struct{ Relation, URL string }
		Entry        []struct {
			Resource struct {
				ResourceType string `json:"resourceType"`
				ID           string `json:"id"`
			} `json:"resource"`
			Request *struct {
				URL string `json:"url"`
			} `json:"request"`
			Search *struct {
				Mode string `json:"mode"`
			} `json:"search"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil || b.ResourceType != "Bundle" {
		t.Fatalf("%s: not a Bundle (%v): %.300s", what, err, r.Body)
	}
	for _, l := range b.Link {
		if l.Relation == "next" && !paged {
			t.Fatalf("%s: paged (raise _count)", what)
		}
	}
	var p sxParsed
	p.total = b.Total
	for _, en := range b.Entry {
		ref := en.Resource.ResourceType + "/" + en.Resource.ID
		if en.Resource.ResourceType == "" && en.Request != nil { // history delete markers
			ref = en.Request.URL
		}
		if en.Resource.ResourceType == "OperationOutcome" {
			continue
		}
		p.all = append(p.all, ref)
		if en.Search != nil && en.Search.Mode == "include" {
			p.include = append(p.include, ref)
		} else {
			p.matches = append(p.matches, ref)
		}
	}
	return p
}

// sxSameSet reports the difference of two sets of references.
func sxSameSet(t testing.TB, what string, want, got []string) {
	t.Helper()
	w, g := slices.Clone(want), slices.Clone(got)
	sort.Strings(w)
	sort.Strings(g)
	if slices.Equal(w, g) {
		return
	}
	var missing, extra []string
	for _, x := range w {
		if !slices.Contains(g, x) {
			missing = append(missing, x)
		}
	}
	for _, x := range g {
		if !slices.Contains(w, x) {
			extra = append(extra, x)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		t.Errorf("%s: duplicates: got %v, want %v", what, g, w)
		return
	}
	t.Errorf("%s: not seen but should be %v; seen but should be hidden %v", what, missing, extra)
}

// sxAsMissing checks that the answer about a hidden id is the answer about
// a missing one (status and body, the id aside) and not a success.
func sxAsMissing(t testing.TB, what string, got, missing resp, id, missingID string) {
	t.Helper()
	if got.Status < 300 || got.Status == http.StatusNotModified {
		t.Errorf("%s: hidden resource answered %d: %.300s", what, got.Status, got.Body)
		return
	}
	wantBody := bytes.ReplaceAll(missing.Body, []byte(missingID), []byte(id))
	if got.Status != missing.Status || !bytes.Equal(got.Body, wantBody) {
		t.Errorf("%s: hidden answered %d %s; a missing id answers %d %s", what, got.Status, got.Body, missing.Status, wantBody)
	}
}

const sxMissingID = "zz-missing-0"

func sxTotal(p *int) string {
	if p == nil {
		return "absent"
	}
	return fmt.Sprint(*p)
}

// ---- the read table ----

func (w *sxWorld) visible(rq *sxRq, filter func(*sxRes) bool) []string {
	var out []string
	for _, x := range w.res {
		if filter(x) && w.sees(rq, x) {
			out = append(out, x.ref())
		}
	}
	return out
}

func (w *sxWorld) checkReads(t *testing.T, rq *sxRq) {
	e := w.e
	do := func(method, path, body string, h ...string) resp {
		t.Helper()
		return sxDo(t, e, rq.tok, method, path, body, h...)
	}
	missing := map[string]resp{}
	missingOf := func(kind, path string) resp {
		if r, ok := missing[kind+" "+path]; ok {
			return r
		}
		var r resp
		switch kind {
		case "inm":
			r = do("GET", path, "", "If-None-Match", `W/"1"`)
		default:
			r = do("GET", path, "")
		}
		missing[kind+" "+path] = r
		return r
	}

	// Read, vread, instance history, If-None-Match: every fixture resource.
	for _, x := range w.res {
		seen := w.sees(rq, x)
		acc := ""
		if x.typ == "Binary" {
			acc = "application/fhir+json"
		}
		paths := []struct{ kind, path, missing string }{
			{"read", "/" + x.ref(), "/" + x.typ + "/" + sxMissingID},
			{"vread", "/" + x.ref() + "/_history/1", "/" + x.typ + "/" + sxMissingID + "/_history/1"},
			{"history", "/" + x.ref() + "/_history", "/" + x.typ + "/" + sxMissingID + "/_history"},
		}
		for _, p := range paths {
			var r resp
			if acc != "" && p.kind != "history" {
				r = do("GET", p.path, "", "Accept", acc)
			} else {
				r = do("GET", p.path, "")
			}
			what := fmt.Sprintf("%s %s", p.kind, x.ref())
			if seen {
				if r.Status != http.StatusOK {
					t.Errorf("%s: visible resource answered %d: %.300s", what, r.Status, r.Body)
					continue
				}
				if p.kind == "history" {
					b := sxReadBundle(t, r, what)
					if len(b.all) != 1 {
						t.Errorf("%s: %d versions, want 1", what, len(b.all))
					}
				} else if !bytes.Contains(r.Body, []byte(`"id":"`+x.id+`"`)) {
					t.Errorf("%s: body is not the resource: %.200s", what, r.Body)
				}
				if rq.kind == "campaign" && x.typ == "Patient" && p.kind != "history" {
					if bytes.Contains(r.Body, []byte("maritalStatus")) || !bytes.Contains(r.Body, []byte("SUBSETTED")) {
						t.Errorf("%s: the campaign tool gets more than the minimal view: %s", what, r.Body)
					}
				}
			} else {
				mr := missingOf(p.kind, p.missing)
				if acc != "" && p.kind != "history" {
					mr = do("GET", p.missing, "", "Accept", acc)
				}
				sxAsMissing(t, what, r, mr, x.id, sxMissingID)
			}
		}
		if x.typ == "DocumentReference" || x.typ == "Observation" {
			r := do("GET", "/"+x.ref(), "", "If-None-Match", `W/"1"`)
			what := "If-None-Match " + x.ref()
			if seen {
				if r.Status != http.StatusNotModified {
					t.Errorf("%s: visible resource answered %d, want 304", what, r.Status)
				}
			} else {
				sxAsMissing(t, what, r, missingOf("inm", "/"+x.typ+"/"+sxMissingID), x.id, sxMissingID)
			}
		}
	}

	docsOf := func(pat string) func(*sxRes) bool {
		return func(x *sxRes) bool { return x.typ == "DocumentReference" && (pat == "" || x.patient == pat) }
	}
	paSeen := w.sees(rq, w.byRef["Patient/pa"])

	// Searches: exact sets and totals.
	search := func(path string, want []string) sxParsed {
		t.Helper()
		b := sxReadBundle(t, do("GET", path, ""), path)
		sxSameSet(t, "GET "+path, want, b.matches)
		if b.total == nil || *b.total != len(want) {
			t.Errorf("GET %s: total %s, want %d", path, sxTotal(b.total), len(want))
		}
		return b
	}
	for _, pat := range []string{"pa", "pb"} {
		want := w.visible(rq, docsOf(pat))
		search("/DocumentReference?patient="+pat+"&_count=500", want)
		c := sxReadBundle(t, do("GET", "/DocumentReference?patient="+pat+"&_summary=count", ""), "count")
		if c.total == nil || *c.total != len(want) || len(c.all) != 0 {
			t.Errorf("DocumentReference?patient=%s&_summary=count: total %s (%d entries), want %d", pat, sxTotal(c.total), len(c.all), len(want))
		}
		for _, typ := range []string{"CarePlan", "Observation", "Encounter", "Consent"} {
			search("/"+typ+"?patient="+pat+"&_count=500",
				w.visible(rq, func(x *sxRes) bool { return x.typ == typ && x.patient == pat }))
		}
	}
	search("/DocumentReference?_count=500", w.visible(rq, docsOf("")))
	search("/Patient?_count=500", w.visible(rq, func(x *sxRes) bool { return x.typ == "Patient" }))
	search("/Practitioner?_count=500", w.visible(rq, func(x *sxRes) bool { return x.typ == "Practitioner" }))
	// A Binary search finds nothing, except for the engine that wrote it.
	search("/Binary?_count=500", w.visible(rq, func(x *sxRes) bool { return x.typ == "Binary" && rq.kind == "integration" }))
	// A label search is a search: it finds only what is visible.
	search("/DocumentReference?security-label="+url.QueryEscape(sxA07+"|MASQUE_PS")+"&_count=500",
		w.visible(rq, func(x *sxRes) bool { return x.typ == "DocumentReference" && slices.Contains(x.labels, "MASQUE_PS") }))

	// _sort: the visible documents in date order.
	{
		want := w.visible(rq, docsOf("pa"))
		sort.Slice(want, func(i, j int) bool { return w.byRef[want[i]].date < w.byRef[want[j]].date })
		b := sxReadBundle(t, do("GET", "/DocumentReference?patient=pa&_sort=date&_count=500", ""), "_sort")
		if !slices.Equal(b.matches, want) {
			t.Errorf("_sort=date: got %v, want %v", b.matches, want)
		}
		b = sxReadPage(t, do("GET", "/DocumentReference?patient=pa&_sort=-date&_count=3", ""), "_sort desc", true)
		slices.Reverse(want)
		if len(want) > 3 {
			want = want[:3]
		}
		if !slices.Equal(b.matches, want) {
			t.Errorf("_sort=-date&_count=3: got %v, want %v", b.matches, want)
		}
	}

	// _revinclude / _include: a hidden document is never included, a
	// hidden Patient never included nor matched.
	{
		path := "/Patient?_id=pa&_revinclude=DocumentReference:subject&_count=500"
		b := sxReadBundle(t, do("GET", path, ""), path)
		var wantM, wantI []string
		if paSeen {
			wantM = []string{"Patient/pa"}
			wantI = w.visible(rq, docsOf("pa"))
		}
		sxSameSet(t, path+" (matches)", wantM, b.matches)
		sxSameSet(t, path+" (included)", wantI, b.include)

		path = "/DocumentReference?patient=pa&_include=DocumentReference:subject&_include=DocumentReference:author&_count=500"
		b = sxReadBundle(t, do("GET", path, ""), path)
		docs := w.visible(rq, docsOf("pa"))
		sxSameSet(t, path+" (matches)", docs, b.matches)
		wantI = nil
		for _, d := range docs {
			for _, ref := range []string{"Patient/pa", "Practitioner/pr-" + w.byRef[d].author} {
				if w.sees(rq, w.byRef[ref]) && !slices.Contains(wantI, ref) {
					wantI = append(wantI, ref)
				}
			}
		}
		sxSameSet(t, path+" (included)", wantI, b.include)
	}

	// Chain and _has: hidden resources decide nothing.
	{
		var want []string
		if paSeen {
			want = w.visible(rq, docsOf("pa"))
		}
		search("/DocumentReference?subject:Patient.name=Martin&_count=500", want)
		for _, label := range []string{"MASQUE_PS", "V", "INVISIBLE_PATIENT"} {
			var wantP []string
			for _, pat := range []string{"pa", "pb"} {
				if !w.sees(rq, w.byRef["Patient/"+pat]) {
					continue
				}
				if len(w.visible(rq, func(x *sxRes) bool {
					return x.typ == "DocumentReference" && x.patient == pat && slices.Contains(x.labels, label)
				})) > 0 {
					wantP = append(wantP, "Patient/"+pat)
				}
			}
			search("/Patient?_has:DocumentReference:subject:security-label="+url.QueryEscape(sxLabelSys(label)+"|"+label), wantP)
		}
	}

	// Type history: no hidden version.
	{
		path := "/DocumentReference/_history?_count=500"
		b := sxReadBundle(t, do("GET", path, ""), path)
		want := w.visible(rq, docsOf(""))
		sxSameSet(t, path, want, b.all)
		if b.total != nil && *b.total != len(want) {
			t.Errorf("%s: total %d, want %d (or none)", path, *b.total, len(want))
		}
	}

	// $everything: the visible record, nothing hidden included.
	for _, pat := range []string{"pa", "pb"} {
		path := "/Patient/" + pat + "/$everything?_count=1000"
		r := do("GET", path, "")
		if !w.sees(rq, w.byRef["Patient/"+pat]) {
			sxAsMissing(t, path, r, do("GET", "/Patient/"+sxMissingID+"/$everything?_count=1000", ""), pat, sxMissingID)
			continue
		}
		b := sxReadBundle(t, r, path)
		want := w.visible(rq, func(x *sxRes) bool { return x.patient == pat || x.ref() == "Patient/"+pat })
		sxSameSet(t, path+" (matches)", want, b.matches)
		for _, ref := range b.include {
			if x := w.byRef[ref]; x == nil || !w.sees(rq, x) {
				t.Errorf("%s: includes %s, which is hidden", path, ref)
			}
		}
		if pat == "pa" && w.sees(rq, w.byRef["DocumentReference/a-n"]) && w.sees(rq, w.byRef["Binary/bin"]) && !slices.Contains(b.include, "Binary/bin") {
			t.Errorf("%s: the visible Binary/bin of the visible a-n is not included: %v", path, b.include)
		}
	}
}

// checkHiddenWrites: PATCH/PUT/DELETE on hidden resources answer as on
// missing ones and change nothing.
func (w *sxWorld) checkHiddenWrites(t *testing.T, rq *sxRq) {
	e := w.e
	do := func(method, path, body string, h ...string) resp {
		t.Helper()
		return sxDo(t, e, rq.tok, method, path, body, h...)
	}
	patch := `[{"op":"replace","path":"/status","value":"entered-in-error"}]`
	missing := map[string]resp{}
	missingOf := func(method, typ string) resp {
		if r, ok := missing[method+typ]; ok {
			return r
		}
		mpath := "/" + typ + "/" + sxMissingID
		var r resp
		switch method {
		case "PATCH":
			r = do("PATCH", mpath, patch, "Content-Type", "application/json-patch+json")
		case "DELETE":
			r = do("DELETE", mpath, "")
		case "PUT": // would create: an empty body tells a refusal by role
			r = do("PUT", mpath, "{}")
		}
		missing[method+typ] = r
		return r
	}
	for _, x := range w.res {
		if w.sees(rq, x) || x.patient == "" {
			continue
		}
		r := do("PATCH", "/"+x.ref(), patch, "Content-Type", "application/json-patch+json")
		sxAsMissing(t, "PATCH "+x.ref(), r, missingOf("PATCH", x.typ), x.id, sxMissingID)
		r = do("DELETE", "/"+x.ref(), "")
		sxAsMissing(t, "DELETE "+x.ref(), r, missingOf("DELETE", x.typ), x.id, sxMissingID)
		// PUT: a refusal by role (403) is the same for every id; a write
		// that reaches the record finds the hidden one "not known".
		body := strings.Replace(x.body, `"status":"`, `"language":"fr","status":"`, 1)
		r = do("PUT", "/"+x.ref(), body)
		if probe := missingOf("PUT", x.typ); probe.Status == http.StatusForbidden {
			sxAsMissing(t, "PUT "+x.ref(), r, probe, x.id, sxMissingID)
		} else if r.Status != http.StatusNotFound || !bytes.Contains(r.Body, []byte(x.ref()+" is not known")) {
			t.Errorf("PUT %s (hidden): %d %.300s, want 404 %q", x.ref(), r.Status, r.Body, x.ref()+" is not known")
		}
	}
	// Conditional delete and update whose criteria match only hidden
	// resources: nothing deleted, nothing updated.
	var hiddenDocs []*sxRes
	for _, x := range w.res {
		if x.typ == "DocumentReference" && !w.sees(rq, x) {
			hiddenDocs = append(hiddenDocs, x)
		}
	}
	if len(hiddenDocs) > 0 {
		x := hiddenDocs[0]
		r := do("DELETE", "/DocumentReference?_id="+x.id, "")
		if r.Status != http.StatusNoContent && r.Status != http.StatusOK && r.Status != http.StatusForbidden && r.Status != http.StatusNotFound {
			t.Errorf("conditional DELETE ?_id=%s (hidden): %d %.300s", x.id, r.Status, r.Body)
		}
		r = do("PUT", "/DocumentReference?_id="+x.id, strings.Replace(x.body, `"status":"`, `"language":"fr","status":"`, 1))
		if r.Status < 300 {
			t.Errorf("conditional PUT ?_id=%s (hidden, id in body) answered %d: it reached the hidden resource: %.300s", x.id, r.Status, r.Body)
		}
	}
}

// checkUnchanged: after the probes every fixture resource is still at
// version 1 (read as the engine that wrote it).
func (w *sxWorld) checkUnchanged(t *testing.T) {
	for _, x := range w.res {
		tok := w.org1
		if x.org == "org2" {
			tok = w.org2
		}
		r := sxDo(t, w.e, tok, "GET", "/"+x.ref()+"/_history", "")
		b := sxReadBundle(t, r, "history "+x.ref())
		if len(b.all) != 1 {
			t.Errorf("%s has %d versions after writes on hidden resources: %.500s", x.ref(), len(b.all), r.Body)
		}
	}
}

func TestSecrecyReads(t *testing.T) {
	start := time.Now()
	w := newSecrecyWorld(t)
	t.Logf("world: %d resources in %v", len(w.res), time.Since(start))
	t.Run("reads", func(t *testing.T) {
		for _, rq := range w.rqs {
			t.Run(rq.name, func(t *testing.T) {
				t.Parallel()
				w.checkReads(t, rq)
			})
		}
	})
	t.Run("hidden-writes", func(t *testing.T) {
		for _, rq := range w.rqs {
			t.Run(rq.name, func(t *testing.T) {
				t.Parallel()
				w.checkHiddenWrites(t, rq)
			})
		}
	})
	t.Run("unchanged", w.checkUnchanged)
	t.Logf("total %v", time.Since(start))
}

// TestSecrecyOracle pins a few cells of the oracle itself, so that the
// table above checks the README and not a mistaken oracle.
func TestSecrecyOracle(t *testing.T) {
	w := &sxWorld{byRef: map[string]*sxRes{}}
	docs := map[string]*sxRes{
		"masked": {typ: "DocumentReference", id: "m", patient: "pa", labels: []string{"N", "MASQUE_PS"}, docType: tConsult, author: "gp"},
		"v":      {typ: "DocumentReference", id: "v", patient: "pa", labels: []string{"V"}, docType: tConsult, author: "gp"},
		"child":  {typ: "DocumentReference", id: "c", patient: "pa", labels: []string{"N"}, docType: tChildCheck, author: "gp"},
		"bmask":  {typ: "DocumentReference", id: "bm", patient: "pb", labels: []string{"MASQUE_PS"}, docType: tConsult, author: "med"},
	}
	cases := []struct {
		rq   sxRq
		doc  string
		want bool
	}{
		{sxRq{kind: "pro", pro: "gp", profession: "10", mode: "normal"}, "masked", true},
		{sxRq{kind: "pro", pro: "med", profession: "10", mode: "normal"}, "masked", false},
		{sxRq{kind: "pro", pro: "med", profession: "10", mode: "normal"}, "v", false},
		{sxRq{kind: "pro", pro: "nurse", profession: "60", mode: "normal"}, "child", false},
		{sxRq{kind: "pro", pro: "blocked", profession: "10", mode: "centre_15"}, "child", false},
		{sxRq{kind: "pro", pro: "unrel", profession: "10", mode: "bris_de_glace"}, "child", false}, // pa refused BTG
		{sxRq{kind: "pro", pro: "unrel", profession: "10", mode: "centre_15"}, "child", true},
		{sxRq{kind: "pro", pro: "unrel", profession: "10", mode: "centre_15"}, "bmask", true}, // pb allows MASKED
		{sxRq{kind: "pro", pro: "med", profession: "10", mode: "normal"}, "bmask", true},      // author
		{sxRq{kind: "campaign"}, "child", true},
		{sxRq{kind: "rep", patient: "pa"}, "v", false},
		{sxRq{kind: "patient", patient: "pa"}, "v", true},
	}
	for _, c := range cases {
		if got := w.sees(&c.rq, docs[c.doc]); got != c.want {
			t.Errorf("oracle: %+v sees %s = %v, want %v", c.rq, c.doc, got, c.want)
		}
	}
}

// ---- writes ----

// sxNewDoc is a document of pa by author (a professional key), labels codes.
func sxNewDoc(id, author string, labels ...string) string {
	x := &sxRes{typ: "DocumentReference", id: id, patient: "pa", docType: tConsult, author: author,
		labels: labels, date: "2024-02-01T10:00:00Z"}
	s := sxDocJSON(x)
	if id == "" {
		s = strings.Replace(s, `"id":"",`, "", 1)
	}
	return s
}

func sxWant(t *testing.T, what string, r resp, want ...int) {
	t.Helper()
	if !slices.Contains(want, r.Status) {
		t.Errorf("%s: %d, want %v: %.400s", what, r.Status, want, r.Body)
	}
}

// sxIDOf is the id of the resource a write answer's Location names.
func sxIDOf(t *testing.T, r resp) string {
	t.Helper()
	loc := r.Header.Get("Location")
	i := strings.Index(loc, "/_history/")
	j := strings.LastIndexByte(loc[:max(i, 0)], '/')
	if i < 0 || j < 0 {
		t.Fatalf("Location %q", loc)
	}
	return loc[j+1 : i]
}

func TestSecrecyWrites(t *testing.T) {
	start := time.Now()
	w := newSecrecyWorld(t)
	e := w.e
	as := func(name string) func(method, path, body string, h ...string) resp {
		tok := w.rq(name).tok
		return func(method, path, body string, h ...string) resp {
			t.Helper()
			return sxDo(t, e, tok, method, path, body, h...)
		}
	}
	med, nurse, gp, unrel := as("med/normal"), as("nurse/normal"), as("gp/normal"), as("unrel/normal")
	patient, rep, campaign, admin := as("patient-pa"), as("representative-pa"), as("campaign"), as("admin")
	org1, org2 := as("integration-org1"), as("integration-org2")
	versions := func(ref string) int {
		t.Helper()
		return len(sxReadBundle(t, org1("GET", "/"+ref+"/_history", ""), ref).all)
	}

	var medDoc string
	t.Run("professional adds a document", func(t *testing.T) {
		r := med("POST", "/DocumentReference", sxNewDoc("", "med", "N"))
		sxWant(t, "authorised médecin creates", r, http.StatusCreated)
		if r.Status == http.StatusCreated {
			medDoc = sxIDOf(t, r)
		}
		sxWant(t, "unrelated médecin creates", unrel("POST", "/DocumentReference", sxNewDoc("", "unrel", "N")), http.StatusForbidden)
		sxWant(t, "blocked médecin creates", as("blocked/normal")("POST", "/DocumentReference", sxNewDoc("", "blocked", "N")), http.StatusForbidden)
		sxWant(t, "blocked médecin in centre_15 creates", as("blocked/centre_15")("POST", "/DocumentReference", sxNewDoc("", "blocked", "N")), http.StatusForbidden)
		sxWant(t, "unrelated médecin in bris_de_glace (pa refused BTG) creates", as("unrel/bris_de_glace")("POST", "/DocumentReference", sxNewDoc("", "unrel", "N")), http.StatusForbidden)
		sxWant(t, "unrelated médecin in centre_15 creates", as("unrel/centre_15")("POST", "/DocumentReference", sxNewDoc("", "unrel", "N")), http.StatusCreated)
		sxWant(t, "campaign creates", campaign("POST", "/DocumentReference", sxNewDoc("", "gp", "N")), http.StatusForbidden)
		sxWant(t, "admin creates", admin("POST", "/DocumentReference", sxNewDoc("", "gp", "N")), http.StatusForbidden)
		sxWant(t, "patient creates a document", patient("POST", "/DocumentReference", sxNewDoc("", "gp", "N")), http.StatusForbidden)
	})
	if medDoc == "" {
		t.Fatal("no document to go on with")
	}

	t.Run("author changes labels", func(t *testing.T) {
		sxWant(t, "author adds R", med("PUT", "/DocumentReference/"+medDoc, sxNewDoc(medDoc, "med", "N", "R")), http.StatusOK)
		sxWant(t, "author reads it", med("GET", "/DocumentReference/"+medDoc, ""), http.StatusOK)
		sxWant(t, "another authorised professional (who sees it) relabels", nurse("PUT", "/DocumentReference/"+medDoc, sxNewDoc(medDoc, "med", "N")), http.StatusForbidden)
		sxWant(t, "the médecin traitant relabels", gp("PUT", "/DocumentReference/"+medDoc, sxNewDoc(medDoc, "med", "N")), http.StatusForbidden)
		sxWant(t, "another professional deletes", nurse("DELETE", "/DocumentReference/"+medDoc, ""), http.StatusForbidden)
		sxWant(t, "médecin traitant changes a document he authored", gp("PUT", "/DocumentReference/a-n", sxNewDoc("a-n", "gp", "N", "R")), http.StatusOK)
		sxWant(t, "author masks his own document", med("PUT", "/DocumentReference/"+medDoc, sxNewDoc(medDoc, "med", "N", "MASQUE_PS")), http.StatusOK)
		sxWant(t, "author still sees it", med("GET", "/DocumentReference/"+medDoc, ""), http.StatusOK)
		sxWant(t, "authorised nurse no longer does", nurse("GET", "/DocumentReference/"+medDoc, ""), http.StatusNotFound)
		sxWant(t, "engine org1 does not see a professional's document", org1("GET", "/DocumentReference/"+medDoc, ""), http.StatusNotFound)
	})

	t.Run("patient masks and unmasks", func(t *testing.T) {
		// a-none: a plain document of pa by the GP.
		base := w.byRef["DocumentReference/a-none"]
		masked := strings.Replace(base.body, `"description"`, `"securityLabel":`+sxLabels([]string{"MASQUE_PS"})+`,"description"`, 1)
		sxWant(t, "med reads before", med("GET", "/DocumentReference/a-none", ""), http.StatusOK)
		sxWant(t, "patient adds MASQUE_PS", patient("PUT", "/DocumentReference/a-none", masked), http.StatusOK)
		sxWant(t, "authorised med after masking", med("GET", "/DocumentReference/a-none", ""), http.StatusNotFound)
		sxWant(t, "médecin traitant after masking", gp("GET", "/DocumentReference/a-none", ""), http.StatusOK)
		sxWant(t, "engine org1 keeps its document after the patient's change", org1("GET", "/DocumentReference/a-none", ""), http.StatusOK)
		// The current version governs the earlier ones: masking hides
		// the whole history of the document.
		sxWant(t, "authorised med vreads version 1 after masking", med("GET", "/DocumentReference/a-none/_history/1", ""), http.StatusNotFound)
		if b := sxReadBundle(t, med("GET", "/DocumentReference/_history?_count=500", ""), "type history"); slices.Contains(b.all, "DocumentReference/a-none") {
			t.Errorf("after masking, the authorised médecin's type history still lists a version of a-none")
		}
		sxWant(t, "médecin traitant vreads version 1 after masking", gp("GET", "/DocumentReference/a-none/_history/1", ""), http.StatusOK)
		sxWant(t, "patient removes MASQUE_PS", patient("PUT", "/DocumentReference/a-none", base.body), http.StatusOK)
		sxWant(t, "authorised med after unmasking", med("GET", "/DocumentReference/a-none", ""), http.StatusOK)
		sxWant(t, "representative adds MASQUE_PS", rep("PUT", "/DocumentReference/a-none", masked), http.StatusOK)
		sxWant(t, "representative removes MASQUE_PS", rep("PUT", "/DocumentReference/a-none", base.body), http.StatusOK)
		sxWant(t, "patient masks by PATCH", patient("PATCH", "/DocumentReference/a-none",
			`[{"op":"add","path":"/securityLabel","value":`+sxLabels([]string{"MASQUE_PS"})+`}]`, "Content-Type", "application/json-patch+json"), http.StatusOK)
		sxWant(t, "patient unmasks by PATCH", patient("PATCH", "/DocumentReference/a-none",
			`[{"op":"remove","path":"/securityLabel"}]`, "Content-Type", "application/json-patch+json"), http.StatusOK)

		sxWant(t, "patient changes the description", patient("PUT", "/DocumentReference/a-none",
			strings.Replace(base.body, "fixture a-none", "changed", 1)), http.StatusForbidden)
		r := w.byRef["DocumentReference/a-r"]
		sxWant(t, "patient removes R", patient("PUT", "/DocumentReference/a-r", strings.Replace(r.body, sxLabels([]string{"N", "R"}), sxLabels([]string{"N"}), 1)), http.StatusForbidden)
		sxWant(t, "patient adds V", patient("PUT", "/DocumentReference/a-none",
			strings.Replace(base.body, `"description"`, `"securityLabel":`+sxLabels([]string{"V"})+`,"description"`, 1)), http.StatusForbidden)
		sxWant(t, "patient deletes a document", patient("DELETE", "/DocumentReference/a-none", ""), http.StatusForbidden)
		sxWant(t, "patient masks another patient's document (hidden)", patient("PUT", "/DocumentReference/b-n",
			strings.Replace(w.byRef["DocumentReference/b-n"].body, sxLabels([]string{"N"}), sxLabels([]string{"N", "MASQUE_PS"}), 1)), http.StatusNotFound)
		sxWant(t, "patient masks an INVISIBLE_PATIENT document (hidden)", patient("PUT", "/DocumentReference/a-invp",
			strings.Replace(w.byRef["DocumentReference/a-invp"].body, sxLabels([]string{"N", "INVISIBLE_PATIENT"}), sxLabels([]string{"N", "INVISIBLE_PATIENT", "MASQUE_PS"}), 1)), http.StatusNotFound)
		sxWant(t, "patient writes an Observation", patient("POST", "/Observation", w.byRef["Observation/obs-a"].body), http.StatusForbidden)
	})

	t.Run("professional declares his authorisation", func(t *testing.T) {
		sxWant(t, "unrelated before", unrel("GET", "/DocumentReference/a-n", ""), http.StatusNotFound)
		sxWant(t, "unrelated declares a permit for himself", unrel("POST", "/Consent", sxConsentJSON("", "pa", "permit", "unrel", "")), http.StatusCreated)
		sxWant(t, "unrelated after (cache invalidated)", unrel("GET", "/DocumentReference/a-n", ""), http.StatusOK)
		sxWant(t, "permit for another professional", unrel("POST", "/Consent", sxConsentJSON("", "pa", "permit", "podo", "")), http.StatusForbidden)
		sxWant(t, "deny by a professional", unrel("POST", "/Consent", sxConsentJSON("", "pa", "deny", "unrel", "")), http.StatusForbidden)
		sxWant(t, "permit with a purpose", unrel("POST", "/Consent", sxConsentJSON("", "pa", "permit", "unrel", sxPurpose+"|MASKED")), http.StatusForbidden)
		sxWant(t, "blocked professional declares a permit", as("blocked/normal")("POST", "/Consent", sxConsentJSON("", "pa", "permit", "blocked", "")), http.StatusForbidden)
		sxWant(t, "blocked professional still sees nothing", as("blocked/normal")("GET", "/DocumentReference/a-n", ""), http.StatusNotFound)
	})

	t.Run("a new médecin traitant sees at once", func(t *testing.T) {
		sxWant(t, "unrelated before", unrel("GET", "/DocumentReference/b-masked", ""), http.StatusNotFound)
		pb := strings.Replace(w.byRef["Patient/pb"].body, `"gender"`, `"generalPractitioner":[{"reference":"Practitioner/pr-unrel"}],"gender"`, 1)
		sxWant(t, "engine names him médecin traitant of pb", org1("PUT", "/Patient/pb", pb), http.StatusOK)
		sxWant(t, "unrelated after (masked document)", unrel("GET", "/DocumentReference/b-masked", ""), http.StatusOK)
		sxWant(t, "unrelated after (V document)", unrel("GET", "/DocumentReference/b-v", ""), http.StatusOK)
		sxWant(t, "engine takes it back", org1("PUT", "/Patient/pb", w.byRef["Patient/pb"].body), http.StatusOK)
		sxWant(t, "unrelated after", unrel("GET", "/DocumentReference/b-masked", ""), http.StatusNotFound)
	})

	t.Run("patient blocks a professional", func(t *testing.T) {
		// Warm the facts cache first.
		sxWant(t, "med reads the Patient", med("GET", "/Patient/pa", ""), http.StatusOK)
		if n := len(sxReadBundle(t, med("GET", "/DocumentReference?patient=pa&_count=500", ""), "before").matches); n == 0 {
			t.Fatal("med sees no document before the block")
		}
		sxWant(t, "patient blocks med", patient("POST", "/Consent", sxConsentJSON("", "pa", "deny", "med", "")), http.StatusCreated)
		for _, mode := range []string{"normal", "bris_de_glace", "centre_15"} {
			m := as("med/" + mode)
			sxWant(t, mode+": Patient", m("GET", "/Patient/pa", ""), http.StatusNotFound)
			sxWant(t, mode+": a document", m("GET", "/DocumentReference/a-n", ""), http.StatusNotFound)
			sxWant(t, mode+": his own document", m("GET", "/DocumentReference/"+medDoc, ""), http.StatusNotFound)
			sxWant(t, mode+": an Observation", m("GET", "/Observation/obs-a", ""), http.StatusNotFound)
			sxWant(t, mode+": $everything", m("GET", "/Patient/pa/$everything", ""), http.StatusNotFound)
			b := sxReadBundle(t, m("GET", "/DocumentReference?patient=pa&_count=500", ""), "after")
			if len(b.all) != 0 || b.total == nil || *b.total != 0 {
				t.Errorf("%s: search after the block: %v total %s", mode, b.all, sxTotal(b.total))
			}
			sxWant(t, mode+": writes", m("POST", "/DocumentReference", sxNewDoc("", "med", "N")), http.StatusForbidden)
		}
		sxWant(t, "pb still open to med", med("GET", "/Patient/pb", ""), http.StatusOK)
		sxWant(t, "other professionals unaffected", nurse("GET", "/DocumentReference/a-n", ""), http.StatusOK)
	})

	t.Run("conditional operations on hidden resources", func(t *testing.T) {
		// a-masked is hidden from the authorised nurse.
		sxWant(t, "conditional delete", nurse("DELETE", "/DocumentReference?_id=a-masked", ""), http.StatusNoContent, http.StatusOK)
		sxWant(t, "conditional delete by label", nurse("DELETE", "/DocumentReference?patient=pa&security-label="+url.QueryEscape(sxA07+"|MASQUE_PS"), ""), http.StatusNoContent, http.StatusOK)
		r := nurse("PUT", "/DocumentReference?_id=a-masked", strings.Replace(w.byRef["DocumentReference/a-masked"].body, "fixture", "changed", 1))
		if r.Status < 300 {
			t.Errorf("conditional update with the hidden id in the body: %d %.300s", r.Status, r.Body)
		}
		r = nurse("PUT", "/DocumentReference?security-label="+url.QueryEscape(sxA07+"|MASQUE_PS")+"&patient=pa", sxNewDoc("", "nurse", "N"))
		sxWant(t, "conditional update matching only hidden documents creates", r, http.StatusCreated)
		if r.Status == http.StatusCreated {
			if id := sxIDOf(t, r); id == "a-masked" || id == "a-byunrel" {
				t.Errorf("conditional update replaced the hidden %s", id)
			}
		}
		r = nurse("POST", "/DocumentReference", sxNewDoc("", "nurse", "N"), "If-None-Exist", "_id=a-masked")
		sxWant(t, "conditional create whose criteria match only a hidden document creates", r, http.StatusCreated)
		for _, ref := range []string{"DocumentReference/a-masked", "DocumentReference/a-byunrel"} {
			if n := versions(ref); n != 1 {
				t.Errorf("%s has %d versions after conditional writes of a professional who does not see it", ref, n)
			}
		}
		// A new document naming a Binary the writer does not see: the
		// Binary is absent to him (not known), its size and hash are not
		// revealed.
		hiddenBin := strings.Replace(sxNewDoc("", "nurse", "N"), `"data":"aGVsbG8="`, `"url":"Binary/bin","size":1`, 1)
		missingBin := strings.Replace(sxNewDoc("", "nurse", "N"), `"data":"aGVsbG8="`, `"url":"Binary/`+sxMissingID+`","size":1`, 1)
		sxAsMissing(t, "document naming a hidden Binary (wrong size)", nurse("POST", "/DocumentReference", hiddenBin),
			nurse("POST", "/DocumentReference", missingBin), "bin", sxMissingID)
		sxWant(t, "org2 updates org1's document (hidden)", org2("PUT", "/DocumentReference/a-n", w.byRef["DocumentReference/a-n"].body), http.StatusNotFound)
		sxWant(t, "org2 deletes org1's document (hidden)", org2("DELETE", "/DocumentReference/a-n", ""), http.StatusNotFound)
		// The INS rule is the exception: a second Patient for pa's INS is
		// refused even by one who does not see pa.
		r = as("blocked/normal")("POST", "/Patient", `{"resourceType":"Patient","identifier":[{"system":"urn:oid:1.2.250.1.213.1.4.10","value":"212037512345678"}],"name":[{"family":"Martin"}]}`)
		sxWant(t, "second Patient for a hidden INS", r, http.StatusConflict)
	})

	t.Run("admin", func(t *testing.T) {
		sxWant(t, "$close", admin("POST", "/Patient/pb/$close", ""), http.StatusOK)
		sxWant(t, "reads the Patient", admin("GET", "/Patient/pb", ""), http.StatusOK)
		sxAsMissing(t, "reads a document", admin("GET", "/DocumentReference/b-n", ""), admin("GET", "/DocumentReference/"+sxMissingID, ""), "b-n", sxMissingID)
		sxWant(t, "updates a Patient", admin("PUT", "/Patient/pb", w.byRef["Patient/pb"].body), http.StatusForbidden)
		sxWant(t, "$reopen", admin("POST", "/Patient/pb/$reopen", ""), http.StatusOK)
		sxWant(t, "professional cannot $close", gp("POST", "/Patient/pa/$close", ""), http.StatusForbidden)
		sxWant(t, "patient cannot $close", patient("POST", "/Patient/pa/$close", ""), http.StatusForbidden)
	})

	t.Run("campaign writes nothing", func(t *testing.T) {
		sxWant(t, "PUT CarePlan", campaign("PUT", "/CarePlan/cp-a-prev", w.byRef["CarePlan/cp-a-prev"].body), http.StatusForbidden)
		sxWant(t, "PATCH CarePlan", campaign("PATCH", "/CarePlan/cp-a-prev", `[{"op":"replace","path":"/status","value":"revoked"}]`, "Content-Type", "application/json-patch+json"), http.StatusForbidden)
		sxWant(t, "DELETE CarePlan", campaign("DELETE", "/CarePlan/cp-a-prev", ""), http.StatusForbidden)
		sxWant(t, "POST CarePlan", campaign("POST", "/CarePlan", w.byRef["CarePlan/cp-a-prev"].body), http.StatusForbidden)
		sxWant(t, "POST Consent", campaign("POST", "/Consent", sxConsentJSON("", "pa", "permit", "", "")), http.StatusForbidden)
		if n := versions("CarePlan/cp-a-prev"); n != 1 {
			t.Errorf("cp-a-prev has %d versions", n)
		}
	})

	t.Run("SMART scopes narrow", func(t *testing.T) {
		p := sxPros[1] // the nurse, authorised on pa
		tok := func(scope string) func(method, path, body string, h ...string) resp {
			tk := e.Token(access.Claims{Role: "professional", RPPS: p.rpps, Profession: p.profession, Mode: "normal", Subject: "ps-nurse", Scope: scope})
			return func(method, path, body string, h ...string) resp {
				t.Helper()
				return sxDo(t, e, tk, method, path, body, h...)
			}
		}
		obsOnly := tok("openid fhirUser user/Observation.rs")
		sxWant(t, "read DocumentReference", obsOnly("GET", "/DocumentReference/a-n", ""), http.StatusForbidden)
		sxWant(t, "search DocumentReference", obsOnly("GET", "/DocumentReference?patient=pa", ""), http.StatusForbidden)
		sxWant(t, "read Observation", obsOnly("GET", "/Observation/obs-a", ""), http.StatusOK)
		sxWant(t, "read a hidden Observation", obsOnly("GET", "/Observation/obs-a-masked", ""), http.StatusNotFound)
		b := sxReadBundle(t, obsOnly("GET", "/Observation?patient=pa", ""), "Observation search")
		sxSameSet(t, "Observation search with scope", []string{"Observation/obs-a"}, b.matches)
		sxWant(t, "create Observation (no c)", obsOnly("POST", "/Observation", w.byRef["Observation/obs-a"].body), http.StatusForbidden)
		sxWant(t, "v1 read scope", tok("user/DocumentReference.read")("GET", "/DocumentReference/a-n", ""), http.StatusOK)
		sxWant(t, "scope with search parameters grants nothing", tok("user/DocumentReference.rs?category=x")("GET", "/DocumentReference/a-n", ""), http.StatusForbidden)
		sxWant(t, "no resource scope: not narrowed", tok("openid fhirUser")("GET", "/DocumentReference/a-n", ""), http.StatusOK)
		sxWant(t, "scopes never widen", tok("user/*.cruds")("GET", "/DocumentReference/a-masked", ""), http.StatusNotFound)
	})
	t.Logf("total %v", time.Since(start))
}
