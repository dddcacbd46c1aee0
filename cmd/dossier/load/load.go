// Package load is the client side of `dossier load`: it sends FHIR Bundles
// and NDJSON files to a FHIR server.
//
// Inputs are files or folders (walked recursively, in sorted order):
//
//   - .json and .json.bz2: one Bundle of type batch or transaction, POSTed
//     as-is to the FHIR base URL;
//   - .ndjson and .ndjson.bz2: one resource a line, sent as batch Bundles of
//     Options.BatchSize entries (PUT Type/id when the resource has an id,
//     POST Type otherwise).
//
// Every file is read once up front to count its entries (for the ETA) and
// to find its Bundle type. Batch Bundles (NDJSON included) are all sent
// before the first transaction Bundle, so that the shared resources of a
// Synthea export (0-hospitalInformation*, 0-practitionerInformation*) exist
// when the patients' transactions refer to them.
//
// Requests answered 429 or 503, and connection errors, are retried with
// exponential backoff and jitter, honouring Retry-After.
//
// Failures (with the server's OperationOutcome diagnostics) are printed on
// stdout for the user; nothing is logged.
package load

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Options of Run.
type Options struct {
	URL         string       // FHIR base URL, e.g. http://localhost:8080/fhir
	Token       string       // bearer token; none when empty
	Concurrency int          // requests in flight; default 4
	BatchSize   int          // entries per Bundle made from NDJSON; default 500
	Client      *http.Client // default: a client keeping Concurrency connections
}

// Defaults.
const (
	DefaultConcurrency = 4
	DefaultBatchSize   = 500
)

// Retry policy (variables for the tests).
var (
	maxAttempts  = 8
	firstBackoff = 200 * time.Millisecond
	maxBackoff   = 10 * time.Second
)

const (
	maxShownFailures = 20
	maxKeptFailures  = 1000    // failure details kept in memory
	maxResponseBytes = 1 << 28 // 256 MiB
	maxDiagnostics   = 300     // characters of diagnostics shown per failure
)

// Failure of one entry, or of a whole Bundle or file (Entry < 0).
type Failure struct {
	File        string
	Entry       int    // index in the Bundle sent; -1: the whole Bundle or file
	Line        int    // NDJSON: 1-based line of the resource; 0 otherwise
	Entries     int    // whole-Bundle failures: the number of entries lost
	Status      string // HTTP status of the Bundle or of the entry; "" when none
	Diagnostics string // OperationOutcome diagnostics or error text
}

func (f Failure) String() string {
	var b strings.Builder
	b.WriteString(f.File)
	switch {
	case f.Line > 0:
		fmt.Fprintf(&b, " line %d", f.Line)
	case f.Entry >= 0:
		fmt.Fprintf(&b, " entry %d", f.Entry)
	case f.Entries > 0:
		fmt.Fprintf(&b, " (all %d entries)", f.Entries)
	}
	b.WriteString(":")
	if f.Status != "" {
		b.WriteString(" " + f.Status)
	}
	if f.Diagnostics != "" {
		if f.Status != "" {
			b.WriteString(":")
		}
		b.WriteString(" " + f.Diagnostics)
	}
	return b.String()
}

// job is one request: a Bundle file, or a batch Bundle made from NDJSON.
type job struct {
	f       *file
	body    []byte // nil: read f.path when sending
	entries int
	lines   []int // NDJSON: the line of each entry
}

type loader struct {
	url     string
	token   string
	client  *http.Client
	workers int
	batch   int
	prog    *progress

	cancel   context.CancelCauseFunc
	notSent  atomic.Int64 // resources not sent (interrupted or aborted)
	mu       sync.Mutex
	failures []Failure
	nFail    int // failure records, kept or not
}

