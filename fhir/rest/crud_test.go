package rest_test

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fxCheckWrite checks ETag, Last-Modified and Location of a write
// answer against the version it reports and against the body's meta.
func fxCheckWrite(t *testing.T, e *env, r resp, typ, id, vid string) {
	t.Helper()
	if got, want := r.Header.Get("ETag"), `W/"`+vid+`"`; got != want {
		t.Errorf("ETag %q, want %q", got, want)
	}
	if got, want := r.Header.Get("Location"), e.URL+"/"+typ+"/"+id+"/_history/"+vid; got != want {
		t.Errorf("Location %q, want %q", got, want)
	}
	lm, err := http.ParseTime(r.Header.Get("Last-Modified"))
	if err != nil {
		t.Errorf("Last-Modified %q: %v", r.Header.Get("Last-Modified"), err)
	}
	if len(r.Body) == 0 {
		return
	}
	m := fxObj(t, r.Body)
	if got := fxStr(m, "meta", "versionId"); got != vid {
		t.Errorf("meta.versionId %q, want %q", got, vid)
	}
	lu, err := time.Parse(time.RFC3339Nano, fxStr(m, "meta", "lastUpdated"))
	if err != nil {
		t.Errorf("meta.lastUpdated %q: %v", fxStr(m, "meta", "lastUpdated"), err)
	} else if !lu.Truncate(time.Second).Equal(lm) {
		t.Errorf("Last-Modified %v does not match meta.lastUpdated %v", lm, lu)
	}
	if got := fxStr(m, "id"); got != id {
		t.Errorf("id %q, want %q", got, id)
	}
	if got := fxStr(m, "resourceType"); got != typ {
		t.Errorf("resourceType %q, want %q", got, typ)
	}
}

func TestCreateAssignsServerID(t *testing.T) {
	e := newEnv(t)
	body := `{"resourceType":"Patient","id":"client-chosen","gender":"female","birthDate":"1980-02-03"}`
	r := e.Do("POST", "/Patient", body)
	fxStatus(t, r, http.StatusCreated)
	m := fxObj(t, r.Body)
	id := fxStr(m, "id")
	if id == "" || id == "client-chosen" {
		t.Fatalf("create: id %q, want a server-assigned id (the body's id is ignored)", id)
	}
	fxCheckWrite(t, e, r, "Patient", id, "1")
	if fxStr(m, "gender") != "female" || fxStr(m, "birthDate") != "1980-02-03" {
		t.Errorf("create changed the content: %s", r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Errorf("Content-Type %q", ct)
	}

	g := e.Do("GET", "/Patient/"+id, "")
	fxStatus(t, g, http.StatusOK)
	if !bytes.Equal(g.Body, r.Body) {
		t.Errorf("GET returns other bytes than the create:\ncreate: %s\nget:    %s", r.Body, g.Body)
	}
	if g.Header.Get("ETag") != `W/"1"` || g.Header.Get("Last-Modified") != r.Header.Get("Last-Modified") {
		t.Errorf("GET headers: ETag %q Last-Modified %q, create had %q %q", g.Header.Get("ETag"),
			g.Header.Get("Last-Modified"), r.Header.Get("ETag"), r.Header.Get("Last-Modified"))
	}
	if ct := g.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Errorf("GET Content-Type %q", ct)
	}
	fxOutcome(t, e.Do("GET", "/Observation/"+id, ""), http.StatusNotFound)
	// The id in the body named nothing.
	fxOutcome(t, e.Do("GET", "/Patient/client-chosen", ""), http.StatusNotFound)

	// A second create makes another resource.
	r2 := e.Do("POST", "/Patient", body)
	fxStatus(t, r2, http.StatusCreated)
	if id2 := fxStr(fxObj(t, r2.Body), "id"); id2 == id || id2 == "" {
		t.Errorf("second create: id %q (first %q)", id2, id)
	}
}

