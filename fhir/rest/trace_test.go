package rest_test

// The proof of the traces issue: every interaction on a record leaves
// exactly the expected AuditEvent (read from the store, the way the trail
// wrote it), a trace store that fails turns requests into 503 without
// data, traces have their own secrecy, an emergency access notifies once
// per session, and the duty report gives the ratio computed by hand.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/fhir/rest"
	"github.com/dossier-fhir/dossier/fhir/trail"
	"github.com/dossier-fhir/dossier/store"
)

// traced builds a server with the DMP policy and the audit trail.
func tracedEnv(t testing.TB, wrap func(store.Store) store.Store) *env {
	return newEnvWith(t, setup{policy: dmpPolicy(t), tracer: func(st store.Store, rp *repo.Repo) rest.Tracer {
		if wrap != nil {
			st = wrap(st)
		}
		tr := trail.New(st, trail.Options{Index: rp.Index, Notify: rp.NotifyEmergency, Source: "dossier-test"})
		t.Cleanup(tr.Close)
		return tr
	}})
}

// trace is what a test reads of an AuditEvent.
type trace struct {
	Subtype, Operation, Action, Outcome, Purpose, AltID string
	What                                                []string
	Names                                               []string
	Labels                                              []string
}

func (tr trace) String() string {
	s := fmt.Sprintf("%s%s %s o=%s p=%s by %s on %v%v", tr.Subtype, tr.Operation, tr.Action, tr.Outcome, tr.Purpose, tr.AltID, tr.What, tr.Names)
	if len(tr.Labels) > 0 {
		s += fmt.Sprint(" secret", tr.Labels)
	}
	return s
}

