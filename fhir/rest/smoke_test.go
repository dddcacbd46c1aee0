package rest_test

import (
	"net/http"
	"testing"
)

func TestSmokeCreateRead(t *testing.T) {
	e := newEnv(t)
	r := e.Do("PUT", "/Patient/p1", `{"resourceType":"Patient","id":"p1","gender":"male"}`)
	if r.Status != http.StatusCreated {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}
	r = e.Do("GET", "/Patient/p1", "")
	if r.Status != http.StatusOK || r.Header.Get("ETag") != `W/"1"` {
		t.Fatalf("get: %d %v %s", r.Status, r.Header, r.Body)
	}
}
