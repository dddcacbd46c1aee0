package rest_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/rest"
)

// fxStoredVersions counts every version in the database (system history).
func fxStoredVersions(t *testing.T, e *env) int {
	t.Helper()
	return fxTotal(t, e, "/_history?_count=0", "history")
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	const existing = `{"resourceType":"Patient","id":"e1","gender":"male"}`
	fxStatus(t, e.Do("PUT", "/Patient/e1", existing), http.StatusCreated)

	cases := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    []string
		want   int
	}{
		{"invalid JSON create", "POST", "/Patient", `{"resourceType":"Patient",`, nil, 400},
		{"invalid JSON update", "PUT", "/Patient/e1", `{"resourceType":"Patient","id":"e1",}`, nil, 400},
		{"other type than URL create", "POST", "/Patient", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`, nil, 400},
		{"other type than URL update", "PUT", "/Patient/e1", `{"resourceType":"Observation","id":"e1","status":"final","code":{"text":"x"}}`, nil, 400},
		{"unknown type search", "GET", "/Foo", "", nil, 404},
		{"unknown type read", "GET", "/Foo/1", "", nil, 404},
		{"unknown type create", "POST", "/Foo", `{"resourceType":"Foo"}`, nil, 404},
		{"unknown type update", "PUT", "/Foo/1", `{"resourceType":"Foo","id":"1"}`, nil, 404},
		{"unknown type delete", "DELETE", "/Foo/1", "", nil, 404},
		{"lower-case type", "GET", "/patient/e1", "", nil, 404},
		{"unknown resourceType in body", "POST", "/Patient", `{"resourceType":"Foo"}`, nil, 400},
		{"invalid code", "POST", "/Patient", `{"resourceType":"Patient","gender":"robot"}`, nil, 400},
		{"unknown element", "POST", "/Patient", `{"resourceType":"Patient","colour":"blue"}`, nil, 400},
		{"id mismatch", "PUT", "/Patient/e1", `{"resourceType":"Patient","id":"e2","gender":"female"}`, nil, 400},
		{"no id in body", "PUT", "/Patient/e1", `{"resourceType":"Patient","gender":"female"}`, nil, 400},
		{"text/plain body", "POST", "/Patient", `{"resourceType":"Patient"}`, []string{"Content-Type", "text/plain"}, 415},
		{"xml body", "PUT", "/Patient/e1", `<Patient xmlns="http://hl7.org/fhir"><id value="e1"/></Patient>`, []string{"Content-Type", "application/fhir+xml"}, 415},
		{"malformed Content-Type", "POST", "/Patient", `{"resourceType":"Patient"}`, []string{"Content-Type", "application/fhir+json; charset"}, 415},
		{"Accept text/plain", "GET", "/Patient/e1", "", []string{"Accept", "text/plain"}, 406},
		{"Accept xml", "GET", "/Patient/e1", "", []string{"Accept", "application/fhir+xml"}, 406},
		{"_format=xml", "GET", "/Patient/e1?_format=xml", "", nil, 406},
		{"_format=xml on create", "POST", "/Patient?_format=xml", `{"resourceType":"Patient"}`, nil, 406},
		{"POST on an instance", "POST", "/Patient/123", `{"resourceType":"Patient"}`, nil, 405},
		{"PUT on the type without criteria", "PUT", "/Patient", `{"resourceType":"Patient"}`, nil, 405},
		{"empty create", "POST", "/Patient", "", []string{"Content-Type", "application/fhir+json"}, 400},
		{"empty update", "PUT", "/Patient/e1", "", []string{"Content-Type", "application/fhir+json"}, 400},
		{"invalid id in URL", "PUT", "/Patient/a_b", `{"resourceType":"Patient","id":"a_b"}`, nil, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := fxStoredVersions(t, e)
			r := e.Do(c.method, c.path, c.body, c.hdr...)
			fxOutcome(t, r, c.want)
			if after := fxStoredVersions(t, e); after != before {
				t.Errorf("versions stored went from %d to %d", before, after)
			}
			g := fxWantETag(t, e, "/Patient/e1", `W/"1"`)
			if fxStr(fxObj(t, g.Body), "gender") != "male" {
				t.Errorf("Patient/e1 changed: %s", g.Body)
			}
		})
	}

	t.Run("several validation problems reported together", func(t *testing.T) {
		before := fxStoredVersions(t, e)
		r := e.Do("POST", "/Patient", `{"resourceType":"Patient","gender":"robot","colour":"blue"}`)
		issues := fxOutcome(t, r, http.StatusBadRequest)
		if len(issues) < 2 {
			t.Errorf("%d issue(s) for two problems, want at least 2: %s", len(issues), r.Body)
		}
		if after := fxStoredVersions(t, e); after != before {
			t.Errorf("versions stored went from %d to %d", before, after)
		}
	})
}

// TestMethodNotAllowed: 405 with an Allow header (RFC 9110 15.5.6: the
// origin server MUST send Allow in a 405).
func TestMethodNotAllowed(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/Patient/123", `{"resourceType":"Patient"}`},
		{"POST", "/Patient/123/_history", `{"resourceType":"Patient"}`},
		{"DELETE", "/Patient/123/_history/1", ""},
		{"PUT", "/Patient", `{"resourceType":"Patient"}`},
		{"DELETE", "/Patient", ""},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			r := e.Do(c.method, c.path, c.body)
			fxOutcome(t, r, http.StatusMethodNotAllowed)
			if r.Header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, func(c *rest.Config) { c.MaxBodyBytes = 1024 })
	big := `{"resourceType":"Patient","id":"big","name":[{"family":"` + strings.Repeat("x", 2000) + `"}]}`
	small := `{"resourceType":"Patient","id":"big","name":[{"family":"` + strings.Repeat("x", 100) + `"}]}`
	fxOutcome(t, e.Do("POST", "/Patient", big), http.StatusRequestEntityTooLarge)
	fxOutcome(t, e.Do("PUT", "/Patient/big", big), http.StatusRequestEntityTooLarge)

	// Without Content-Length (chunked): the limit still applies.
	req, err := http.NewRequest("PUT", e.URL+"/Patient/big", io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/fhir+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.ContentLength != -1 && req.ContentLength != 0 {
		t.Logf("note: request was not chunked")
	}
	fxOutcome(t, resp{Status: res.StatusCode, Header: res.Header, Body: b}, http.StatusRequestEntityTooLarge)

	fxOutcome(t, e.Do("GET", "/Patient/big", ""), http.StatusNotFound)
	fxStatus(t, e.Do("PUT", "/Patient/big", small), http.StatusCreated)
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	fxStatus(t, e.Do("PUT", "/Patient/a1", `{"resourceType":"Patient","id":"a1"}`), http.StatusCreated)

	expired, err := access.MintHS256(testSecret, access.Claims{Role: "integration", Org: "org1", Subject: "engine-1"}, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := access.MintHS256([]byte("another-secret-another-secret-another-secret"),
		access.Claims{Role: "integration", Org: "org1", Subject: "engine-1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	good := e.Token(access.Claims{Role: "integration", Org: "org1", Subject: "engine-1"})
	tampered := good[:len(good)-4] + "AAAA"
	if tampered == good {
		tampered = good[:len(good)-4] + "BBBB"
	}
	for _, c := range []struct {
		name, auth string
	}{
		{"no token", ""},
		{"garbage token", "Bearer garbage"},
		{"empty bearer", "Bearer "},
		{"basic auth", "Basic dXNlcjpwYXNz"},
		{"token without scheme", good},
		{"expired token", "Bearer " + expired},
		{"other key", "Bearer " + otherKey},
		{"tampered signature", "Bearer " + tampered},
		{"alg none", "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4Iiwicm9sZSI6ImFkbWluIn0."},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := fxStoredVersions(t, e)
			for _, rq := range []struct{ method, path, body string }{
				{"GET", "/Patient/a1", ""},
				{"POST", "/Patient", `{"resourceType":"Patient"}`},
				{"DELETE", "/Patient/a1", ""},
				{"GET", "/_history", ""},
			} {
				r := e.Do(rq.method, rq.path, rq.body, "Authorization", c.auth)
				fxOutcome(t, r, http.StatusUnauthorized)
				if r.Header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s %s: 401 without WWW-Authenticate", rq.method, rq.path)
				}
			}
			if after := fxStoredVersions(t, e); after != before {
				t.Errorf("versions stored went from %d to %d", before, after)
			}
		})
	}
}

func TestInterimAccessRule(t *testing.T) {
	e := newEnv(t)
	fxStatus(t, e.Do("PUT", "/Patient/p1", `{"resourceType":"Patient","id":"p1"}`), http.StatusCreated)

	forbidden := []struct {
		name   string
		claims access.Claims
	}{
		{"patient", access.Claims{Role: "patient", Subject: "pat-1", Patient: "p1"}},
		{"representative", access.Claims{Role: "representative", Subject: "rep-1", Patient: "p1"}},
		{"professional", access.Claims{Role: "professional", Subject: "doc-1", RPPS: "10001234567", Profession: "10"}},
		{"campaign", access.Claims{Role: "campaign", Subject: "camp-1"}},
	}
	requests := []struct{ method, path, body string }{
		{"GET", "/Patient/p1", ""},
		{"GET", "/Patient/p1/_history/1", ""},
		{"POST", "/Patient", `{"resourceType":"Patient"}`},
		{"PUT", "/Patient/p1", `{"resourceType":"Patient","id":"p1","gender":"male"}`},
		{"PUT", "/Patient/p-new", `{"resourceType":"Patient","id":"p-new"}`},
		{"DELETE", "/Patient/p1", ""},
		{"GET", "/Patient?_id=p1", ""},
		{"GET", "/Patient/p1/_history", ""},
		{"GET", "/_history", ""},
	}
	for _, c := range forbidden {
		t.Run(c.name, func(t *testing.T) {
			tok := e.Token(c.claims)
			before := fxStoredVersions(t, e)
			for _, rq := range requests {
				r := e.Do(rq.method, rq.path, rq.body, "Authorization", "Bearer "+tok)
				if r.Status != http.StatusForbidden {
					t.Errorf("%s %s as %s: status %d, want 403: %s", rq.method, rq.path, c.name, r.Status, r.Body)
					continue
				}
				fxIsOutcome(t, r)
			}
			r := e.Do("PATCH", "/Patient/p1", `[{"op":"add","path":"/active","value":true}]`,
				"Authorization", "Bearer "+tok, "Content-Type", fxPatchCT)
			fxOutcome(t, r, http.StatusForbidden)
			if after := fxStoredVersions(t, e); after != before {
				t.Errorf("versions stored went from %d to %d", before, after)
			}
			fxWantETag(t, e, "/Patient/p1", `W/"1"`)
		})
	}

	t.Run("admin", func(t *testing.T) {
		h := []string{"Authorization", "Bearer " + e.Token(access.Claims{Role: "admin", Subject: "admin-1"})}
		fxStatus(t, e.Do("GET", "/Patient/p1", "", h...), http.StatusOK)
		fxStatus(t, e.Do("POST", "/Patient", `{"resourceType":"Patient"}`, h...), http.StatusCreated)
		fxStatus(t, e.Do("PUT", "/Patient/p1", `{"resourceType":"Patient","id":"p1","gender":"male"}`, h...), http.StatusOK)
		fxStatus(t, e.Do("GET", "/Patient/p1/_history", "", h...), http.StatusOK)
		fxStatus(t, e.Do("GET", "/Patient?_id=p1", "", h...), http.StatusOK)
		fxStatus(t, e.Do("DELETE", "/Patient/p1", "", h...), http.StatusNoContent)
	})
}

// TestNoServerErrors sends malformed requests: each must be refused with
// a 4xx and an OperationOutcome, and store nothing.
func TestNoServerErrors(t *testing.T) {
	e := newEnv(t)
	fxStatus(t, e.Do("PUT", "/Patient/f1", `{"resourceType":"Patient","id":"f1"}`), http.StatusCreated)

	nest := func(n int, open, close string) string { return strings.Repeat(open, n) + strings.Repeat(close, n) }
	deepExt := func(n int) string {
		return strings.Repeat(`{"url":"http://x","extension":[`, n) + `{"url":"http://x","valueString":"leaf"}` + strings.Repeat(`]}`, n)
	}
	patchCT := []string{"Content-Type", fxPatchCT}

	cases := []struct {
		name, method, path, body string
		hdr                      []string
		raw                      bool // send path as the raw request-target
	}{
		{"garbage body", "POST", "/Patient", "garbage", nil, false},
		{"binary body", "POST", "/Patient", "\x00\x01\x02\xff\xfe", nil, false},
		{"open brace", "POST", "/Patient", "{", nil, false},
		{"JSON array", "POST", "/Patient", `[{"resourceType":"Patient"}]`, nil, false},
		{"JSON null", "POST", "/Patient", `null`, nil, false},
		{"JSON number", "PUT", "/Patient/f1", `42`, nil, false},
		{"JSON string", "POST", "/Patient", `"Patient"`, nil, false},
		{"JSON true", "POST", "/Patient", `true`, nil, false},
		{"empty object", "POST", "/Patient", `{}`, nil, false},
		{"resourceType number", "POST", "/Patient", `{"resourceType":42}`, nil, false},
		{"resourceType null", "POST", "/Patient", `{"resourceType":null}`, nil, false},
		{"two objects", "POST", "/Patient", `{"resourceType":"Patient"}{"resourceType":"Patient"}`, nil, false},
		{"duplicate member", "POST", "/Patient", `{"resourceType":"Patient","gender":"male","gender":"female"}`, nil, false},
		{"null element", "POST", "/Patient", `{"resourceType":"Patient","gender":null}`, nil, false},
		{"empty string code", "POST", "/Patient", `{"resourceType":"Patient","gender":""}`, nil, false},
		{"bad date", "POST", "/Patient", `{"resourceType":"Patient","birthDate":"1970-13-45"}`, nil, false},
		{"extension without url", "POST", "/Patient", `{"resourceType":"Patient","extension":[{"valueString":"x"}]}`, nil, false},
		{"extension without value (ext-1)", "POST", "/Patient", `{"resourceType":"Patient","extension":[{"url":"http://x"}]}`, nil, false},
		{"empty element (ele-1)", "POST", "/Patient", `{"resourceType":"Patient","name":[{}]}`, nil, false},
		{"invalid UTF-8 in string", "POST", "/Patient", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"\xff\xfe\"}]}", nil, false},
		{"nested arrays 10000 deep", "POST", "/Patient", `{"resourceType":"Patient","extension":` + nest(10000, "[", "]") + `}`, nil, false},
		{"nested objects 10000 deep", "POST", "/Patient", `{"resourceType":"Patient","extension":[` + strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000) + `]}`, nil, false},
		{"top-level arrays 10000 deep", "POST", "/Patient", nest(10000, "[", "]"), nil, false},
		{"number id in body", "PUT", "/Patient/f1", `{"resourceType":"Patient","id":1}`, nil, false},
		{"id with space in body", "PUT", "/Patient/f1", `{"resourceType":"Patient","id":"f 1"}`, nil, false},
		{"huge id read", "GET", "/Patient/" + strings.Repeat("a", 10000), "", nil, false},
		{"huge id update", "PUT", "/Patient/" + strings.Repeat("a", 65), `{"resourceType":"Patient","id":"` + strings.Repeat("a", 65) + `"}`, nil, false},
		{"huge id delete", "DELETE", "/Patient/" + strings.Repeat("a", 300), "", nil, false},
		{"id with space read", "GET", "/Patient/a%20b", "", nil, false},
		{"id with space update", "PUT", "/Patient/a%20b", `{"resourceType":"Patient","id":"a b"}`, nil, false},
		{"dot-dot id", "GET", "/Patient/..", "", nil, true},
		{"dot-dot traversal", "GET", "/fhir/Patient/../../metrics", "", nil, true},
		{"encoded slash", "GET", "/fhir/Patient/a%2Fb", "", nil, true},
		{"encoded NUL", "GET", "/fhir/Patient/%00", "", nil, true},
		{"encoded invalid UTF-8", "GET", "/fhir/Patient/%ff%fe", "", nil, true},
		{"encoded junk in vid", "GET", "/fhir/Patient/f1/_history/%ff", "", nil, true},
		{"junk query in conditional delete", "DELETE", "/fhir/Patient?identifier=%zz", "", nil, true},
		{"junk If-None-Exist", "POST", "/Patient", `{"resourceType":"Patient"}`, []string{"If-None-Exist", "%%%"}, false},
		{"junk If-Match", "PUT", "/Patient/f1", `{"resourceType":"Patient","id":"f1"}`, []string{"If-Match", "\"\"\"\""}, false},
		{"huge _count", "GET", "/_history?_count=99999999999999999999999", "", nil, false},
		{"extra path segment", "GET", "/Patient/f1/_history/1/extra", "", nil, false},
		{"unknown operation path", "GET", "/Patient/f1/foo", "", nil, false},
		{"empty patch", "PATCH", "/Patient/f1", "", patchCT, false},
		{"patch null", "PATCH", "/Patient/f1", "null", patchCT, false},
		{"patch deep nesting", "PATCH", "/Patient/f1", `[{"op":"add","path":"/extension","value":` + nest(10000, "[", "]") + `}]`, patchCT, false},
		{"patch huge index", "PATCH", "/Patient/f1", `[{"op":"add","path":"/name/99999999999999999999","value":{}}]`, patchCT, false},
		{"patch pointer junk", "PATCH", "/Patient/f1", `[{"op":"add","path":"name~2","value":{}}]`, patchCT, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := fxStoredVersions(t, e)
			var r resp
			if c.raw {
				hdr := c.hdr
				if c.body != "" {
					hdr = append([]string{"Content-Type", "application/fhir+json"}, hdr...)
				}
				r = fxRaw(t, e, c.method, c.path, c.body, hdr...)
			} else {
				r = e.Do(c.method, c.path, c.body, c.hdr...)
			}
			if r.Status < 400 || r.Status > 499 {
				t.Errorf("status %d, want 4xx: %.300s", r.Status, r.Body)
				return
			}
			issues := fxIsOutcome(t, r)
			t.Logf("%d %s: %.120s", r.Status, fxStr(issues, 0, "code"), fxStr(issues, 0, "diagnostics"))
			if after := fxStoredVersions(t, e); after != before {
				t.Errorf("versions stored went from %d to %d", before, after)
			}
		})
	}

	// Valid but deep resources: not malformed, but they must not fail
	// with a 5xx either.
	for _, n := range []int{50, 200} {
		t.Run(fmt.Sprintf("valid extension nesting %d", n), func(t *testing.T) {
			r := e.Do("POST", "/Patient", `{"resourceType":"Patient","extension":[`+deepExt(n)+`]}`)
			if r.Status >= 500 {
				t.Errorf("status %d: %.300s", r.Status, r.Body)
			}
		})
	}
	fxWantETag(t, e, "/Patient/f1", `W/"1"`)
}
