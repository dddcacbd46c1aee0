package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dossier-fhir/dossier/store"
	"github.com/dossier-fhir/dossier/store/embedded"
	smongo "github.com/dossier-fhir/dossier/store/mongo"
)

var mu sync.Mutex

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServeAndToken starts `dossier serve` on the embedded engine with a
// fresh data folder, mints a token with `dossier token` from the secret
// serve generated, writes and reads a resource, then shuts down.
func TestServeAndToken(t *testing.T) {
	data := t.TempDir()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--addr", addr}, io.Discard, &syncWriter{w: &logs})
	}()
	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(base + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var tok bytes.Buffer
	if err := run(ctx, []string{"token", "--data", data, "--role", "integration", "--org", "org-1"}, &tok, io.Discard); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", base+"/fhir/Patient/p1", strings.NewReader(`{"resourceType":"Patient","id":"p1"}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(tok.String()))
	req.Header.Set("Content-Type", "application/fhir+json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %d", res.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop")
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "jwt-secret") || !strings.Contains(out, "shutting down") {
		t.Errorf("logs miss the secret path or the shutdown: %s", out)
	}
	if strings.Contains(out, "Patient/p1") {
		t.Errorf("logs name a resource: %s", out)
	}
}

func TestUnknownCommand(t *testing.T) {
	if err := run(context.Background(), []string{"frobnicate"}, io.Discard, io.Discard); err == nil {
		t.Fatal("want an error")
	}
	if err := run(context.Background(), nil, io.Discard, io.Discard); err == nil {
		t.Fatal("want an error")
	}
	err := run(context.Background(), []string{"token", "--data", t.TempDir(), "--role", "patient"}, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("a patient token without a patient id: want an error")
	}
}

type syncWriter struct {
	w *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	return s.w.Write(p)
}

// TestReindex: resources written without search fields (as if stored
// before their parameters existed) become searchable after reindex.
func TestReindex(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	e, err := embedded.Start(ctx, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := smongo.Open(ctx, e.URI(), "dossier", e.Options("dossier"))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"resourceType":"Patient","id":"p1","meta":{"versionId":"1","lastUpdated":"2026-01-01T00:00:00Z"},"gender":"female"}`
	if err := ms.Put(ctx, &store.Version{Type: "Patient", ID: "p1", VersionID: 1, LastUpdated: time.Now().UTC().Truncate(time.Microsecond), Method: "PUT", JSON: []byte(body)}); err != nil {
		t.Fatal(err)
	}
	q := store.Query{Type: "Patient", Filter: store.Eq("gender", "female")}
	if n, _ := ms.Count(ctx, q); n != 0 {
		t.Fatalf("found %d before reindex", n)
	}
	_ = ms.Close(ctx)
	_ = e.Close()
	var out bytes.Buffer
	if err := run(ctx, []string{"reindex", "--data", data}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	e, err = embedded.Start(ctx, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ms, err = smongo.Open(ctx, e.URI(), "dossier", e.Options("dossier"))
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close(ctx)
	if n, _ := ms.Count(ctx, q); n != 1 {
		t.Fatalf("found %d after reindex, want 1\n%s", n, out.String())
	}
	v, _ := ms.Read(ctx, "Patient", "p1")
	if v.VersionID != 1 {
		t.Fatalf("reindex made a new version: %d", v.VersionID)
	}
}
