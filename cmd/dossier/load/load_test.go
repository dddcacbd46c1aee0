package load

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dossier-fhir/dossier/fhir/access"
)

// --- a small fake FHIR endpoint -------------------------------------------

type entry struct {
	Resource map[string]any `json:"resource"`
	Request  struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	} `json:"request"`
}

type bundle struct {
	ResourceType string  `json:"resourceType"`
	Type         string  `json:"type"`
	Entry        []entry `json:"entry"`
}

// fake answers POST /fhir with a response Bundle. An entry whose resource
// has the id "bad" fails with 422; a Bundle whose first resource has the id
// "reject" fails as a whole with 400. hook, when set, may answer instead
// (returning true).
type fake struct {
	t     *testing.T
	delay time.Duration
	hook  func(w http.ResponseWriter, n int, b bundle) bool

	mu       sync.Mutex
	requests int
	bundles  []bundle
	events   []string // "start <type> <first id>", "end <type> <first id>"
	times    []time.Time
	auth     []string
}

func newFake(t *testing.T) (*fake, *httptest.Server) {
	f := &fake{t: t}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func firstID(b bundle) string {
	if len(b.Entry) == 0 {
		return ""
	}
	id, _ := b.Entry[0].Resource["id"].(string)
	return id
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/fhir" {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/fhir+json" {
		http.Error(w, "bad content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	var b bundle
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.ResourceType != "Bundle" {
		http.Error(w, "not a Bundle", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests++
	n := f.requests
	f.times = append(f.times, time.Now())
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.events = append(f.events, "start "+b.Type+" "+firstID(b))
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.events = append(f.events, "end "+b.Type+" "+firstID(b))
		f.mu.Unlock()
	}()
	time.Sleep(f.delay)
	if f.hook != nil && f.hook(w, n, b) {
		return
	}
	f.mu.Lock()
	f.bundles = append(f.bundles, b)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/fhir+json")
	if firstID(b) == "reject" {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"transaction rejected"}]}`)
		return
	}
	type resp struct {
		Status  string          `json:"status"`
		Outcome json.RawMessage `json:"outcome,omitempty"`
	}
	out := map[string]any{"resourceType": "Bundle", "type": b.Type + "-response"}
	var entries []map[string]any
	for _, e := range b.Entry {
		rs := resp{Status: "201 Created"}
		if e.Resource["id"] == "bad" {
			rs = resp{Status: "422 Unprocessable Entity", Outcome: json.RawMessage(
				`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid","diagnostics":"bad \u001b[31mresource"}]}`)}
		}
		entries = append(entries, map[string]any{"response": rs})
	}
	out["entry"] = entries
	json.NewEncoder(w).Encode(out)
}

func (f *fake) snapshot() (events []string, bundles []bundle, times []time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...), append([]bundle(nil), f.bundles...), append([]time.Time(nil), f.times...)
}

// --- fixtures --------------------------------------------------------------

func res(typ, id string) map[string]any {
	r := map[string]any{"resourceType": typ}
	if id != "" {
		r["id"] = id
	}
	return r
}