// traces reads every AuditEvent from the store (not through the API:
// what was written, whoever may read it).
func traces(t testing.TB, e *env) map[string]trace {
	t.Helper()
	vs, err := e.Store.Find(context.Background(), store.Query{Type: "AuditEvent"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]trace{}
	for _, v := range vs {
		var ae struct {
			Meta struct {
				Security []struct{ Code string } `json:"security"`
			} `json:"meta"`
			Subtype []struct{ Code, Display string } `json:"subtype"`
			Action  string                           `json:"action"`
			Outcome string                           `json:"outcome"`
			Purpose []struct {
				Coding []struct{ Code string } `json:"coding"`
			} `json:"purposeOfEvent"`
			Agent []struct {
				AltID     string `json:"altId"`
				Requestor bool   `json:"requestor"`
			} `json:"agent"`
			Entity []struct {
				What struct{ Reference string } `json:"what"`
				Name string                     `json:"name"`
			} `json:"entity"`
		}
		if err := json.Unmarshal(v.JSON, &ae); err != nil {
			t.Fatal(err)
		}
		tr := trace{Action: ae.Action, Outcome: ae.Outcome}
		if len(ae.Subtype) > 0 {
			tr.Subtype, tr.Operation = ae.Subtype[0].Code, ae.Subtype[0].Display
		}
		if len(ae.Purpose) > 0 && len(ae.Purpose[0].Coding) > 0 {
			tr.Purpose = ae.Purpose[0].Coding[0].Code
		}
		for _, a := range ae.Agent {
			if a.Requestor {
				tr.AltID = a.AltID
			}
		}
		for _, en := range ae.Entity {
			if en.What.Reference != "" {
				tr.What = append(tr.What, en.What.Reference)
			}
			if en.Name != "" {
				tr.Names = append(tr.Names, en.Name)
			}
		}
		for _, s := range ae.Meta.Security {
			tr.Labels = append(tr.Labels, s.Code)
		}
		out[v.ID] = tr
	}
	return out
}

// newTraces returns the traces written since before (as strings, sorted).
func newTraces(t testing.TB, e *env, before map[string]trace) []string {
	t.Helper()
	var out []string
	for id, tr := range traces(t, e) {
		if _, ok := before[id]; !ok {
			out = append(out, tr.String())
		}
	}
	slices.Sort(out)
	return out
}

// traceWorld: a patient with a médecin traitant, a document by him, one
// masked, one invisible to the patient, one invisible to representatives,
// and an unrelated médecin.
type traceWorld struct {
	e                           *env
	pid                         string
	gp, other, engine, pat, rep string
	gpRPPS, otherRPPS           string
}

func newTraceWorld(t *testing.T, e *env) *traceWorld {
	w := &traceWorld{e: e, gpRPPS: "10000000101", otherRPPS: "10000000202"}
	w.engine = "Bearer " + e.token
	put := func(path, body string) {
		t.Helper()
		if r := e.Do("PUT", path, body); r.Status >= 300 {
			t.Fatalf("PUT %s: %d %s", path, r.Status, r.Body)
		}
	}
	put("/Practitioner/tw-gp", `{"resourceType":"Practitioner","id":"tw-gp","identifier":[{"system":"https://rpps.esante.gouv.fr","value":"`+w.gpRPPS+`"}]}`)
	put("/Practitioner/tw-other", `{"resourceType":"Practitioner","id":"tw-other","identifier":[{"system":"https://rpps.esante.gouv.fr","value":"`+w.otherRPPS+`"}]}`)
	w.pid = "tw-p"
	put("/Patient/tw-p", `{"resourceType":"Patient","id":"tw-p","gender":"female","generalPractitioner":[{"reference":"Practitioner/tw-gp"}]}`)
	doc := func(id string, labels ...string) {
		sl := `{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"N"}]}`
		for _, l := range labels {
			sl += `,{"coding":[{"system":"urn:oid:1.2.250.1.213.1.1.4.13","code":"` + l + `"}]}`
		}
		put("/DocumentReference/"+id, `{"resourceType":"DocumentReference","id":"`+id+`","status":"current",`+
			`"type":{"coding":[{"system":"http://loinc.org","code":"11488-4"}]},"subject":{"reference":"Patient/tw-p"},`+
			`"author":[{"reference":"Practitioner/tw-gp"}],"securityLabel":[`+sl+`],`+
			`"content":[{"attachment":{"contentType":"text/plain","data":"aGVsbG8="}}]}`)
	}
	doc("tw-d1")
	doc("tw-masked", "MASQUE_PS")
	doc("tw-invis", "INVISIBLE_PATIENT")
	doc("tw-secret", "INVISIBLE_REPRESENTANTS_LEGAUX")
	w.gp = "Bearer " + e.Token(access.Claims{Role: "professional", RPPS: w.gpRPPS, Profession: "10", Subject: "gp"})
	w.other = "Bearer " + e.Token(access.Claims{Role: "professional", RPPS: w.otherRPPS, Profession: "10", Subject: "other"})
	w.pat = "Bearer " + e.Token(access.Claims{Role: "patient", Patient: w.pid, Subject: "p"})
	w.rep = "Bearer " + e.Token(access.Claims{Role: "representative", Patient: w.pid, Subject: "r"})
	return w
}

func (w *traceWorld) do(t *testing.T, auth, method, path, body string, want int, headers ...string) resp {
	t.Helper()
	r := w.e.Do(method, path, body, append([]string{"Authorization", auth}, headers...)...)
	if r.Status != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// TestTraceEveryInteraction: each interaction leaves exactly the expected
// traces.
func TestTraceEveryInteraction(t *testing.T) {
	e := tracedEnv(t, nil)
	w := newTraceWorld(t, e)
	gp := "10000000101"
	cases := []struct {
		name   string
		auth   string
		method string
		path   string
		body   string
		status int
		want   []string
	}{
		{"read", w.gp, "GET", "/DocumentReference/tw-d1", "", 200,
			[]string{"read R o=0 p=TREAT by " + gp + " on [DocumentReference/tw-d1 Patient/tw-p][]"}},
		{"vread", w.gp, "GET", "/DocumentReference/tw-d1/_history/1", "", 200,
			[]string{"vread R o=0 p=TREAT by " + gp + " on [DocumentReference/tw-d1 Patient/tw-p][]"}},
		// A search leaves one trace per record whose data it returned, and
		// per secrecy class of that data (a trace of data invisible to
		// the patient or to representatives carries that label, so that
		// it is hidden from them as the data is).
		{"search: one trace per record and secrecy class", w.gp, "GET", "/DocumentReference?patient=tw-p", "", 200,
			[]string{"search-type R o=0 p=TREAT by " + gp + " on [Patient/tw-p][DocumentReference]",
				"search-type R o=0 p=TREAT by " + gp + " on [Patient/tw-p][DocumentReference] secret[INVISIBLE_PATIENT]",
				"search-type R o=0 p=TREAT by " + gp + " on [Patient/tw-p][DocumentReference] secret[INVISIBLE_REPRESENTANTS_LEGAUX]"}},
		{"search of one class only", w.gp, "GET", "/DocumentReference?patient=tw-p&_id=tw-d1,tw-masked", "", 200,
			[]string{"search-type R o=0 p=TREAT by " + gp + " on [Patient/tw-p][DocumentReference]"}},
		{"search with _revinclude: the included records too", w.gp, "GET", "/Patient?_id=tw-p&_revinclude=DocumentReference:subject&_has:DocumentReference:subject:_id=tw-d1", "", 200,
			[]string{"search-type R o=0 p=TREAT by " + gp + " on [Patient/tw-p][DocumentReference]",
				"search-type R o=0 p=TREAT by " + gp + " on [Patient/tw-p][DocumentReference] secret[INVISIBLE_PATIENT]",
				"search-type R o=0 p=TREAT by " + gp + " on [Patient/tw-p][DocumentReference] secret[INVISIBLE_REPRESENTANTS_LEGAUX]",
				"search-type R o=0 p=TREAT by " + gp + " on [Patient/tw-p][Patient]"}},
		{"history", w.gp, "GET", "/DocumentReference/tw-d1/_history", "", 200,
			[]string{"history-instance R o=0 p=TREAT by " + gp + " on [DocumentReference/tw-d1 Patient/tw-p][]"}},
		{"$everything", w.gp, "GET", "/Patient/tw-p/$everything", "", 200,
			[]string{"operation$everything E o=0 p=TREAT by " + gp + " on [Patient/tw-p][]"}},
		{"create", w.gp, "PUT", "/Observation/tw-o1", `{"resourceType":"Observation","id":"tw-o1","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/tw-p"}}`, 201,
			[]string{"create C o=0 p=TREAT by " + gp + " on [Observation/tw-o1 Patient/tw-p][]"}},
		{"update", w.gp, "PUT", "/Observation/tw-o1", `{"resourceType":"Observation","id":"tw-o1","status":"amended","code":{"text":"x"},"subject":{"reference":"Patient/tw-p"}}`, 200,
			[]string{"update U o=0 p=TREAT by " + gp + " on [Observation/tw-o1 Patient/tw-p][]"}},
		{"patch", w.gp, "PATCH", "/Observation/tw-o1", `[{"op":"replace","path":"/status","value":"final"}]`, 200,
			[]string{"patch U o=0 p=TREAT by " + gp + " on [Observation/tw-o1 Patient/tw-p][]"}},
		{"refused: a hidden document read by an unauthorised médecin", w.other, "GET", "/DocumentReference/tw-d1", "", 404,
			[]string{"read R o=4 p=TREAT by 10000000202 on [DocumentReference/tw-d1 Patient/tw-p][]"}},
		{"refused: a write without authorisation", w.other, "PUT", "/Observation/tw-o2", `{"resourceType":"Observation","id":"tw-o2","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/tw-p"}}`, 403,
			[]string{"create C o=4 p=TREAT by 10000000202 on [Observation/tw-o2 Patient/tw-p][]"}},
		{"a missing resource touches no record", w.gp, "GET", "/DocumentReference/nope", "", 404, nil},
		{"a transaction: one trace per entry", w.engine, "POST", "", `{"resourceType":"Bundle","type":"transaction","entry":[` +
			`{"resource":{"resourceType":"Observation","id":"tw-o3","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/tw-p"}},"request":{"method":"PUT","url":"Observation/tw-o3"}},` +
			`{"resource":{"resourceType":"Observation","id":"tw-o4","status":"final","code":{"text":"y"},"subject":{"reference":"Patient/tw-p"}},"request":{"method":"PUT","url":"Observation/tw-o4"}}]}`, 200,
			[]string{"create C o=0 p= by engine-1 on [Observation/tw-o3 Patient/tw-p][]", "create C o=0 p= by engine-1 on [Observation/tw-o4 Patient/tw-p][]"}},
		{"delete", w.engine, "DELETE", "/Observation/tw-o4", "", 204,
			[]string{"delete D o=0 p= by engine-1 on [Observation/tw-o4 Patient/tw-p][]"}},
		{"the patient reads his traces: not traced", w.pat, "GET", "/AuditEvent?patient=tw-p", "", 200, nil},
	}
	for _, c := range cases {
		before := traces(t, e)
		w.do(t, c.auth, c.method, c.path, c.body, c.status, "Content-Type", contentTypeFor(c.method))
		got := newTraces(t, e, before)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s: traces\n got %q\nwant %q", c.name, got, want)
		}
	}
}

func contentTypeFor(method string) string {
	if method == "PATCH" {
		return "application/json-patch+json"
	}
	return "application/fhir+json"
}

// failingStore fails every Append (the trail's write) once armed.
type failingStore struct {
	store.Store
	armed *atomic.Bool
}

func (f failingStore) Append(ctx context.Context, vs []*store.Version) error {
	if f.armed.Load() {
		return store.E("append", store.ErrUnavailable, errors.New("disk full"))
	}
	return f.Store.Append(ctx, vs)
}

// TestTraceFailClosed: when traces cannot be stored, reads and writes
// answer 503 with no data.
func TestTraceFailClosed(t *testing.T) {
	var armed atomic.Bool
	e := tracedEnv(t, func(st store.Store) store.Store { return failingStore{Store: st, armed: &armed} })
	w := newTraceWorld(t, e)
	armed.Store(true)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/DocumentReference/tw-d1", ""},
		{"GET", "/DocumentReference?patient=tw-p", ""},
		{"GET", "/Patient/tw-p/$everything", ""},
		{"GET", "/DocumentReference/tw-d1/_history/1", ""},
	} {
		r := e.Do(c.method, c.path, c.body, "Authorization", w.gp)
		if r.Status != http.StatusServiceUnavailable {
			t.Errorf("%s %s with a failing trail: %d, want 503", c.method, c.path, r.Status)
		}
		if strings.Contains(string(r.Body), "tw-d1") && c.path != "/DocumentReference/tw-d1" || strings.Contains(string(r.Body), `"resourceType":"DocumentReference"`) {
			t.Errorf("%s %s: data returned without a trace: %s", c.method, c.path, r.Body)
		}
		fxIsOutcome(t, r)
	}
	armed.Store(false)
	w.do(t, w.gp, "GET", "/DocumentReference/tw-d1", "", 200)
}