func TestUpdateCreatesThenVersions(t *testing.T) {
	e := newEnv(t)
	v1 := `{"resourceType":"Patient","id":"u1","gender":"male","name":[{"family":"Martin"}]}`
	v2 := `{"resourceType":"Patient","id":"u1","gender":"female","name":[{"family":"Martin"}]}`

	r1 := e.Do("PUT", "/Patient/u1", v1)
	fxStatus(t, r1, http.StatusCreated)
	fxCheckWrite(t, e, r1, "Patient", "u1", "1")

	r2 := e.Do("PUT", "/Patient/u1", v2)
	fxStatus(t, r2, http.StatusOK)
	fxCheckWrite(t, e, r2, "Patient", "u1", "2")
	if fxStr(fxObj(t, r2.Body), "gender") != "female" {
		t.Errorf("update body: %s", r2.Body)
	}

	g := fxWantETag(t, e, "/Patient/u1", `W/"2"`)
	if !bytes.Equal(g.Body, r2.Body) {
		t.Errorf("GET after update:\n got %s\nwant %s", g.Body, r2.Body)
	}
	for _, c := range []struct {
		vid  string
		want []byte
	}{{"1", r1.Body}, {"2", r2.Body}} {
		vr := e.Do("GET", "/Patient/u1/_history/"+c.vid, "")
		fxStatus(t, vr, http.StatusOK)
		if !bytes.Equal(vr.Body, c.want) {
			t.Errorf("vread %s:\n got %s\nwant %s", c.vid, vr.Body, c.want)
		}
		if got := vr.Header.Get("ETag"); got != `W/"`+c.vid+`"` {
			t.Errorf("vread %s: ETag %q", c.vid, got)
		}
	}
	for _, bad := range []string{"3", "0", "99999", "abc", "-1", "1.0", "99999999999999999999999"} {
		fxOutcome(t, e.Do("GET", "/Patient/u1/_history/"+bad, ""), http.StatusNotFound)
	}
	// vread of a resource that does not exist
	fxOutcome(t, e.Do("GET", "/Patient/nope/_history/1", ""), http.StatusNotFound)
	// read of a resource that does not exist
	fxOutcome(t, e.Do("GET", "/Patient/nope", ""), http.StatusNotFound)

	h := fxGetBundle(t, e, "/Patient/u1/_history", "history")
	if *h.Total != 2 || len(h.Entry) != 2 {
		t.Fatalf("history: total %d, %d entries, want 2", *h.Total, len(h.Entry))
	}
	if h.Entry[0].Response.Etag != `W/"2"` || h.Entry[1].Response.Etag != `W/"1"` {
		t.Errorf("history order: %s, %s", h.Entry[0].Response.Etag, h.Entry[1].Response.Etag)
	}
	if h.Entry[0].Request.Method != "PUT" || h.Entry[1].Request.Method != "PUT" {
		t.Errorf("history methods: %s, %s", h.Entry[0].Request.Method, h.Entry[1].Request.Method)
	}
}