// Run loads the files found in paths into the FHIR server at opts.URL. It
// writes progress to stderr and a summary to stdout, and returns an error
// when anything failed.
func Run(ctx context.Context, opts Options, paths []string, stdout, stderr io.Writer) error {
	if len(paths) == 0 {
		return errors.New("no file or folder to load")
	}
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid FHIR base URL %q: want http(s)://host[:port]/path", opts.URL)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	client := opts.Client
	if client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = opts.Concurrency
		client = &http.Client{Transport: tr}
	}
	tty := isTerminal(stderr)
	start := time.Now()

	// Find and scan the files.
	names, err := collect(paths)
	if err != nil {
		return err
	}
	l := &loader{
		url:     strings.TrimRight(opts.URL, "/"),
		token:   opts.Token,
		client:  client,
		workers: opts.Concurrency,
		batch:   opts.BatchSize,
	}
	var loadable []string
	skipped := 0
	for _, n := range names {
		if kindOf(n) == kindOther {
			fmt.Fprintf(stderr, "load: skipping %s: not .json, .json.bz2, .ndjson or .ndjson.bz2\n", n)
			skipped++
			continue
		}
		loadable = append(loadable, n)
	}
	if len(loadable) == 0 {
		return errors.New("no .json, .json.bz2, .ndjson or .ndjson.bz2 file to load")
	}
	files, errs := l.scan(ctx, loadable, stderr, tty)
	if err := ctx.Err(); err != nil {
		return err
	}
	var batches, transactions []*file
	unreadable, resTotal, ndjson := 0, 0, 0
	for i, f := range files {
		if errs[i] != nil {
			unreadable++
			l.fail(Failure{File: loadable[i], Entry: -1, Diagnostics: errs[i].Error()})
			continue
		}
		resTotal += f.entries
		if f.kind == kindNDJSON {
			ndjson++
		}
		if f.bundleType == "transaction" {
			transactions = append(transactions, f)
		} else {
			batches = append(batches, f)
		}
	}
	for i, err := range errs {
		if err != nil {
			fmt.Fprintf(stderr, "load: cannot load %s: %s\n", loadable[i], clean(err.Error(), maxDiagnostics))
		}
	}
	fmt.Fprintf(stderr, "load: %d resources to send in %d files: %d batch Bundles, %d transaction Bundles, %d NDJSON\n",
		resTotal, len(batches)+len(transactions), len(batches)-ndjson, len(transactions), ndjson)

	// Send: all batches, then all transactions.
	l.prog = newProgress(stderr, tty, len(batches)+len(transactions), resTotal)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	l.cancel = cancel
	l.prog.begin()
	l.phase(ctx, batches)
	l.phase(ctx, transactions)
	l.prog.end()
	elapsed := time.Since(start)

	// Summary.
	ok, failed := l.prog.ok.Load(), l.prog.failed.Load()
	fmt.Fprintf(stdout, "files:         %d/%d", l.prog.filesDone.Load(), l.prog.filesTotal)
	if skipped > 0 {
		fmt.Fprintf(stdout, ", %d skipped", skipped)
	}
	if unreadable > 0 {
		fmt.Fprintf(stdout, ", %d unreadable", unreadable)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "resources OK:  %d\n", ok)
	fmt.Fprintf(stdout, "failed:        %d\n", failed)
	if n := l.notSent.Load(); n > 0 {
		fmt.Fprintf(stdout, "not sent:      %d (stopped early; a Bundle in flight may have been applied)\n", n)
	}
	fmt.Fprintf(stdout, "elapsed:       %s\n", elapsed.Round(time.Millisecond))
	fmt.Fprintf(stdout, "resources/s:   %.1f\n", float64(ok+failed)/max(elapsed.Seconds(), 1e-9))
	l.mu.Lock()
	fails, nFail := l.failures, l.nFail
	l.mu.Unlock()
	if nFail > 0 {
		slices.SortStableFunc(fails, func(a, b Failure) int {
			return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Entry, b.Entry))
		})
		shown := min(len(fails), maxShownFailures)
		fmt.Fprintf(stdout, "failures (%d of %d shown):\n", shown, nFail)
		for _, f := range fails[:shown] {
			fmt.Fprintln(stdout, "  "+f.String())
		}
	}

	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause // aborted: server unreachable
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	switch {
	case failed > 0 && unreadable > 0:
		return fmt.Errorf("%d resources failed and %d files could not be read", failed, unreadable)
	case failed > 0:
		return fmt.Errorf("%d of %d resources failed", failed, ok+failed)
	case unreadable > 0:
		return fmt.Errorf("%d files could not be read", unreadable)
	}
	return nil
}