// TestTraceVisibility: who reads which traces.
func TestTraceVisibility(t *testing.T) {
	e := tracedEnv(t, nil)
	w := newTraceWorld(t, e)
	// Accesses by the GP (to every document) and by the unrelated médecin
	// (refused).
	for _, d := range []string{"tw-d1", "tw-masked", "tw-invis", "tw-secret"} {
		w.do(t, w.gp, "GET", "/DocumentReference/"+d, "", 200)
	}
	w.do(t, w.other, "GET", "/DocumentReference/tw-d1", "", 404)
	list := func(auth, query string) []string {
		t.Helper()
		var out []string
		next := "/AuditEvent?" + query + "&_sort=-date&_count=3"
		var last string
		for next != "" {
			r := w.do(t, auth, "GET", next, "", 200)
			var b struct {
				Entry []struct {
					Resource struct {
						ID       string
						Recorded string
						Entity   []struct{ What struct{ Reference string } }
					}
				}
				Link []struct{ Relation, URL string }
			}
			if err := json.Unmarshal(r.Body, &b); err != nil {
				t.Fatal(err)
			}
			for _, en := range b.Entry {
				if last != "" && en.Resource.Recorded > last {
					t.Errorf("traces not newest first: %s after %s", en.Resource.Recorded, last)
				}
				last = en.Resource.Recorded
				if len(en.Resource.Entity) > 0 {
					out = append(out, en.Resource.Entity[0].What.Reference)
				}
			}
			next = ""
			for _, l := range b.Link {
				if l.Relation == "next" {
					next = l.URL
				}
			}
		}
		slices.Sort(out)
		return out
	}
	all := []string{"DocumentReference/tw-d1", "DocumentReference/tw-d1", "DocumentReference/tw-invis", "DocumentReference/tw-masked", "DocumentReference/tw-secret"}
	if got := list(w.gp, "patient=tw-p&subtype=read"); !slices.Equal(got, all) {
		t.Errorf("the médecin traitant reads his patient's traces: %v, want %v", got, all)
	}
	if got, want := list(w.pat, "patient=tw-p&subtype=read"), []string{"DocumentReference/tw-d1", "DocumentReference/tw-d1", "DocumentReference/tw-masked", "DocumentReference/tw-secret"}; !slices.Equal(got, want) {
		t.Errorf("the patient: %v, want %v (not the traces of a document invisible to him)", got, want)
	}
	if got, want := list(w.rep, "patient=tw-p&subtype=read"), []string{"DocumentReference/tw-d1", "DocumentReference/tw-d1", "DocumentReference/tw-masked"}; !slices.Equal(got, want) {
		t.Errorf("the representative: %v, want %v (not the traces of the minor's secret)", got, want)
	}
	// The patient sees the record's other traces too (the engine's
	// writes when the record was filled).
	if got := list(w.pat, "patient=tw-p"); len(got) <= 4 {
		t.Errorf("the patient's whole trail: %v", got)
	}
	if got, want := list(w.gp, "altid="+w.gpRPPS), []string{"DocumentReference/tw-d1", "DocumentReference/tw-invis", "DocumentReference/tw-masked", "DocumentReference/tw-secret"}; !slices.Equal(got, want) {
		t.Errorf("a professional's own traces: %v, want %v", got, want)
	}
	if got := list(w.other, "patient=tw-p"); len(got) != 0 {
		t.Errorf("the unrelated médecin reads his own successful traces only (none here, his read was refused): %v", got)
	}
	w.do(t, w.other, "GET", "/Practitioner/tw-gp", "", 200) // touches no record: no trace
	// Nobody writes traces.
	for _, auth := range []string{w.engine, w.gp, w.pat} {
		w.do(t, auth, "POST", "/AuditEvent", `{"resourceType":"AuditEvent","type":{"code":"rest"},"recorded":"2026-01-01T00:00:00Z","agent":[{"requestor":true}],"source":{"observer":{"display":"x"}}}`, 403, "Content-Type", "application/fhir+json")
	}
	ids := traces(t, e)
	for id := range ids {
		w.do(t, w.engine, "DELETE", "/AuditEvent/"+id, "", 403)
		break
	}
}

