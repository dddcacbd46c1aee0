package rest_test

import (
	"bytes"
	"net/http"
	"testing"
)

const fxPatchCT = "application/json-patch+json"

func TestPatch(t *testing.T) {
	e := newEnv(t)
	const p1 = `{"resourceType":"Patient","id":"pa","gender":"male","active":true,"name":[{"family":"Martin","given":["Paul"]}]}`

	// Patches that must be refused, each on a resource at version 1: the
	// stored resource must not change.
	refused := []struct {
		name  string
		patch string
		want  []int
	}{
		{"invalid result: gender robot", `[{"op":"replace","path":"/gender","value":"robot"}]`, []int{400}},
		{"invalid result: unknown element", `[{"op":"add","path":"/colour","value":"blue"}]`, []int{400}},
		{"invalid result: wrong type", `[{"op":"replace","path":"/active","value":"yes"}]`, []int{400}},
		{"invalid result: null", `[{"op":"replace","path":"/gender","value":null}]`, []int{400}},
		{"changes id", `[{"op":"replace","path":"/id","value":"other"}]`, []int{400}},
		{"removes id", `[{"op":"remove","path":"/id"}]`, []int{400}},
		{"changes resourceType", `[{"op":"replace","path":"/resourceType","value":"Group"}]`, []int{400}},
		// R4: 422 for a patch that cannot be applied; 400 allowed.
		{"failed test op", `[{"op":"test","path":"/gender","value":"female"},{"op":"replace","path":"/active","value":false}]`, []int{400, 422}},
		{"remove of a missing path", `[{"op":"remove","path":"/birthDate"}]`, []int{400, 422}},
		{"replace of a missing path", `[{"op":"replace","path":"/birthDate","value":"1970-01-01"}]`, []int{400, 422}},
		{"index out of range", `[{"op":"replace","path":"/name/5/family","value":"X"}]`, []int{400, 422}},
		{"unknown op", `[{"op":"frobnicate","path":"/gender","value":"female"}]`, []int{400, 422}},
		{"op without path", `[{"op":"replace","value":"female"}]`, []int{400, 422}},
		{"not an array", `{"op":"replace","path":"/gender","value":"female"}`, []int{400, 422}},
		{"not JSON", `replace gender`, []int{400, 422}},
		{"a resource instead of a patch", p1, []int{400, 422}},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			fxStatus(t, e.Do("PUT", "/Patient/pa", p1), http.StatusCreated, http.StatusOK)
			before := fxWantETag(t, e, "/Patient/pa", `W/"1"`)
			fxOutcome(t, e.Do("PATCH", "/Patient/pa", c.patch, "Content-Type", fxPatchCT), c.want...)
			after := fxWantETag(t, e, "/Patient/pa", `W/"1"`)
			if !bytes.Equal(before.Body, after.Body) {
				t.Errorf("refused patch changed the resource:\n%s\n%s", before.Body, after.Body)
			}
		})
	}

	t.Run("replace", func(t *testing.T) {
		fxStatus(t, e.Do("PUT", "/Patient/pb", `{"resourceType":"Patient","id":"pb","gender":"male"}`), http.StatusCreated)
		r := e.Do("PATCH", "/Patient/pb", `[{"op":"replace","path":"/gender","value":"female"}]`, "Content-Type", fxPatchCT)
		fxStatus(t, r, http.StatusOK)
		fxCheckWrite(t, e, r, "Patient", "pb", "2")
		if fxStr(fxObj(t, r.Body), "gender") != "female" {
			t.Errorf("patched body: %s", r.Body)
		}
		g := fxWantETag(t, e, "/Patient/pb", `W/"2"`)
		if !bytes.Equal(g.Body, r.Body) {
			t.Errorf("GET after patch:\n got %s\nwant %s", g.Body, r.Body)
		}
		h := fxGetBundle(t, e, "/Patient/pb/_history", "history")
		if len(h.Entry) != 2 || h.Entry[0].Request.Method != "PATCH" {
			t.Errorf("history after patch: %d entries, newest method %+v", len(h.Entry), h.Entry[0].Request)
		}

		// A passing test op, then an add.
		r = e.Do("PATCH", "/Patient/pb", `[{"op":"test","path":"/gender","value":"female"},{"op":"add","path":"/birthDate","value":"1970-01-01"}]`,
			"Content-Type", fxPatchCT)
		fxStatus(t, r, http.StatusOK)
		if r.Header.Get("ETag") != `W/"3"` || fxStr(fxObj(t, r.Body), "birthDate") != "1970-01-01" {
			t.Errorf("test+add: ETag %s body %s", r.Header.Get("ETag"), r.Body)
		}
		// A patch that changes nothing makes no version.
		r = e.Do("PATCH", "/Patient/pb", `[{"op":"replace","path":"/gender","value":"female"}]`, "Content-Type", fxPatchCT)
		fxStatus(t, r, http.StatusOK)
		fxWantETag(t, e, "/Patient/pb", `W/"3"`)
		// Patch with If-Match.
		fxOutcome(t, e.Do("PATCH", "/Patient/pb", `[{"op":"replace","path":"/gender","value":"male"}]`,
			"Content-Type", fxPatchCT, "If-Match", `W/"2"`), http.StatusPreconditionFailed)
		fxWantETag(t, e, "/Patient/pb", `W/"3"`)
		r = e.Do("PATCH", "/Patient/pb", `[{"op":"replace","path":"/gender","value":"male"}]`,
			"Content-Type", fxPatchCT, "If-Match", `W/"3"`)
		fxStatus(t, r, http.StatusOK)
		fxWantETag(t, e, "/Patient/pb", `W/"4"`)
	})

	t.Run("media type", func(t *testing.T) {
		fxStatus(t, e.Do("PUT", "/Patient/pc", `{"resourceType":"Patient","id":"pc","gender":"male"}`), http.StatusCreated)
		for _, ct := range []string{"application/fhir+json", "application/json", "text/plain"} {
			fxOutcome(t, e.Do("PATCH", "/Patient/pc", `[{"op":"replace","path":"/gender","value":"female"}]`, "Content-Type", ct),
				http.StatusUnsupportedMediaType)
		}
		fxWantETag(t, e, "/Patient/pc", `W/"1"`)
	})

	t.Run("missing resource", func(t *testing.T) {
		fxOutcome(t, e.Do("PATCH", "/Patient/missing", `[{"op":"replace","path":"/gender","value":"female"}]`,
			"Content-Type", fxPatchCT), http.StatusNotFound)
		fxOutcome(t, e.Do("GET", "/Patient/missing", ""), http.StatusNotFound)
	})
}