// scan scans the files in parallel, showing the count on a terminal.
func (l *loader) scan(ctx context.Context, paths []string, stderr io.Writer, tty bool) ([]*file, []error) {
	var n atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if tty {
		wg.Go(func() {
			t := time.NewTicker(ttyInterval)
			defer t.Stop()
			for {
				fmt.Fprintf(stderr, "\r\x1b[Kload: reading %d/%d files", n.Load(), len(paths))
				select {
				case <-stop:
					fmt.Fprint(stderr, "\r\x1b[K")
					return
				case <-t.C:
				}
			}
		})
	}
	files, errs := scanAll(ctx, paths, func() { n.Add(1) })
	close(stop)
	wg.Wait()
	return files, errs
}

// phase sends files with l.workers requests in flight and returns when all
// are done.
func (l *loader) phase(ctx context.Context, files []*file) {
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range l.workers {
		wg.Go(func() {
			for j := range jobs {
				l.do(ctx, j)
			}
		})
	}
	for _, f := range files {
		atomic.StoreInt64(&f.remaining, 1) // held while producing
		switch f.kind {
		case kindBundle:
			l.send(ctx, jobs, job{f: f, entries: f.entries})
		case kindNDJSON:
			l.produceNDJSON(ctx, jobs, f)
		}
		l.release(f)
	}
	close(jobs)
	wg.Wait()
}

// send queues j, or counts it as not sent when ctx is done.
func (l *loader) send(ctx context.Context, jobs chan<- job, j job) {
	atomic.AddInt64(&j.f.remaining, 1)
	if ctx.Err() == nil {
		select {
		case jobs <- j:
			return
		case <-ctx.Done():
		}
	}
	l.unsent(j)
	l.release(j.f)
}

// unsent counts the entries of j as not sent (interrupted or aborted).
func (l *loader) unsent(j job) {
	l.notSent.Add(int64(j.entries))
	j.f.incomplete.Store(true)
}

// release ends one request (or the production) of f.
func (l *loader) release(f *file) {
	if atomic.AddInt64(&f.remaining, -1) == 0 && !f.incomplete.Load() {
		l.prog.filesDone.Add(1)
	}
}

func (l *loader) fail(f Failure) {
	f.Diagnostics = clean(f.Diagnostics, maxDiagnostics)
	f.Status = clean(f.Status, 80)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nFail++
	if len(l.failures) < maxKeptFailures {
		l.failures = append(l.failures, f)
	}
}

// do sends one job and records its result.
func (l *loader) do(ctx context.Context, j job) {
	defer l.release(j.f)
	body := j.body
	if body == nil {
		var err error
		if body, err = readAll(j.f.path); err != nil {
			l.failAll(j, "", err.Error())
			return
		}
	}
	status, data, err := l.post(ctx, body)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			l.unsent(j)
			return
		}
		l.failAll(j, "", err.Error())
		return
	}
	l.check(j, status, data)
}

func (l *loader) failAll(j job, status, diag string) {
	l.fail(Failure{File: j.f.path, Entry: -1, Entries: j.entries, Status: status, Diagnostics: diag})
	l.prog.failed.Add(int64(j.entries))
}