// TestTraceOfAnotherRecord: a patient's refused attempt on another
// patient's record is a trace of that record (its patient and médecin
// traitant read it), not of the requester's: his own trail would tell
// him whose record the resource he named belongs to.
func TestTraceOfAnotherRecord(t *testing.T) {
	e := tracedEnv(t, nil)
	w := newTraceWorld(t, e)
	if r := e.Do("PUT", "/Patient/tw-q", `{"resourceType":"Patient","id":"tw-q","gender":"male"}`); r.Status >= 300 {
		t.Fatalf("PUT: %d %s", r.Status, r.Body)
	}
	q := "Bearer " + e.Token(access.Claims{Role: "patient", Patient: "tw-q", Subject: "q"})
	w.do(t, q, "GET", "/DocumentReference/tw-d1", "", 404)
	refused := func(auth, pid string) []string {
		t.Helper()
		r := w.do(t, auth, "GET", "/AuditEvent?patient="+pid+"&outcome=4", "", 200)
		var b struct {
			Entry []struct {
				Resource struct {
					Entity []struct{ What struct{ Reference string } }
				}
			}
		}
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, en := range b.Entry {
			for _, ent := range en.Resource.Entity {
				out = append(out, ent.What.Reference)
			}
		}
		return out
	}
	if got := refused(q, "tw-q"); len(got) != 0 {
		t.Errorf("the requester's own trail names the other record: %v", got)
	}
	want := []string{"DocumentReference/tw-d1", "Patient/tw-p"}
	if got := refused(w.pat, "tw-p"); !slices.Equal(got, want) {
		t.Errorf("the patient of the record: %v, want %v", got, want)
	}
	if got := refused(w.gp, "tw-p"); !slices.Equal(got, want) {
		t.Errorf("the médecin traitant: %v, want %v", got, want)
	}
}

