package rest_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dossier-fhir/dossier/fhir/rest"
)

// pdfLike returns n bytes that start like a PDF and go on at random.
func pdfLike(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	copy(b, "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	return b
}

// binaryIDOf returns the id of the Binary a write answer's Location names.
func binaryIDOf(tb testing.TB, r resp) string {
	tb.Helper()
	loc := r.Header.Get("Location")
	_, rest, ok := strings.Cut(loc, "/Binary/")
	id, _, ok2 := strings.Cut(rest, "/_history/")
	if !ok || !ok2 || id == "" {
		tb.Fatalf("Location %q names no Binary version", loc)
	}
	return id
}

// blobDocs counts the documents of the blob collection.
func blobDocs(tb testing.TB, e *env) int64 {
	tb.Helper()
	n, err := e.Store.Database().Collection("blobs").CountDocuments(context.Background(), bson.D{})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestBinaryRawRoundTrip(t *testing.T) {
	e := newEnv(t)
	doc := pdfLike(10<<20, 1)
	r := e.Do("POST", "/Binary", string(doc), "Content-Type", "application/pdf",
		"X-Security-Context", "DocumentReference/123")
	fxStatus(t, r, http.StatusCreated)
	id := binaryIDOf(t, r)
	fxCheckWrite(t, e, r, "Binary", id, "1")
	created := fxObj(t, r.Body)
	if _, ok := created["data"]; ok {
		t.Errorf("the write answer carries the data")
	}
	if got := fxStr(created, "contentType"); got != "application/pdf" {
		t.Errorf("contentType %q", got)
	}

	// Raw read: the bytes, with their type and the version headers.
	raw := e.Do("GET", "/Binary/"+id, "")
	fxStatus(t, raw, http.StatusOK)
	if !bytes.Equal(raw.Body, doc) {
		t.Fatalf("raw read: %d bytes, not byte-exact with the %d posted", len(raw.Body), len(doc))
	}
	for h, want := range map[string]string{
		"Content-Type": "application/pdf", "ETag": `W/"1"`, "Content-Length": strconv.Itoa(len(doc)),
		"X-Security-Context": "DocumentReference/123", "X-Content-Type-Options": "nosniff",
	} {
		if got := raw.Header.Get(h); got != want {
			t.Errorf("raw read: %s %q, want %q", h, got, want)
		}
	}
	if _, err := http.ParseTime(raw.Header.Get("Last-Modified")); err != nil {
		t.Errorf("raw read: Last-Modified %q", raw.Header.Get("Last-Modified"))
	}
	if r := e.Do("GET", "/Binary/"+id, "", "Accept", "application/pdf"); r.Status != http.StatusOK || !bytes.Equal(r.Body, doc) {
		t.Errorf("raw read with Accept application/pdf: %d, %d bytes", r.Status, len(r.Body))
	}

	// FHIR JSON read, by Accept or _format: data is the base64 content.
	for _, tc := range []struct{ path, accept string }{
		{"/Binary/" + id, "application/fhir+json"},
		{"/Binary/" + id, "application/json"},
		{"/Binary/" + id + "?_format=json", ""},
		{"/Binary/" + id + "/_history/1", "application/fhir+json"},
	} {
		js := e.Do("GET", tc.path, "", "Accept", tc.accept)
		fxStatus(t, js, http.StatusOK)
		if ct := js.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
			t.Errorf("%s: Content-Type %q", tc.path, ct)
		}
		if js.Header.Get("ETag") != `W/"1"` {
			t.Errorf("%s: ETag %q", tc.path, js.Header.Get("ETag"))
		}
		var b struct {
			ResourceType    string `json:"resourceType"`
			ID              string `json:"id"`
			Meta            struct{ VersionID string }
			ContentType     string `json:"contentType"`
			SecurityContext struct{ Reference string }
			Data            string `json:"data"`
		}
		if err := json.Unmarshal(js.Body, &b); err != nil {
			t.Fatalf("%s: not JSON: %v", tc.path, err)
		}
		data, err := base64.StdEncoding.DecodeString(b.Data)
		if err != nil || !bytes.Equal(data, doc) {
			t.Fatalf("%s: data decodes to %d bytes (%v), not the %d posted", tc.path, len(data), err, len(doc))
		}
		if b.ResourceType != "Binary" || b.ID != id || b.Meta.VersionID != "1" || b.ContentType != "application/pdf" ||
			b.SecurityContext.Reference != "DocumentReference/123" {
			t.Errorf("%s: %+v", tc.path, struct{ T, ID, V, CT, SC string }{b.ResourceType, b.ID, b.Meta.VersionID, b.ContentType, b.SecurityContext.Reference})
		}
	}

	// Conditional read and HEAD.
	if r := e.Do("GET", "/Binary/"+id, "", "If-None-Match", `W/"1"`); r.Status != http.StatusNotModified || len(r.Body) != 0 {
		t.Errorf("If-None-Match: %d, %d bytes", r.Status, len(r.Body))
	}
	h := e.Do("HEAD", "/Binary/"+id, "")
	if h.Status != http.StatusOK || h.Header.Get("Content-Length") != strconv.Itoa(len(doc)) || h.Header.Get("ETag") != `W/"1"` {
		t.Errorf("HEAD: %d %v", h.Status, h.Header)
	}
}

func TestBinaryVersions(t *testing.T) {
	e := newEnv(t)
	v1 := pdfLike(300<<10, 2)
	r := e.Do("POST", "/Binary", string(v1), "Content-Type", "application/pdf")
	fxStatus(t, r, http.StatusCreated)
	id := binaryIDOf(t, r)

	cda := `<?xml version="1.0" encoding="UTF-8"?><ClinicalDocument xmlns="urn:hl7-org:v3"><title>CR</title></ClinicalDocument>`
	r = e.Do("PUT", "/Binary/"+id, cda, "Content-Type", "text/xml; charset=utf-8", "If-Match", `W/"1"`)
	fxStatus(t, r, http.StatusOK)
	fxCheckWrite(t, e, r, "Binary", id, "2")

	cur := e.Do("GET", "/Binary/"+id, "")
	if cur.Status != http.StatusOK || string(cur.Body) != cda || cur.Header.Get("Content-Type") != "text/xml; charset=utf-8" {
		t.Fatalf("read after PUT: %d %q %q", cur.Status, cur.Header.Get("Content-Type"), cur.Body)
	}
	old := e.Do("GET", "/Binary/"+id+"/_history/1", "")
	if old.Status != http.StatusOK || !bytes.Equal(old.Body, v1) || old.Header.Get("Content-Type") != "application/pdf" || old.Header.Get("ETag") != `W/"1"` {
		t.Fatalf("vread 1: %d %q, %d bytes (want the %d old ones)", old.Status, old.Header.Get("Content-Type"), len(old.Body), len(v1))
	}
	if r := e.Do("GET", "/Binary/"+id+"/_history/2", ""); string(r.Body) != cda {
		t.Fatalf("vread 2: %d %q", r.Status, r.Body)
	}

	// The same content again changes nothing; a stale If-Match is 412.
	r = e.Do("PUT", "/Binary/"+id, cda, "Content-Type", "text/xml; charset=utf-8")
	fxStatus(t, r, http.StatusOK)
	if r.Header.Get("ETag") != `W/"2"` {
		t.Errorf("identical PUT made a version: ETag %q", r.Header.Get("ETag"))
	}
	blobs := blobDocs(t, e)
	r = e.Do("PUT", "/Binary/"+id, "other", "Content-Type", "text/plain", "If-Match", `W/"1"`)
	fxOutcome(t, r, http.StatusPreconditionFailed)
	if n := blobDocs(t, e); n != blobs {
		t.Errorf("refused PUT left blob documents: %d → %d", blobs, n)
	}

	// Update as create with a client id; history; delete.
	r = e.Do("PUT", "/Binary/client-id", "hello", "Content-Type", "text/plain")
	fxStatus(t, r, http.StatusCreated)
	if r := e.Do("GET", "/Binary/client-id", ""); string(r.Body) != "hello" {
		t.Errorf("client id read: %q", r.Body)
	}
	if n := fxTotal(t, e, "/Binary/"+id+"/_history", "history"); n != 2 {
		t.Errorf("history has %d versions, want 2", n)
	}
	fxStatus(t, e.Do("DELETE", "/Binary/"+id, ""), http.StatusNoContent)
	fxOutcome(t, e.Do("GET", "/Binary/"+id, ""), http.StatusGone)
	if r := e.Do("GET", "/Binary/"+id+"/_history/1", ""); !bytes.Equal(r.Body, v1) {
		t.Errorf("vread 1 after delete: %d, %d bytes", r.Status, len(r.Body))
	}
}

func TestBinaryTooLarge(t *testing.T) {
	const limit = 1 << 20
	e := newEnv(t, func(c *rest.Config) { c.MaxBinary = limit })
	doc := pdfLike(limit+1, 3)
	// Declared length over the limit: refused before reading.
	r := e.Do("POST", "/Binary", string(doc), "Content-Type", "application/pdf")
	fxOutcome(t, r, http.StatusRequestEntityTooLarge)
	// Unknown length (chunked): refused when the limit is crossed.
	req, err := http.NewRequest("POST", e.URL+"/Binary", io.MultiReader(bytes.NewReader(doc)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/pdf")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "OperationOutcome") {
		t.Fatalf("chunked upload over the limit: %d %s", res.StatusCode, body)
	}
	if n := blobDocs(t, e); n != 0 {
		t.Errorf("%d blob documents stored by refused uploads", n)
	}
	if n := fxTotal(t, e, "/Binary", "searchset"); n != 0 {
		t.Errorf("%d Binary resources stored by refused uploads", n)
	}
	// Exactly the limit is fine.
	r = e.Do("POST", "/Binary", string(doc[:limit]), "Content-Type", "application/pdf")
	fxStatus(t, r, http.StatusCreated)
}

func TestBinaryAsFHIRJSON(t *testing.T) {
	e := newEnv(t)
	content := []byte("%PDF-1.4 small\x00\x01\x02")
	body := fmt.Sprintf(`{"resourceType":"Binary","contentType":"application/pdf","securityContext":{"reference":"DocumentReference/9"},"data":%q}`,
		base64.StdEncoding.EncodeToString(content))
	r := e.Do("POST", "/Binary", body)
	fxStatus(t, r, http.StatusCreated)
	id := fxStr(fxObj(t, r.Body), "id")
	if fxStr(fxObj(t, r.Body), "data") == "" {
		t.Fatalf("a FHIR JSON Binary lost its data: %s", r.Body)
	}
	js := e.Do("GET", "/Binary/"+id, "", "Accept", "application/fhir+json")
	if js.Status != http.StatusOK || fxStr(fxObj(t, js.Body), "data") != base64.StdEncoding.EncodeToString(content) {
		t.Fatalf("JSON read: %d %s", js.Status, js.Body)
	}
	raw := e.Do("GET", "/Binary/"+id, "")
	if raw.Status != http.StatusOK || !bytes.Equal(raw.Body, content) || raw.Header.Get("Content-Type") != "application/pdf" ||
		raw.Header.Get("X-Security-Context") != "DocumentReference/9" {
		t.Fatalf("raw read of a JSON Binary: %d %v %q", raw.Status, raw.Header, raw.Body)
	}
	// A FHIR JSON update over a raw one, and a raw one over a JSON one.
	r = e.Do("PUT", "/Binary/"+id, "raw now", "Content-Type", "text/plain")
	fxStatus(t, r, http.StatusOK)
	if r := e.Do("GET", "/Binary/"+id, ""); string(r.Body) != "raw now" {
		t.Errorf("raw over JSON: %q", r.Body)
	}
	r = e.Do("PUT", "/Binary/"+id, fmt.Sprintf(`{"resourceType":"Binary","id":%q,"contentType":"text/plain","data":"QUJD"}`, id))
	fxStatus(t, r, http.StatusOK)
	if r := e.Do("GET", "/Binary/"+id, ""); string(r.Body) != "ABC" {
		t.Errorf("JSON over raw: %q", r.Body)
	}
}

func TestBinaryNegotiation(t *testing.T) {
	e := newEnv(t)
	// Other types still take and give FHIR JSON only.
	fxOutcome(t, e.Do("POST", "/Patient", "%PDF", "Content-Type", "application/pdf"), http.StatusUnsupportedMediaType)
	r := e.Do("POST", "/Patient", `{"resourceType":"Patient"}`)
	fxStatus(t, r, http.StatusCreated)
	pid := fxStr(fxObj(t, r.Body), "id")
	fxOutcome(t, e.Do("GET", "/Patient/"+pid, "", "Accept", "application/pdf"), http.StatusNotAcceptable)
	// Binary search stays FHIR JSON; a raw conditional update is refused.
	fxOutcome(t, e.Do("GET", "/Binary", "", "Accept", "application/pdf"), http.StatusNotAcceptable)
	fxOutcome(t, e.Do("PUT", "/Binary?_id=x", "x", "Content-Type", "text/plain"), http.StatusUnsupportedMediaType)
	// A malformed Content-Type; no token.
	fxOutcome(t, e.Do("POST", "/Binary", "x", "Content-Type", "text/"), http.StatusUnsupportedMediaType)
	fxOutcome(t, e.Do("POST", "/Binary", "x", "Content-Type", "text/plain", "Authorization", ""), http.StatusUnauthorized)
	fxOutcome(t, e.Do("GET", "/Binary/nope", ""), http.StatusNotFound)
}

// genReader yields n pseudo-random bytes (a PDF header first) without
// holding them, and hashes what it yields.
type genReader struct {
	r    *rand.Rand
	left int
	head []byte
	sum  hashWriter
}

type hashWriter interface {
	io.Writer
	Sum([]byte) []byte
}

func newGenReader(n int, seed uint64) *genReader {
	return &genReader{r: rand.New(rand.NewPCG(seed, 9)), left: n, head: []byte("%PDF-1.7\n"), sum: sha1.New()}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(len(p), g.left)]
	for i := range p {
		p[i] = byte(g.r.Uint32())
	}
	n := copy(p, g.head)
	g.head = g.head[n:]
	g.left -= len(p)
	g.sum.Write(p)
	return len(p), nil
}

// heapPeak samples the heap until stop is called. It returns the peak
// HeapAlloc seen (live data and garbage not yet collected: with the
// GC's pacing this moves with the process's allocation rate) and the
// peak HeapAlloc right after a collection the sampler forces every
// 20 ms (the memory actually retained).
func heapPeak() (stop func() (peak, live uint64)) {
	var (
		peak, live uint64
		done       = make(chan struct{})
		wg         sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for i := 0; ; i++ {
			if i%10 == 0 {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				live = max(live, ms.HeapAlloc)
			} else {
				runtime.ReadMemStats(&ms)
			}
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return func() (uint64, uint64) {
		close(done)
		wg.Wait()
		return peak, live
	}
}

func baseHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestBinaryMemoryBounded uploads and downloads (raw, then as FHIR
// JSON) a small and a large document (4 MiB and 20 MiB, the default
// limit) and checks that the process's heap (client, server and the
// in-process engine together) does not grow with the document: the
// content is streamed in chunks on the way in and out.
//
// Two figures per transfer, as growth over the heap before it:
//   - retained: the heap right after a forced collection (sampled every
//     20 ms): what the transfer holds. Streaming holds a few 256 KiB
//     chunks in the handler and the driver, but the in-process engine
//     holds each chunk several times over (its JSON row decoder, BSON
//     documents, wire messages): about 5-6 MiB in all, measured the same
//     for 5 MiB and 20 MiB documents. Buffering the document anywhere
//     would add its size. Bounds: under 3/4 of the large document (it
//     varies between 4 and 9 MiB from run to run), and the large one
//     retaining less than half the size difference more than the small
//     one.
//   - peak: the highest HeapAlloc, garbage included. The engine
//     allocates ~20 bytes per byte moved, so this follows the GC's
//     pacing (GOGC=10 here), not the document: measured 7-9 MiB for
//     both sizes. Bound: the large document's size (its copy plus the
//     engine's own footprint would exceed it).
func TestBinaryMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 72 MiB")
	}
	const small, large = 4 << 20, 20 << 20
	e := newEnv(t, func(c *rest.Config) { c.MaxBinary = large })
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	names := []string{"upload", "raw download", "JSON download"}
	gs := transfer(t, e, small)
	gl := transfer(t, e, large)
	for i, name := range names {
		t.Logf("%s: heap growth retained %.1f MiB (%d MiB document), %.1f MiB (%d MiB); peak %.1f MiB, %.1f MiB",
			name, mib(gs[i].retained), small>>20, mib(gl[i].retained), large>>20, mib(gs[i].peak), mib(gl[i].peak))
		if gl[i].retained > large*3/4 {
			t.Errorf("%s of %d MiB retained %.1f MiB: the content is buffered somewhere", name, large>>20, mib(gl[i].retained))
		}
		if gl[i].retained > gs[i].retained+(large-small)/2 {
			t.Errorf("%s: the heap retained grows with the document: %.1f MiB for %d MiB, %.1f MiB for %d MiB",
				name, mib(gs[i].retained), small>>20, mib(gl[i].retained), large>>20)
		}
		if gl[i].peak > large {
			t.Errorf("%s of %d MiB: peak heap growth %.1f MiB", name, large>>20, mib(gl[i].peak))
		}
	}
}

type heapGrowth struct{ peak, retained uint64 }

// transfer uploads a generated document of size bytes raw, downloads it
// raw and as FHIR JSON, checks the bytes, and returns the heap growth
// of each of the three.
func transfer(t *testing.T, e *env, size int) [3]heapGrowth {
	t.Helper()
	measure := func(f func()) heapGrowth {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc
		stop := heapPeak()
		f()
		peak, live := stop()
		return heapGrowth{peak - min(base, peak), live - min(base, live)}
	}
	var out [3]heapGrowth
	// Upload from a generator: the test holds no copy either.
	gen := newGenReader(size, uint64(size))
	var id string
	out[0] = measure(func() {
		req, err := http.NewRequest("POST", e.URL+"/Binary", gen)
		if err != nil {
			t.Fatal(err)
		}
		req.ContentLength = int64(size)
		req.Header.Set("Authorization", "Bearer "+e.token)
		req.Header.Set("Content-Type", "application/pdf")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("upload: %d %s", res.StatusCode, body)
		}
		id = binaryIDOf(t, resp{Header: res.Header})
	})
	want := gen.sum.Sum(nil)
	// Downloads, hashed as they arrive.
	for i, accept := range []string{"", "application/fhir+json"} {
		out[1+i] = measure(func() {
			req, _ := http.NewRequest("GET", e.URL+"/Binary/"+id, nil)
			req.Header.Set("Authorization", "Bearer "+e.token)
			req.Header.Set("Accept", accept)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var src io.Reader = res.Body
			if accept != "" {
				src = jsonData(t, res.Body)
			}
			h := sha1.New()
			n, err := io.Copy(h, src)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(size) || !bytes.Equal(h.Sum(nil), want) {
				t.Fatalf("download (Accept %q): %d bytes, sha1 %x, want %d %x", accept, n, h.Sum(nil), size, want)
			}
		})
	}
	return out
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// jsonData returns the decoded data of a Binary JSON stream, read as it
// arrives: the members before "data" are skipped, and data must come
// last (as the server writes it).
func jsonData(t *testing.T, r io.Reader) io.Reader {
	t.Helper()
	const marker = `,"data":"`
	br := &byteScanner{r: r}
	var seen []byte
	for !bytes.HasSuffix(seen, []byte(marker)) {
		b, err := br.ReadByte()
		if err != nil {
			t.Fatalf("no data member: %v", err)
		}
		seen = append(seen, b)
		if len(seen) > 64<<10 {
			t.Fatal("no data member in the first 64 KiB")
		}
	}
	// The base64 runs until the closing quote.
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := br.r.Read(buf)
			chunk := buf[:n]
			if i := bytes.IndexByte(chunk, '"'); i >= 0 {
				pw.Write(chunk[:i])
				pw.Close()
				return
			}
			pw.Write(chunk)
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return base64.NewDecoder(base64.StdEncoding, pr)
}

type byteScanner struct{ r io.Reader }

func (b *byteScanner) ReadByte() (byte, error) {
	var one [1]byte
	_, err := io.ReadFull(b.r, one[:])
	return one[0], err
}