// writeBundle writes a Bundle of type typ with one entry per id.
func writeBundle(t *testing.T, path, typ string, ids ...string) {
	t.Helper()
	b := map[string]any{"resourceType": "Bundle", "type": typ}
	var entries []map[string]any
	for _, id := range ids {
		entries = append(entries, map[string]any{
			"fullUrl":  "urn:uuid:" + id,
			"resource": res("Patient", id),
			"request":  map[string]any{"method": "POST", "url": "Patient"},
		})
	}
	b["entry"] = entries
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func runLoad(t *testing.T, srv *httptest.Server, opts Options, paths ...string) (stdout, stderr string, err error) {
	t.Helper()
	opts.URL = srv.URL + "/fhir/"
	var out, errw bytes.Buffer
	err = Run(context.Background(), opts, paths, &out, &errw)
	return out.String(), errw.String(), err
}

// --- tests -----------------------------------------------------------------

func TestBatchesBeforeTransactions(t *testing.T) {
	f, srv := newFake(t)
	f.delay = 30 * time.Millisecond
	dir := t.TempDir()
	// Names sort transactions first: the order must come from the types.
	for i := range 6 {
		writeBundle(t, filepath.Join(dir, fmt.Sprintf("a-tx%d.json", i)), "transaction", fmt.Sprintf("tx%d", i), "x")
	}
	for i := range 3 {
		writeBundle(t, filepath.Join(dir, "sub", fmt.Sprintf("z-batch%d.json", i)), "batch", fmt.Sprintf("batch%d", i))
	}
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("# data"), 0o644)

	stdout, stderr, err := runLoad(t, srv, Options{Concurrency: 4}, dir)
	if err != nil {
		t.Fatalf("Run: %v\n%s\n%s", err, stdout, stderr)
	}
	events, bundles, _ := f.snapshot()
	if len(bundles) != 9 {
		t.Fatalf("server got %d bundles, want 9", len(bundles))
	}
	batchEnds, firstTx := 0, -1
	for i, e := range events {
		if strings.HasPrefix(e, "end batch") {
			batchEnds++
			if firstTx >= 0 {
				t.Errorf("batch finished after a transaction started: %v", events)
			}
		}
		if strings.HasPrefix(e, "start transaction") && firstTx < 0 {
			firstTx = i
		}
	}
	if batchEnds != 3 || firstTx < 0 {
		t.Errorf("events %v", events)
	}
	if !strings.Contains(stderr, "skipping "+filepath.Join(dir, "README.md")) {
		t.Errorf("no skip notice in stderr:\n%s", stderr)
	}
	for _, want := range []string{"files:         9/9, 1 skipped\n", "resources OK:  15\n", "failed:        0\n", "resources/s:"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
}

func TestBzip2(t *testing.T) {
	bz, err := exec.LookPath("bzip2")
	if err != nil {
		t.Skip("no bzip2 command")
	}
	f, srv := newFake(t)
	dir := t.TempDir()
	tx := filepath.Join(dir, "p1.json")
	writeBundle(t, tx, "transaction", "p1", "p2", "p3")
	nd := filepath.Join(dir, "Patient.ndjson")
	os.WriteFile(nd, []byte(`{"resourceType":"Patient","id":"n1"}`+"\n"+`{"resourceType":"Patient"}`+"\n"), 0o644)
	if out, err := exec.Command(bz, tx, nd).CombinedOutput(); err != nil { // replaces them by .bz2
		t.Fatalf("bzip2: %v %s", err, out)
	}

	sf, err := scanFile(tx + ".bz2")
	if err != nil || sf.kind != kindBundle || sf.bundleType != "transaction" || sf.entries != 3 {
		t.Fatalf("scan = %+v, %v", sf, err)
	}
	stdout, stderr, err := runLoad(t, srv, Options{}, dir)
	if err != nil {
		t.Fatalf("Run: %v\n%s\n%s", err, stdout, stderr)
	}
	events, bundles, _ := f.snapshot()
	if len(bundles) != 2 || !strings.HasPrefix(events[0], "start batch") {
		t.Fatalf("events %v", events)
	}
	if !strings.Contains(stdout, "resources OK:  5\n") {
		t.Errorf("summary:\n%s", stdout)
	}
}

func TestNDJSONBatching(t *testing.T) {
	f, srv := newFake(t)
	dir := t.TempDir()
	var b strings.Builder
	for i := range 1201 {
		if i%2 == 0 {
			fmt.Fprintf(&b, `{"resourceType":"Observation","id":"o%d","status":"final"}`+"\n", i)
		} else {
			fmt.Fprintf(&b, `{"resourceType":"Observation","status":"final"}`+"\n")
		}
		if i == 600 {
			b.WriteString("\n  \n") // blank lines are ignored
		}
	}
	path := filepath.Join(dir, "Observation.ndjson")
	os.WriteFile(path, []byte(b.String()), 0o644)

	if sf, err := scanFile(path); err != nil || sf.entries != 1201 || sf.bundleType != "batch" {
		t.Fatalf("scan = %+v, %v", sf, err)
	}
	stdout, stderr, err := runLoad(t, srv, Options{BatchSize: 500, Concurrency: 1}, path)
	if err != nil {
		t.Fatalf("Run: %v\n%s\n%s", err, stdout, stderr)
	}
	_, bundles, _ := f.snapshot()
	if len(bundles) != 3 {
		t.Fatalf("got %d bundles, want 3", len(bundles))
	}
	i := 0
	for k, want := range []int{500, 500, 201} {
		bd := bundles[k]
		if bd.Type != "batch" || len(bd.Entry) != want {
			t.Fatalf("bundle %d: type %s, %d entries, want batch of %d", k, bd.Type, len(bd.Entry), want)
		}
		for _, e := range bd.Entry {
			if i%2 == 0 {
				if e.Request.Method != "PUT" || e.Request.URL != fmt.Sprintf("Observation/o%d", i) || e.Resource["id"] != fmt.Sprintf("o%d", i) {
					t.Fatalf("line %d: %+v", i+1, e)
				}
			} else if e.Request.Method != "POST" || e.Request.URL != "Observation" || e.Resource["status"] != "final" {
				t.Fatalf("line %d: %+v", i+1, e)
			}
			i++
		}
	}
	if !strings.Contains(stdout, "resources OK:  1201\n") {
		t.Errorf("summary:\n%s", stdout)
	}
}

func TestRetry503ThenSuccess(t *testing.T) {
	f, srv := newFake(t)
	f.hook = func(w http.ResponseWriter, n int, b bundle) bool {
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	dir := t.TempDir()
	writeBundle(t, filepath.Join(dir, "b.json"), "batch", "a", "b")
	stdout, stderr, err := runLoad(t, srv, Options{}, dir)
	if err != nil {
		t.Fatalf("Run: %v\n%s\n%s", err, stdout, stderr)
	}
	_, bundles, times := f.snapshot()
	if len(times) != 3 || len(bundles) != 1 {
		t.Fatalf("%d requests, %d answered, want 3 and 1", len(times), len(bundles))
	}
	// Backoff with jitter: 100–200 ms, then 200–400 ms.
	if d := times[1].Sub(times[0]); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("first backoff %v", d)
	}
	if d := times[2].Sub(times[1]); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("second backoff %v", d)
	}
	if !strings.Contains(stdout, "resources OK:  2\n") || !strings.Contains(stderr, "2 retries") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

func TestRetryAfter(t *testing.T) {
	f, srv := newFake(t)
	f.hook = func(w http.ResponseWriter, n int, b bundle) bool {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	}
	dir := t.TempDir()
	writeBundle(t, filepath.Join(dir, "t.json"), "transaction", "a")
	if _, _, err := runLoad(t, srv, Options{}, dir); err != nil {
		t.Fatal(err)
	}
	_, _, times := f.snapshot()
	if len(times) != 2 {
		t.Fatalf("%d requests, want 2", len(times))
	}
	if d := times[1].Sub(times[0]); d < 950*time.Millisecond {
		t.Errorf("retried after %v, want Retry-After: 1s", d)
	}
}

func TestRetryAfterParse(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"3":                             3 * time.Second,
		" 0 ":                           0,
		"Wed, 01 Jan 2025 12:00:05 GMT": 5 * time.Second,
		"Wed, 01 Jan 2025 11:00:00 GMT": 0,
	} {
		if d, ok := retryAfter(v, now); !ok || d != want {
			t.Errorf("retryAfter(%q) = %v, %v; want %v", v, d, ok, want)
		}
	}
	for _, v := range []string{"", "-1", "soon"} {
		if _, ok := retryAfter(v, now); ok {
			t.Errorf("retryAfter(%q) accepted", v)
		}
	}
	for attempt := 1; attempt <= 20; attempt++ {
		d := backoff(attempt)
		if d < 100*time.Millisecond || d > maxBackoff {
			t.Errorf("backoff(%d) = %v", attempt, d)
		}
	}
}