func TestUpdateIdenticalContentIsNoOp(t *testing.T) {
	e := newEnv(t)
	const orig = `{"resourceType":"Patient","id":"ID","active":true,"gender":"male","name":[{"family":"Doe","given":["John","Q"]}],"birthDate":"1970-01-01"}`
	cases := []struct {
		name string
		body string
	}{
		{"same bytes", orig},
		{"reordered and spaced", `{
			"birthDate" : "1970-01-01",
			"name" : [ { "given" : [ "John", "Q" ], "family" : "Doe" } ],
			"gender": "male",  "active" : true,
			"id": "ID",
			"resourceType": "Patient"
		}`},
		{"other server meta", `{"resourceType":"Patient","id":"ID","meta":{"versionId":"7","lastUpdated":"2001-01-01T00:00:00Z"},"active":true,"gender":"male","name":[{"family":"Doe","given":["John","Q"]}],"birthDate":"1970-01-01"}`},
		{"only versionId in meta", `{"meta":{"versionId":"1"},"resourceType":"Patient","id":"ID","active":true,"gender":"male","name":[{"family":"Doe","given":["John","Q"]}],"birthDate":"1970-01-01"}`},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := "noop" + string(rune('a'+i))
			path := "/Patient/" + id
			r1 := e.Do("PUT", path, strings.ReplaceAll(orig, `"ID"`, `"`+id+`"`))
			fxStatus(t, r1, http.StatusCreated)
			r2 := e.Do("PUT", path, strings.ReplaceAll(c.body, `"ID"`, `"`+id+`"`))
			fxStatus(t, r2, http.StatusOK)
			if got := r2.Header.Get("ETag"); got != `W/"1"` {
				t.Errorf("identical update: ETag %q, want W/\"1\" (no new version)", got)
			}
			if got := fxStr(fxObj(t, r2.Body), "meta", "versionId"); got != "1" {
				t.Errorf("identical update: meta.versionId %q, want 1", got)
			}
			g := fxWantETag(t, e, path, `W/"1"`)
			if !bytes.Equal(g.Body, r1.Body) {
				t.Errorf("stored content changed:\n got %s\nwant %s", g.Body, r1.Body)
			}
			if n := fxTotal(t, e, path+"/_history", "history"); n != 1 {
				t.Errorf("history has %d entries, want 1", n)
			}
		})
	}
	// Control: a real change (array order matters in JSON) makes a version.
	t.Run("array order is content", func(t *testing.T) {
		path := "/Patient/noop-control"
		fxStatus(t, e.Do("PUT", path, strings.ReplaceAll(orig, `"ID"`, `"noop-control"`)), http.StatusCreated)
		changed := strings.ReplaceAll(strings.ReplaceAll(orig, `"ID"`, `"noop-control"`), `["John","Q"]`, `["Q","John"]`)
		r := e.Do("PUT", path, changed)
		fxStatus(t, r, http.StatusOK)
		if r.Header.Get("ETag") != `W/"2"` {
			t.Errorf("changed update: ETag %q, want W/\"2\"", r.Header.Get("ETag"))
		}
	})
}