// TestEmergencyNotificationOnce: an emergency session notifies the
// patient and the médecin traitant once, however many requests it makes.
func TestEmergencyNotificationOnce(t *testing.T) {
	e := tracedEnv(t, nil)
	w := newTraceWorld(t, e)
	session := func(jti string) string {
		return "Bearer " + e.Token(access.Claims{Role: "professional", RPPS: "10000000303", Profession: "10", Mode: access.ModeBrisDeGlace, Subject: "urgentiste-" + jti})
	}
	s1 := session("1")
	for _, p := range []string{"/DocumentReference/tw-d1", "/DocumentReference?patient=tw-p", "/Patient/tw-p"} {
		w.do(t, s1, "GET", p, "", 200)
	}
	count := func() []map[string]any {
		r := w.do(t, w.pat, "GET", "/Communication?patient=tw-p&category=notification", "", 200)
		var b struct {
			Entry []struct{ Resource map[string]any }
		}
		_ = json.Unmarshal(r.Body, &b)
		var out []map[string]any
		for _, en := range b.Entry {
			out = append(out, en.Resource)
		}
		return out
	}
	got := count()
	if len(got) != 1 {
		t.Fatalf("one emergency session: %d notifications, want 1", len(got))
	}
	rec, _ := json.Marshal(got[0]["recipient"])
	if !strings.Contains(string(rec), "Patient/tw-p") || !strings.Contains(string(rec), "Practitioner/tw-gp") {
		t.Errorf("the notification goes to the patient and the médecin traitant: %s", rec)
	}
	// The médecin traitant sees it too.
	w.do(t, w.gp, "GET", "/Communication/"+got[0]["id"].(string), "", 200)
	// The traces carry the purpose.
	n := 0
	for _, tr := range traces(t, e) {
		if tr.Purpose == "BTG" {
			n++
		}
	}
	if n < 3 {
		t.Errorf("%d BTG traces, want at least 3", n)
	}
	// A new session (another token) notifies again.
	time.Sleep(1100 * time.Millisecond) // tokens differ by their issue time (seconds)
	w.do(t, session("2"), "GET", "/DocumentReference/tw-d1", "", 200)
	if got := count(); len(got) != 2 {
		t.Errorf("a second session: %d notifications, want 2", len(got))
	}
}