// post sends body to the FHIR base, retrying on 429, 503 and connection
// errors. It returns the final status and response body. When connection
// errors persist, it cancels the whole run: the server is unreachable.
func (l *loader) post(ctx context.Context, body []byte) (int, []byte, error) {
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(body))
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set("Content-Type", "application/fhir+json")
		req.Header.Set("Accept", "application/fhir+json")
		req.Header.Set("Prefer", "return=minimal")
		if l.token != "" {
			req.Header.Set("Authorization", "Bearer "+l.token)
		}
		resp, err := l.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return 0, nil, ctx.Err()
			}
			if attempt >= maxAttempts {
				err = fmt.Errorf("server unreachable after %d attempts: %w", attempt, err)
				l.cancel(err)
				return 0, nil, err
			}
			if !l.wait(ctx, backoff(attempt)) {
				return 0, nil, ctx.Err()
			}
			continue
		}
		data, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
		resp.Body.Close()
		retriable := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
		if retriable && attempt < maxAttempts {
			d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now())
			if !ok {
				d = backoff(attempt)
			}
			if !l.wait(ctx, d) {
				return 0, nil, ctx.Err()
			}
			continue
		}
		if rerr != nil {
			// The server may have applied the Bundle: do not send it again.
			return 0, nil, fmt.Errorf("HTTP %d, reading the response: %w", resp.StatusCode, rerr)
		}
		if len(data) > maxResponseBytes {
			return 0, nil, fmt.Errorf("HTTP %d, response larger than %d bytes", resp.StatusCode, maxResponseBytes)
		}
		return resp.StatusCode, data, nil
	}
}

// wait sleeps d, counting a retry; false when ctx is done first.
func (l *loader) wait(ctx context.Context, d time.Duration) bool {
	l.prog.retries.Add(1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// backoff is the delay after the attempt-th failed attempt: exponential from
// firstBackoff, capped at maxBackoff, with jitter (between half and all of
// it).
func backoff(attempt int) time.Duration {
	d := maxBackoff
	if attempt < 16 {
		d = min(firstBackoff<<(attempt-1), maxBackoff)
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// response is what is read of a (transaction|batch)-response Bundle.
type response struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Entry        []struct {
		Response *struct {
			Status  string          `json:"status"`
			Outcome json.RawMessage `json:"outcome"`
		} `json:"response"`
	} `json:"entry"`
}

// check counts the entries of j as OK or failed from the server's answer.
func (l *loader) check(j job, status int, data []byte) {
	statusText := strconv.Itoa(status) + " " + http.StatusText(status)
	if status/100 != 2 {
		d := diagnostics(data)
		if d == "" && utf8.Valid(data) {
			d = string(data) // not an OperationOutcome: show the start of the body
		}
		l.failAll(j, strings.TrimSpace(statusText), d)
		return
	}
	var r response
	if err := json.Unmarshal(data, &r); err != nil || r.ResourceType != "Bundle" ||
		(r.Type != "transaction-response" && r.Type != "batch-response") {
		l.failAll(j, statusText, "the response is not a transaction-response or batch-response Bundle")
		return
	}
	ok := 0
	for i := range j.entries {
		f := Failure{File: j.f.path, Entry: i}
		if j.lines != nil {
			f.Line = j.lines[i]
		}
		switch {
		case i >= len(r.Entry) || r.Entry[i].Response == nil:
			f.Diagnostics = "no response for this entry"
		case strings.HasPrefix(strings.TrimSpace(r.Entry[i].Response.Status), "2"):
			ok++
			continue
		default:
			f.Status = r.Entry[i].Response.Status
			f.Diagnostics = diagnostics(r.Entry[i].Response.Outcome)
		}
		l.fail(f)
		l.prog.failed.Add(1)
	}
	l.prog.ok.Add(int64(ok))
}

// diagnostics returns the issue diagnostics (or details.text) of an
// OperationOutcome, or "" when data is not one.
func diagnostics(data []byte) string {
	var oo struct {
		ResourceType string `json:"resourceType"`
		Issue        []struct {
			Severity    string `json:"severity"`
			Code        string `json:"code"`
			Diagnostics string `json:"diagnostics"`
			Details     struct {
				Text string `json:"text"`
			} `json:"details"`
		} `json:"issue"`
	}
	if len(data) == 0 || json.Unmarshal(data, &oo) != nil || oo.ResourceType != "OperationOutcome" {
		return ""
	}
	var parts []string
	for _, is := range oo.Issue {
		d := cmp.Or(is.Diagnostics, is.Details.Text, is.Code)
		if d != "" {
			parts = append(parts, d)
		}
	}
	return strings.Join(parts, "; ")
}

// clean makes s safe to print on a terminal (no control characters, hence
// no escape sequences) and at most n characters long.
func clean(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > n {
		s = string(r[:n]) + "…"
	}
	return s
}