func TestDeleteLifecycle(t *testing.T) {
	e := newEnv(t)
	fxStatus(t, e.Do("PUT", "/Patient/d1", `{"resourceType":"Patient","id":"d1","gender":"male"}`), http.StatusCreated)
	fxStatus(t, e.Do("PUT", "/Patient/d1", `{"resourceType":"Patient","id":"d1","gender":"female"}`), http.StatusOK)

	r := e.Do("DELETE", "/Patient/d1", "")
	fxStatus(t, r, http.StatusNoContent)
	if len(r.Body) != 0 {
		t.Errorf("204 with a body: %s", r.Body)
	}
	fxOutcome(t, e.Do("GET", "/Patient/d1", ""), http.StatusGone)
	if hd := e.Do("HEAD", "/Patient/d1", ""); hd.Status != http.StatusGone || len(hd.Body) != 0 {
		t.Errorf("HEAD of a deleted resource: %d %q", hd.Status, hd.Body)
	}
	// Older versions stay readable; the deletion version is gone.
	fxStatus(t, e.Do("GET", "/Patient/d1/_history/2", ""), http.StatusOK)
	fxOutcome(t, e.Do("GET", "/Patient/d1/_history/3", ""), http.StatusGone)

	h := fxGetBundle(t, e, "/Patient/d1/_history", "history")
	if *h.Total != 3 || len(h.Entry) != 3 {
		t.Fatalf("history after delete: total %d, %d entries, want 3", *h.Total, len(h.Entry))
	}
	del := h.Entry[0]
	if del.Request == nil || del.Request.Method != "DELETE" {
		t.Errorf("newest history entry is not a DELETE: %+v", del.Request)
	}
	if len(del.Resource) != 0 {
		t.Errorf("delete entry carries a resource: %s", del.Resource)
	}
	if del.Request != nil && del.Request.URL != "Patient/d1" {
		t.Errorf("delete entry request.url %q", del.Request.URL)
	}

	// Deleting again succeeds; deleting what never existed is 404, like
	// deleting what the requester may not see (secrecy: hidden = absent).
	fxStatus(t, e.Do("DELETE", "/Patient/d1", ""), http.StatusNoContent, http.StatusOK)
	fxOutcome(t, e.Do("DELETE", "/Patient/never-existed", ""), http.StatusNotFound)
	fxOutcome(t, e.Do("GET", "/Patient/never-existed", ""), http.StatusNotFound)

	// A PUT after the delete recreates the resource with the next version.
	h = fxGetBundle(t, e, "/Patient/d1/_history", "history")
	next := *h.Total + 1
	rc := e.Do("PUT", "/Patient/d1", `{"resourceType":"Patient","id":"d1","gender":"other"}`)
	fxStatus(t, rc, http.StatusCreated)
	vid := strconv.Itoa(next)
	fxCheckWrite(t, e, rc, "Patient", "d1", vid)
	g := fxWantETag(t, e, "/Patient/d1", `W/"`+vid+`"`)
	if fxStr(fxObj(t, g.Body), "gender") != "other" {
		t.Errorf("recreated content: %s", g.Body)
	}

	// HEAD: status and headers, no body.
	hd := e.Do("HEAD", "/Patient/d1", "")
	fxStatus(t, hd, http.StatusOK)
	if len(hd.Body) != 0 {
		t.Errorf("HEAD has a body: %q", hd.Body)
	}
	if hd.Header.Get("ETag") != `W/"`+vid+`"` {
		t.Errorf("HEAD ETag %q", hd.Header.Get("ETag"))
	}
	fxStatus(t, e.Do("HEAD", "/Patient/no-such", ""), http.StatusNotFound)
}

func TestDecimalPrecision(t *testing.T) {
	e := newEnv(t)
	body := `{"resourceType":"Observation","id":"dec1","extension":[{"url":"http://example.org/x","valueDecimal":1.50000000000000000001}],` +
		`"status":"final","code":{"text":"weight"},"valueQuantity":{"value":0.10,"unit":"kg"}}`
	want := []string{`"valueDecimal":1.50000000000000000001`, `"value":0.10`}
	check := func(what string, b []byte) {
		t.Helper()
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				t.Errorf("%s: %s not kept verbatim: %s", what, w, b)
			}
		}
	}
	r := e.Do("PUT", "/Observation/dec1", body)
	fxStatus(t, r, http.StatusCreated)
	check("PUT answer", r.Body)
	check("GET", fxWantETag(t, e, "/Observation/dec1", `W/"1"`).Body)
	check("vread", e.Do("GET", "/Observation/dec1/_history/1", "").Body)
	check("history", e.Do("GET", "/Observation/dec1/_history", "").Body)
	check("search", e.Do("GET", "/Observation?_id=dec1", "").Body)

	p := e.Do("POST", "/Observation", body)
	fxStatus(t, p, http.StatusCreated)
	check("POST answer", p.Body)
	id := fxStr(fxObj(t, p.Body), "id")
	check("GET after POST", e.Do("GET", "/Observation/"+id, "").Body)

	// A patch keeps the numbers it does not touch, and writes the ones it
	// adds as sent.
	pr := e.Do("PATCH", "/Observation/dec1", `[{"op":"replace","path":"/status","value":"amended"},`+
		`{"op":"add","path":"/valueQuantity/system","value":"http://unitsofmeasure.org"},`+
		`{"op":"add","path":"/extension/-","value":{"url":"http://example.org/y","valueDecimal":2.000}}]`,
		"Content-Type", fxPatchCT)
	fxStatus(t, pr, http.StatusOK)
	check("PATCH answer", pr.Body)
	if !bytes.Contains(pr.Body, []byte(`"valueDecimal":2.000`)) {
		t.Errorf("patched-in decimal 2.000 not kept verbatim: %s", pr.Body)
	}
}