func TestConnectionErrorRetried(t *testing.T) {
	f, srv := newFake(t)
	f.hook = func(w http.ResponseWriter, n int, b bundle) bool {
		if n == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // the client sees the connection drop
			}
			return true
		}
		return false
	}
	dir := t.TempDir()
	writeBundle(t, filepath.Join(dir, "b.json"), "batch", "a")
	stdout, stderr, err := runLoad(t, srv, Options{}, dir)
	if err != nil {
		t.Fatalf("Run: %v\n%s\n%s", err, stdout, stderr)
	}
	if _, bundles, times := f.snapshot(); len(times) != 2 || len(bundles) != 1 {
		t.Fatalf("%d requests, %d answered", len(times), len(bundles))
	}
}

func TestUnreachableServerAborts(t *testing.T) {
	defer func(a int, b time.Duration) { maxAttempts, firstBackoff = a, b }(maxAttempts, firstBackoff)
	maxAttempts, firstBackoff = 3, time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	for i := range 5 {
		writeBundle(t, filepath.Join(dir, fmt.Sprintf("t%d.json", i)), "transaction", "a", "b")
	}
	var out, errw bytes.Buffer
	err = Run(context.Background(), Options{URL: "http://" + addr + "/fhir", Concurrency: 1}, []string{dir}, &out, &errw)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(out.String(), "files:         1/5\n") || !strings.Contains(out.String(), "not sent:      8 ") || !strings.Contains(out.String(), "failed:        2\n") {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestFailureSummary(t *testing.T) {
	_, srv := newFake(t)
	dir := t.TempDir()
	writeBundle(t, filepath.Join(dir, "a.json"), "batch", "ok1", "bad", "ok2")
	writeBundle(t, filepath.Join(dir, "b.json"), "transaction", "reject", "x", "y")
	writeBundle(t, filepath.Join(dir, "c.json"), "collection", "z")
	os.WriteFile(filepath.Join(dir, "d.ndjson"), []byte(`{"resourceType":"Patient","id":"p"}`+"\n"+`not json`+"\n"+`{"resourceType":"Patient","id":"bad"}`+"\n"), 0o644)

	stdout, stderr, err := runLoad(t, srv, Options{}, dir)
	if err == nil {
		t.Fatalf("Run succeeded:\n%s\n%s", stdout, stderr)
	}
	if strings.Contains(stdout, "\x1b") {
		t.Errorf("escape sequence reached the terminal:\n%q", stdout)
	}
	for _, want := range []string{
		"files:         3/3, 1 unreadable\n",
		"resources OK:  3\n",
		"failed:        6\n",
		"failures (5 of 5 shown):\n",
		filepath.Join(dir, "a.json") + " entry 1: 422 Unprocessable Entity: bad  [31mresource\n",
		filepath.Join(dir, "b.json") + " (all 3 entries): 400 Bad Request: transaction rejected\n",
		filepath.Join(dir, "c.json") + `: a Bundle of type "collection"`,
		filepath.Join(dir, "d.ndjson") + " line 2: invalid JSON",
		filepath.Join(dir, "d.ndjson") + " line 3: 422 Unprocessable Entity: bad",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
}

var progressLine = regexp.MustCompile(`^load: files \d+/\d+, resources \d+/\d+, \d+ resources/s, ETA (\?|[0-9hms.]+)(, \d+ failed)?(, \d+ retries)?$`)

func TestProgressNotTerminal(t *testing.T) {
	defer func(d time.Duration) { progressInterval = d }(progressInterval)
	progressInterval = 40 * time.Millisecond
	f, srv := newFake(t)
	f.delay = 50 * time.Millisecond
	dir := t.TempDir()
	for i := range 6 {
		writeBundle(t, filepath.Join(dir, fmt.Sprintf("t%d.json", i)), "transaction", "a", "b")
	}
	_, stderr, err := runLoad(t, srv, Options{Concurrency: 1}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(stderr, "\r\x1b") {
		t.Errorf("terminal control characters in non-terminal output: %q", stderr)
	}
	var progress []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if strings.HasPrefix(l, "load: files") {
			if !progressLine.MatchString(l) {
				t.Errorf("bad progress line %q", l)
			}
			progress = append(progress, l)
		}
	}
	if len(progress) < 3 {
		t.Fatalf("%d progress lines, want periodic ones:\n%s", len(progress), stderr)
	}
	if last := progress[len(progress)-1]; !strings.HasPrefix(last, "load: files 6/6, resources 12/12, ") || !strings.HasSuffix(last, "ETA 0s") {
		t.Errorf("last line %q", last)
	}
	if !strings.Contains(stderr, "load: 12 resources to send in 6 files: 0 batch Bundles, 6 transaction Bundles, 0 NDJSON\n") {
		t.Errorf("no scan line:\n%s", stderr)
	}
}

func TestMainMintsToken(t *testing.T) {
	f, srv := newFake(t)
	data := t.TempDir()
	secret, _, err := access.LoadOrCreateSecret(filepath.Join(data, "jwt-secret"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeBundle(t, filepath.Join(dir, "b.json"), "batch", "a")
	t.Setenv("DOSSIER_TOKEN", "")
	t.Setenv("DOSSIER_ORG", "org-1")
	var out, errw bytes.Buffer
	err = Main(context.Background(), []string{"--url", srv.URL + "/fhir", "--data", data, "--concurrency", "2", dir}, &out, &errw)
	if err != nil {
		t.Fatalf("Main: %v\n%s", err, errw.String())
	}
	v, err := access.NewHS256Verifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	auth := f.auth[0]
	f.mu.Unlock()
	tok, ok := access.BearerToken(auth)
	if !ok {
		t.Fatalf("Authorization %q", auth)
	}
	r, err := v.Verify(tok, time.Now())
	if err != nil || r.Role != access.RoleIntegration || r.Org != "org-1" || r.Subject != "dossier-load" {
		t.Fatalf("requester %+v, %v", r, err)
	}

	// Bad flags and environment.
	if err := Main(context.Background(), []string{"--url", srv.URL}, &out, &errw); err == nil {
		t.Error("no PATH accepted")
	}
	if err := Main(context.Background(), []string{"--token", "t", "--concurrency", "0", dir}, &out, &errw); err == nil {
		t.Error("--concurrency 0 accepted")
	}
	t.Setenv("DOSSIER_BATCH_SIZE", "many")
	if err := Main(context.Background(), []string{dir}, &out, &errw); err == nil {
		t.Error("DOSSIER_BATCH_SIZE=many accepted")
	}
}

// The Synthea sample is only read, to count entries up front.
func TestScanSynthea(t *testing.T) {
	dir := "/work/shared/data/synthea"
	hosp, _ := filepath.Glob(filepath.Join(dir, "0-hospitalInformation*.json.bz2"))
	patient := filepath.Join(dir, "057aa36e-b892-9964-75b9-ffb46b097e34.json.bz2")
	if len(hosp) == 0 {
		t.Skip("no Synthea sample")
	}
	if _, err := os.Stat(patient); err != nil {
		t.Skip("no Synthea sample")
	}
	for _, c := range []struct {
		path, typ string
		entries   int
	}{{hosp[0], "batch", 388}, {patient, "transaction", 1971}} {
		f, err := scanFile(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if f.kind != kindBundle || f.bundleType != c.typ || f.entries != c.entries {
			t.Errorf("%s: %s with %d entries, want %s with %d", filepath.Base(c.path), f.bundleType, f.entries, c.typ, c.entries)
		}
	}
}

func TestCountLinesAndKinds(t *testing.T) {
	for in, want := range map[string]int{
		"":                           0,
		"a":                          1,
		"a\n":                        1,
		"a\n\n  \nb":                 2,
		strings.Repeat("x", 300<<10): 1, // longer than the reader's buffer
		strings.Repeat("x", 256<<10) + "\n" + strings.Repeat("y", 256<<10): 2,
	} {
		if n, err := countLines(strings.NewReader(in)); err != nil || n != want {
			t.Errorf("countLines(%.10q…) = %d, %v; want %d", in, n, err, want)
		}
	}
	for name, want := range map[string]kind{
		"a.json": kindBundle, "A.JSON.BZ2": kindBundle, "x.ndjson": kindNDJSON,
		"x.ndjson.bz2": kindNDJSON, "README.md": kindOther, "x.bz2": kindOther, "json": kindOther,
	} {
		if got := kindOf(name); got != want {
			t.Errorf("kindOf(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, srv := newFake(t)
	f.hook = func(w http.ResponseWriter, n int, b bundle) bool {
		if n == 2 {
			cancel() // Ctrl-C while the second Bundle is in flight
			<-time.After(50 * time.Millisecond)
		}
		return false
	}
	dir := t.TempDir()
	for i := range 4 {
		writeBundle(t, filepath.Join(dir, fmt.Sprintf("t%d.json", i)), "transaction", "a", "b", "c")
	}
	var out, errw bytes.Buffer
	err := Run(ctx, Options{URL: srv.URL + "/fhir", Concurrency: 1}, []string{dir}, &out, &errw)
	if err != context.Canceled {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"files:         1/4\n", "resources OK:  3\n", "failed:        0\n", "not sent:      9 "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestTerminalLine(t *testing.T) {
	p := newProgress(io.Discard, true, 122, 92114)
	p.filesDone.Store(12)
	p.ok.Store(9000)
	p.failed.Store(114)
	p.retries.Store(3)
	p.start = time.Now().Add(-10 * time.Second)
	l := p.line()
	if !regexp.MustCompile(`^files 12/122  resources 9114/92114  9\d\d/s  ETA 1m3\ds  114 failed  3 retries$`).MatchString(l) || len(l) > 79 {
		t.Errorf("terminal line %q (%d characters)", l, len(l))
	}
}

func TestNothingToLoad(t *testing.T) {
	_, srv := newFake(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("x"), 0o644)
	if _, _, err := runLoad(t, srv, Options{}, dir); err == nil || !strings.Contains(err.Error(), "no .json") {
		t.Errorf("err = %v", err)
	}
	if _, _, err := runLoad(t, srv, Options{}, filepath.Join(dir, "missing")); err == nil {
		t.Error("missing path accepted")
	}
	var out, errw bytes.Buffer
	if err := Run(context.Background(), Options{URL: "localhost:8080/fhir"}, []string{dir}, &out, &errw); err == nil {
		t.Error("URL without scheme accepted")
	}
}
