package rest_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/dossier-fhir/dossier/fhir/rest"
)

type bundleResp struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Total        int    `json:"total"`
	Entry        []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Response struct {
			Status   string          `json:"status"`
			Location string          `json:"location"`
			Etag     string          `json:"etag"`
			Outcome  json.RawMessage `json:"outcome"`
		} `json:"response"`
	} `json:"entry"`
}

func decodeBundle(t *testing.T, body []byte) bundleResp {
	t.Helper()
	var b bundleResp
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatalf("not a bundle: %v: %s", err, body)
	}
	return b
}

// txBundle builds a Bundle of the given type from entries written as JSON.
func txBundle(typ string, entries ...string) string {
	return fmt.Sprintf(`{"resourceType":"Bundle","type":%q,"entry":[%s]}`, typ, strings.Join(entries, ","))
}

func postEntry(fullURL, resource string) string {
	typ := strings.SplitN(strings.SplitN(resource, `"resourceType":"`, 2)[1], `"`, 2)[0]
	return fmt.Sprintf(`{"fullUrl":%q,"resource":%s,"request":{"method":"POST","url":%q}}`, fullURL, resource, typ)
}

// count returns how many resources of typ the server holds (via history
// of the type: creations minus deletions are not needed here, every test
// starts from an empty database).
func (e *env) count(typ string) int {
	e.tb.Helper()
	r := e.Do("GET", "/"+typ, "")
	if r.Status != http.StatusOK {
		e.tb.Fatalf("search %s: %d %s", typ, r.Status, r.Body)
	}
	var b struct {
		Total int `json:"total"`
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Total
}

func TestTransactionUrnUUIDReferences(t *testing.T) {
	e := newEnv(t)
	body := txBundle("transaction",
		postEntry("urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", `{"resourceType":"Patient","gender":"female"}`),
		postEntry("urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059", `{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}}`),
		postEntry("urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"valueQuantity":{"value":1.50},"subject":{"reference":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},"encounter":{"reference":"urn:uuid:88f151c0-a954-468a-88bd-5ae15c08e059"}}`),
	)
	r := e.Do("POST", "", body)
	if r.Status != http.StatusOK {
		t.Fatalf("transaction: %d %s", r.Status, r.Body)
	}
	b := decodeBundle(t, r.Body)
	if b.Type != "transaction-response" || len(b.Entry) != 3 {
		t.Fatalf("response: %s", r.Body)
	}
	var locs []string
	for _, en := range b.Entry {
		if en.Response.Status != "201 Created" || en.Response.Etag != `W/"1"` || !strings.Contains(en.Response.Location, "/_history/1") {
			t.Fatalf("entry response: %+v", en.Response)
		}
		locs = append(locs, strings.Split(en.Response.Location, "/_history")[0])
	}
	obs := e.Do("GET", "/"+locs[2], "")
	var o struct {
		Subject   struct{ Reference string } `json:"subject"`
		Encounter struct{ Reference string } `json:"encounter"`
	}
	_ = json.Unmarshal(obs.Body, &o)
	if o.Subject.Reference != locs[0] || o.Encounter.Reference != locs[1] {
		t.Fatalf("references not rewritten: %s (want %s, %s)", obs.Body, locs[0], locs[1])
	}
	if !strings.Contains(string(obs.Body), `"value":1.50`) {
		t.Fatalf("decimal changed: %s", obs.Body)
	}
}

// TestTransactionRollback: the 7th of 10 entries fails; nothing of the
// bundle is visible and the resources it updated keep their versions.
func TestTransactionRollback(t *testing.T) {
	cases := []struct {
		name  string
		bad   string // the 7th entry
		code  int
		setup bool
	}{
		{"invalid resource", `{"resource":{"resourceType":"Patient","gender":"robot"},"request":{"method":"POST","url":"Patient"}}`, 400, true},
		{"if-match mismatch", `{"resource":{"resourceType":"Patient","id":"keep2","active":false},"request":{"method":"PUT","url":"Patient/keep2","ifMatch":"W/\"9\""}}`, 412, true},
		{"unknown type", `{"resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Foo"}}`, 404, true},
		{"conditional reference without match", `{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient?identifier=nope|nope"}},"request":{"method":"POST","url":"Observation"}}`, 412, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			for _, id := range []string{"keep", "keep2"} {
				if r := e.Do("PUT", "/Patient/"+id, `{"resourceType":"Patient","id":"`+id+`","active":true}`); r.Status != 201 {
					t.Fatal(r.Status)
				}
			}
			var entries []string
			for i := 0; i < 10; i++ {
				switch i {
				case 6:
					entries = append(entries, c.bad)
				case 2:
					entries = append(entries, `{"resource":{"resourceType":"Patient","id":"keep","active":true,"gender":"male"},"request":{"method":"PUT","url":"Patient/keep"}}`)
				default:
					entries = append(entries, postEntry(fmt.Sprintf("urn:uuid:00000000-0000-0000-0000-00000000000%d", i), `{"resourceType":"Organization","name":"o"}`))
				}
			}
			r := e.Do("POST", "", txBundle("transaction", entries...))
			if r.Status != c.code {
				t.Fatalf("status %d, want %d: %s", r.Status, c.code, r.Body)
			}
			if !strings.Contains(string(r.Body), "OperationOutcome") || !strings.Contains(string(r.Body), "Bundle.entry[6]") {
				t.Fatalf("outcome does not name entry 6: %s", r.Body)
			}
			if n := e.count("Organization"); n != 0 {
				t.Fatalf("%d organizations visible after rollback", n)
			}
			got := e.Do("GET", "/Patient/keep", "")
			if got.Header.Get("ETag") != `W/"1"` || strings.Contains(string(got.Body), "male") {
				t.Fatalf("Patient/keep changed: %s %s", got.Header.Get("ETag"), got.Body)
			}
			h := e.Do("GET", "/_history", "")
			if hb := decodeBundle(t, h.Body); len(hb.Entry) != 2 {
				t.Fatalf("history has %d entries after rollback, want 2", len(hb.Entry))
			}
		})
	}
}

func TestTransactionConditionalReferences(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{
		`{"resourceType":"Practitioner","id":"one","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1"}]}`,
		`{"resourceType":"Practitioner","id":"twoa","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"2"}]}`,
		`{"resourceType":"Practitioner","id":"twob","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"2"}]}`,
	} {
		var id struct{ ID string }
		_ = json.Unmarshal([]byte(p), &id)
		if r := e.Do("PUT", "/Practitioner/"+id.ID, p); r.Status != 201 {
			t.Fatal(r.Status, string(r.Body))
		}
	}
	enc := func(npi string) string {
		return postEntry("urn:uuid:6f1f3b1e-0000-4000-8000-000000000001",
			`{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"participant":[{"individual":{"reference":"Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|`+npi+`"}}]}`)
	}
	cases := []struct {
		npi    string
		status int
		want   string
	}{
		{"1", 200, "Practitioner/one"},
		{"0", 412, ""},
		{"2", 412, ""},
	}
	for _, c := range cases {
		r := e.Do("POST", "", txBundle("transaction", enc(c.npi)))
		if r.Status != c.status {
			t.Fatalf("npi %s: %d, want %d: %s", c.npi, r.Status, c.status, r.Body)
		}
		if c.status != 200 {
			continue
		}
		loc := strings.Split(decodeBundle(t, r.Body).Entry[0].Response.Location, "/_history")[0]
		got := e.Do("GET", "/"+loc, "")
		if !strings.Contains(string(got.Body), `"reference":"`+c.want+`"`) || strings.Contains(string(got.Body), "?identifier") {
			t.Fatalf("npi %s: reference not resolved: %s", c.npi, got.Body)
		}
	}
	if n := e.count("Encounter"); n != 1 {
		t.Fatalf("%d encounters, want 1", n)
	}
}

func TestTransactionOrderAndDuplicates(t *testing.T) {
	e := newEnv(t)
	e.Do("PUT", "/Patient/gone", `{"resourceType":"Patient","id":"gone"}`)
	// GET sees the result of the writes (processed last), DELETE first.
	body := txBundle("transaction",
		`{"request":{"method":"GET","url":"Patient/new1"}}`,
		`{"resource":{"resourceType":"Patient","id":"new1"},"request":{"method":"PUT","url":"Patient/new1"}}`,
		`{"request":{"method":"DELETE","url":"Patient/gone"}}`,
	)
	r := e.Do("POST", "", body)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	b := decodeBundle(t, r.Body)
	if b.Entry[0].Response.Status != "200 OK" || !strings.Contains(string(b.Entry[0].Resource), `"id":"new1"`) {
		t.Fatalf("GET entry: %+v %s", b.Entry[0].Response, b.Entry[0].Resource)
	}
	if b.Entry[1].Response.Status != "201 Created" || b.Entry[2].Response.Status != "204 No Content" {
		t.Fatalf("statuses: %s", r.Body)
	}
	if g := e.Do("GET", "/Patient/gone", ""); g.Status != 410 {
		t.Fatalf("deleted: %d", g.Status)
	}
	dup := txBundle("transaction",
		`{"resource":{"resourceType":"Patient","id":"d"},"request":{"method":"PUT","url":"Patient/d"}}`,
		`{"resource":{"resourceType":"Patient","id":"d","active":true},"request":{"method":"PUT","url":"Patient/d"}}`)
	if r := e.Do("POST", "", dup); r.Status != 400 {
		t.Fatalf("duplicate entries: %d %s", r.Status, r.Body)
	}
	if g := e.Do("GET", "/Patient/d", ""); g.Status != 404 {
		t.Fatalf("duplicate bundle wrote: %d", g.Status)
	}
}

func TestTransactionPatchAndIfNoneExist(t *testing.T) {
	e := newEnv(t)
	e.Do("PUT", "/Patient/p", `{"resourceType":"Patient","id":"p","identifier":[{"system":"s","value":"v"}]}`)
	patch := base64.StdEncoding.EncodeToString([]byte(`[{"op":"add","path":"/active","value":true}]`))
	body := txBundle("transaction",
		`{"resource":{"resourceType":"Binary","contentType":"application/json-patch+json","data":"`+patch+`"},"request":{"method":"PATCH","url":"Patient/p"}}`,
		`{"fullUrl":"urn:uuid:11111111-1111-4111-8111-111111111111","resource":{"resourceType":"Patient","identifier":[{"system":"s","value":"v"}]},"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=s|v"}}`,
		postEntry("urn:uuid:22222222-2222-4222-8222-222222222222", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:11111111-1111-4111-8111-111111111111"}}`),
	)
	r := e.Do("POST", "", body)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	b := decodeBundle(t, r.Body)
	if b.Entry[0].Response.Status != "200 OK" || b.Entry[1].Response.Status != "200 OK" {
		t.Fatalf("statuses: %s", r.Body)
	}
	loc := strings.Split(b.Entry[2].Response.Location, "/_history")[0]
	if o := e.Do("GET", "/"+loc, ""); !strings.Contains(string(o.Body), `"reference":"Patient/p"`) {
		t.Fatalf("reference to the ifNoneExist match: %s", o.Body)
	}
	if p := e.Do("GET", "/Patient/p", ""); p.Header.Get("ETag") != `W/"2"` || !strings.Contains(string(p.Body), `"active":true`) {
		t.Fatalf("patched: %s %s", p.Header.Get("ETag"), p.Body)
	}
	if n := e.count("Patient"); n != 1 {
		t.Fatalf("%d patients", n)
	}
}

func TestBatchEntriesIndependent(t *testing.T) {
	e := newEnv(t)
	body := txBundle("batch",
		`{"resource":{"resourceType":"Patient","id":"a"},"request":{"method":"PUT","url":"Patient/a"}}`,
		`{"resource":{"resourceType":"Patient","gender":"robot"},"request":{"method":"POST","url":"Patient"}}`,
		`{"fullUrl":"urn:uuid:33333333-3333-4333-8333-333333333333","resource":{"resourceType":"Patient"},"request":{"method":"POST","url":"Patient"}}`,
		`{"resource":{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:33333333-3333-4333-8333-333333333333"}},"request":{"method":"POST","url":"Observation"}}`,
		`{"request":{"method":"GET","url":"Patient/a"}}`,
		`{"request":{"method":"GET","url":"Patient/missing"}}`,
		`{"request":{"method":"BREW","url":"Patient"}}`,
	)
	r := e.Do("POST", "", body)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	b := decodeBundle(t, r.Body)
	want := []string{"201", "400", "201", "400", "200", "404", "400"}
	if b.Type != "batch-response" || len(b.Entry) != len(want) {
		t.Fatalf("response: %s", r.Body)
	}
	for i, w := range want {
		if !strings.HasPrefix(b.Entry[i].Response.Status, w) {
			t.Errorf("entry %d: %s, want %s", i, b.Entry[i].Response.Status, w)
		}
		if w != "200" && w != "201" && !strings.Contains(string(b.Entry[i].Response.Outcome), "OperationOutcome") {
			t.Errorf("entry %d: no outcome", i)
		}
	}
	if n := e.count("Patient"); n != 2 {
		t.Fatalf("%d patients, want 2", n)
	}
}

func TestBundleLimitsAndErrors(t *testing.T) {
	e := newEnv(t, func(c *rest.Config) { c.MaxBundleEntries = 3 })
	four := txBundle("batch", `{"request":{"method":"GET","url":"Patient/a"}}`, `{"request":{"method":"GET","url":"Patient/a"}}`,
		`{"request":{"method":"GET","url":"Patient/a"}}`, `{"request":{"method":"GET","url":"Patient/a"}}`)
	cases := []struct {
		name, body string
		code       int
	}{
		{"too many entries", four, 413},
		{"not a bundle", `{"resourceType":"Patient"}`, 400},
		{"collection", `{"resourceType":"Bundle","type":"collection"}`, 400},
		{"invalid json", `{"resourceType":"Bundle",`, 400},
		{"entry without request", txBundle("transaction", `{"resource":{"resourceType":"Patient"}}`), 400},
	}
	for _, c := range cases {
		if r := e.Do("POST", "", c.body); r.Status != c.code || !strings.Contains(string(r.Body), "OperationOutcome") {
			t.Errorf("%s: %d %s, want %d", c.name, r.Status, r.Body, c.code)
		}
	}
	small := newEnv(t, func(c *rest.Config) { c.MaxBodyBytes = 200 })
	big := txBundle("transaction", postEntry("urn:uuid:1", `{"resourceType":"Patient","name":[{"family":"`+strings.Repeat("x", 300)+`"}]}`))
	if r := small.Do("POST", "", big); r.Status != 413 {
		t.Errorf("body limit: %d", r.Status)
	}
	// An empty transaction is fine.
	if r := e.Do("POST", "", `{"resourceType":"Bundle","type":"transaction"}`); r.Status != 200 {
		t.Errorf("empty transaction: %d %s", r.Status, r.Body)
	}
}

// TestConcurrentTransactions: transactions writing the same resource are
// serialised; none is lost.
func TestConcurrentTransactions(t *testing.T) {
	e := newEnv(t)
	e.Do("PUT", "/Patient/shared", `{"resourceType":"Patient","id":"shared"}`)
	const n = 8
	codes := make(chan int, n)
	for i := range n {
		go func() {
			body := txBundle("transaction",
				fmt.Sprintf(`{"resource":{"resourceType":"Patient","id":"shared","birthDate":"2000-01-%02d"},"request":{"method":"PUT","url":"Patient/shared"}}`, i+1),
				postEntry("urn:uuid:44444444-4444-4444-8444-444444444444", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/shared"}}`))
			codes <- e.Do("POST", "", body).Status
		}()
	}
	for range n {
		if c := <-codes; c != 200 {
			t.Errorf("transaction: %d", c)
		}
	}
	if g := e.Do("GET", "/Patient/shared", ""); g.Header.Get("ETag") != fmt.Sprintf(`W/"%d"`, n+1) {
		t.Fatalf("Patient/shared at %s, want version %d", g.Header.Get("ETag"), n+1)
	}
	if c := e.count("Observation"); c != n {
		t.Fatalf("%d observations, want %d", c, n)
	}
}