func TestPrefer(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		prefer string
		check  func(t *testing.T, r resp)
	}{
		{"return=minimal", func(t *testing.T, r resp) {
			if len(r.Body) != 0 {
				t.Errorf("body with return=minimal: %s", r.Body)
			}
		}},
		{"return=representation", func(t *testing.T, r resp) {
			if fxStr(fxObj(t, r.Body), "resourceType") != "Patient" {
				t.Errorf("return=representation: %s", r.Body)
			}
		}},
		{"return=OperationOutcome", func(t *testing.T, r resp) { fxIsOutcome(t, r) }},
		{"", func(t *testing.T, r resp) {
			if fxStr(fxObj(t, r.Body), "resourceType") != "Patient" {
				t.Errorf("no Prefer: %s", r.Body)
			}
		}},
	}
	for i, c := range cases {
		t.Run(c.prefer, func(t *testing.T) {
			r := e.Do("POST", "/Patient", `{"resourceType":"Patient","gender":"male"}`, "Prefer", c.prefer)
			fxStatus(t, r, http.StatusCreated)
			loc := r.Header.Get("Location")
			if !strings.HasPrefix(loc, e.URL+"/Patient/") || !strings.HasSuffix(loc, "/_history/1") {
				t.Errorf("Location %q", loc)
			}
			if r.Header.Get("ETag") != `W/"1"` || r.Header.Get("Last-Modified") == "" {
				t.Errorf("headers: ETag %q Last-Modified %q", r.Header.Get("ETag"), r.Header.Get("Last-Modified"))
			}
			c.check(t, r)

			id := "pref" + string(rune('a'+i))
			fxStatus(t, e.Do("PUT", "/Patient/"+id, `{"resourceType":"Patient","id":"`+id+`"}`), http.StatusCreated)
			u := e.Do("PUT", "/Patient/"+id, `{"resourceType":"Patient","id":"`+id+`","active":true}`, "Prefer", c.prefer)
			fxStatus(t, u, http.StatusOK)
			if u.Header.Get("ETag") != `W/"2"` || u.Header.Get("Location") == "" {
				t.Errorf("update headers: ETag %q Location %q", u.Header.Get("ETag"), u.Header.Get("Location"))
			}
			c.check(t, u)
		})
	}
}