// TestDutyReport: a month of encounters and accesses; the ratio is the
// one computed by hand.
func TestDutyReport(t *testing.T) {
	e := tracedEnv(t, nil)
	w := newTraceWorld(t, e)
	now := time.Now().UTC()
	// 10 patients whose médecin traitant is the GP; 12 encounters with
	// him as participant, at known distances from now; he then reads the
	// records of some patients now.
	type enc struct {
		patient string
		daysAgo int
	}
	encs := []enc{
		{"dp0", 1}, {"dp0", 20}, // read now: the first within a 7-day window, the second not
		{"dp1", 3}, {"dp2", 6}, // read now, within
		{"dp3", 2}, {"dp4", 5}, // not read
		{"dp5", 10}, {"dp6", 12}, // read now, but outside the window
		{"dp7", 0}, {"dp8", 4}, {"dp9", 25}, // dp7, dp8 read; dp9 not
		{"dp1", 40}, // outside the period
	}
	read := map[string]bool{"dp0": true, "dp1": true, "dp2": true, "dp5": true, "dp6": true, "dp7": true, "dp8": true}
	for i := 0; i < 10; i++ {
		id := fmt.Sprintf("dp%d", i)
		if r := e.Do("PUT", "/Patient/"+id, `{"resourceType":"Patient","id":"`+id+`","gender":"male","generalPractitioner":[{"reference":"Practitioner/tw-gp"}]}`); r.Status >= 300 {
			t.Fatal(string(r.Body))
		}
	}
	for i, en := range encs {
		start := now.AddDate(0, 0, -en.daysAgo).Format(time.RFC3339)
		body := fmt.Sprintf(`{"resourceType":"Encounter","id":"de%d","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},`+
			`"subject":{"reference":"Patient/%s"},"participant":[{"individual":{"reference":"Practitioner/tw-gp"}}],`+
			`"serviceProvider":{"reference":"Organization/org1"},"period":{"start":"%s"}}`, i, en.patient, start)
		if r := e.Do("PUT", fmt.Sprintf("/Encounter/de%d", i), body); r.Status >= 300 {
			t.Fatal(string(r.Body))
		}
	}
	for p := range read {
		w.do(t, w.gp, "GET", "/Patient/"+p+"/$everything", "", 200)
	}
	// By hand: in the period (the last 30 days) 11 encounters; done within
	// ±7 days of their start: dp0@1, dp1@3, dp2@6, dp7@0, dp8@4 → 5.
	start := now.AddDate(0, 0, -30).Format("2006-01-02")
	end := now.AddDate(0, 0, 1).Format("2006-01-02")
	q := "/$duty-report?rpps=" + w.gpRPPS + "&start=" + start + "&end=" + end + "&window=7"
	r := w.do(t, w.gp, "GET", q, "", 200)
	var mr struct {
		ResourceType string
		Contained    []struct {
			Entry []struct{ Item struct{ Reference string } }
		}
		Group []struct {
			Population []struct {
				Code  struct{ Coding []struct{ Code string } }
				Count int
			}
			MeasureScore struct{ Value float64 }
		}
	}
	if err := json.Unmarshal(r.Body, &mr); err != nil || mr.ResourceType != "MeasureReport" || len(mr.Group) != 1 {
		t.Fatalf("not a MeasureReport: %s", r.Body)
	}
	counts := map[string]int{}
	for _, p := range mr.Group[0].Population {
		counts[p.Code.Coding[0].Code] = p.Count
	}
	if counts["initial-population"] != 11 || counts["numerator"] != 5 || counts["not-consulted"] != 6 {
		t.Errorf("populations %v, want 11 encounters, 5 with a consultation, 6 without", counts)
	}
	if got := mr.Group[0].MeasureScore.Value; got < 0.4545 || got > 0.4546 {
		t.Errorf("ratio %v, want 5/11", got)
	}
	var missing []string
	for _, en := range mr.Contained[0].Entry {
		missing = append(missing, en.Item.Reference)
	}
	slices.Sort(missing)
	want := []string{"Encounter/de1", "Encounter/de10", "Encounter/de4", "Encounter/de5", "Encounter/de6", "Encounter/de7"}
	if !slices.Equal(missing, want) {
		t.Errorf("encounters without: %v, want %v", missing, want)
	}
	// The parsed report is a valid R4 resource.
	if _, err := parser.Parse(r.Body); err != nil {
		t.Errorf("the MeasureReport is not valid R4: %v", err)
	}
	// Who may run it.
	w.do(t, w.other, "GET", q, "", 403)
	w.do(t, w.pat, "GET", q, "", 403)
	admin := "Bearer " + e.Token(access.Claims{Role: "admin", Subject: "host"})
	w.do(t, admin, "GET", q, "", 200)
	// By organization: the engine of org1.
	w.do(t, w.engine, "GET", "/$duty-report?organization=org1&start="+start+"&end="+end+"&window=7", "", 200)
}