func TestMetadataAndProbes(t *testing.T) {
	e := newEnv(t)
	r := e.Do("GET", "/metadata", "", "Authorization", "")
	fxStatus(t, r, http.StatusOK)
	m := fxObj(t, r.Body)
	if m["resourceType"] != "CapabilityStatement" || m["fhirVersion"] != "4.0.1" {
		t.Fatalf("metadata: resourceType %v fhirVersion %v", m["resourceType"], m["fhirVersion"])
	}
	var patient map[string]any
	for _, res := range fxAt(m, "rest", 0, "resource").([]any) {
		if fxStr(res, "type") == "Patient" {
			patient = res.(map[string]any)
		}
	}
	if patient == nil {
		t.Fatal("CapabilityStatement does not list Patient")
	}
	have := map[string]bool{}
	for _, in := range patient["interaction"].([]any) {
		have[fxStr(in, "code")] = true
	}
	for _, want := range []string{"read", "vread", "update", "patch", "delete", "create", "history-instance", "history-type", "search-type"} {
		if !have[want] {
			t.Errorf("Patient interaction %s missing", want)
		}
	}
	if patient["conditionalCreate"] != true {
		t.Errorf("conditionalCreate %v", patient["conditionalCreate"])
	}
	// With a token too, and with _format=json.
	fxStatus(t, e.Do("GET", "/metadata?_format=json", ""), http.StatusOK)

	root := strings.TrimSuffix(e.URL, "/fhir")
	fxStatus(t, e.Do("GET", root+"/healthz", "", "Authorization", ""), http.StatusOK)
	fxStatus(t, e.Do("GET", root+"/readyz", "", "Authorization", ""), http.StatusOK)
	// make sure a store operation was observed
	fxStatus(t, e.Do("GET", "/Patient/x", ""), http.StatusNotFound)
	mr := e.Do("GET", root+"/metrics", "", "Authorization", "")
	fxStatus(t, mr, http.StatusOK)
	for _, name := range []string{"dossier_http_request_duration_seconds", "dossier_store_operation_duration_seconds"} {
		if !bytes.Contains(mr.Body, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
}

// TestCreateServerMeta: the server owns meta.versionId and
// meta.lastUpdated; other meta elements are the client's.
func TestCreateServerMeta(t *testing.T) {
	e := newEnv(t)
	before := time.Now()
	r := e.Do("POST", "/Patient", `{"resourceType":"Patient","meta":{"versionId":"7","lastUpdated":"2001-01-01T00:00:00Z",`+
		`"profile":["http://example.org/StructureDefinition/p"],"tag":[{"system":"http://example.org/t","code":"x"}]},"gender":"male"}`)
	fxStatus(t, r, http.StatusCreated)
	m := fxObj(t, r.Body)
	if fxStr(m, "meta", "versionId") != "1" {
		t.Errorf("meta.versionId %q, want 1", fxStr(m, "meta", "versionId"))
	}
	lu, err := time.Parse(time.RFC3339Nano, fxStr(m, "meta", "lastUpdated"))
	if err != nil || lu.Before(before.Add(-time.Second)) || lu.After(time.Now().Add(time.Second)) {
		t.Errorf("meta.lastUpdated %q is not the time of the write (%v)", fxStr(m, "meta", "lastUpdated"), err)
	}
	if fxStr(m, "meta", "profile", 0) != "http://example.org/StructureDefinition/p" || fxStr(m, "meta", "tag", 0, "code") != "x" {
		t.Errorf("client meta lost: %s", r.Body)
	}
}

func TestContentNegotiation(t *testing.T) {
	e := newEnv(t)
	fxStatus(t, e.Do("PUT", "/Patient/cn", `{"resourceType":"Patient","id":"cn"}`), http.StatusCreated)
	for _, accept := range []string{
		"application/fhir+json", "application/json", "*/*", "application/*",
		"application/fhir+json; fhirVersion=4.0", "application/fhir+json;charset=utf-8",
		"application/fhir+xml;q=0.9, application/fhir+json;q=0.8", "text/html, */*;q=0.1", "application/json+fhir",
	} {
		r := e.Do("GET", "/Patient/cn", "", "Accept", accept)
		if r.Status != http.StatusOK {
			t.Errorf("Accept %q: status %d", accept, r.Status)
		}
	}
	for _, f := range []string{"json", "application/json", "application%2Ffhir%2Bjson"} {
		if r := e.Do("GET", "/Patient/cn?_format="+f, ""); r.Status != http.StatusOK {
			t.Errorf("_format=%s: status %d", f, r.Status)
		}
	}
	for _, ct := range []string{"application/fhir+json", "application/fhir+json; charset=utf-8", "application/json", "application/json;charset=UTF-8"} {
		if r := e.Do("POST", "/Patient", `{"resourceType":"Patient"}`, "Content-Type", ct); r.Status != http.StatusCreated {
			t.Errorf("Content-Type %q: status %d %s", ct, r.Status, r.Body)
		}
	}
	for _, accept := range []string{"application/fhir+json;q=0, text/plain", "application/xml"} {
		fxOutcome(t, e.Do("GET", "/Patient/cn", "", "Accept", accept), http.StatusNotAcceptable)
	}
}
