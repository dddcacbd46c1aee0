package rest_test

// Helpers of the foundation's HTTP test suite. Every name starts with fx
// so that test files written beside these (by others) do not collide.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// fxObj decodes a JSON object, numbers as json.Number.
func fxObj(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		tb.Fatalf("body is not a JSON object (%v): %.500s", err, b)
	}
	return m
}

// fxAt walks m along keys (string: member, int: array index) and returns
// the value found (nil when absent).
func fxAt(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k < 0 || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// fxStr is fxAt as a string ("" when absent or not a string).
func fxStr(v any, path ...any) string {
	s, _ := fxAt(v, path...).(string)
	return s
}

// fxStatus fails the test unless r has one of the wanted statuses.
func fxStatus(tb testing.TB, r resp, want ...int) {
	tb.Helper()
	for _, w := range want {
		if r.Status == w {
			return
		}
	}
	tb.Fatalf("status %d, want %v; body: %.800s", r.Status, want, r.Body)
}

// fxOutcome checks r has one of the wanted statuses and an
// OperationOutcome body whose first issue has a code; it returns the issues.
func fxOutcome(tb testing.TB, r resp, want ...int) []any {
	tb.Helper()
	fxStatus(tb, r, want...)
	return fxIsOutcome(tb, r)
}

// fxIsOutcome checks r's body is an OperationOutcome with issue[0].code.
func fxIsOutcome(tb testing.TB, r resp) []any {
	tb.Helper()
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		tb.Errorf("status %d: Content-Type %q, want application/fhir+json", r.Status, ct)
	}
	m := fxObj(tb, r.Body)
	if m["resourceType"] != "OperationOutcome" {
		tb.Fatalf("status %d: body is not an OperationOutcome: %.500s", r.Status, r.Body)
	}
	issues, _ := m["issue"].([]any)
	if len(issues) == 0 || fxStr(issues, 0, "code") == "" || fxStr(issues, 0, "severity") == "" {
		tb.Fatalf("status %d: OperationOutcome without issue[0].code/severity: %s", r.Status, r.Body)
	}
	return issues
}

// fxBundle is the part of a Bundle the tests read.
type fxBundle struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Total        *int   `json:"total"`
	Link         []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []fxEntry `json:"entry"`
}

type fxEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
	Search   *struct {
		Mode string `json:"mode"`
	} `json:"search"`
	Request *struct {
		Method string `json:"method"`
		URL    string `json:"url"`
	} `json:"request"`
	Response *struct {
		Status       string `json:"status"`
		Location     string `json:"location"`
		Etag         string `json:"etag"`
		LastModified string `json:"lastModified"`
	} `json:"response"`
}

// key names a version in a history bundle: fullUrl and ETag.
func (en fxEntry) key() string {
	etag := ""
	if en.Response != nil {
		etag = en.Response.Etag
	}
	return en.FullURL + " " + etag
}

// lastModified is the entry's response.lastModified (zero when absent).
func (en fxEntry) lastModified() time.Time {
	if en.Response == nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, en.Response.LastModified)
	return t
}

// next returns the bundle's next link ("" when none).
func (b *fxBundle) next() string {
	for _, l := range b.Link {
		if l.Relation == "next" {
			return l.URL
		}
	}
	return ""
}

// fxGetBundle GETs path, expects 200 and a Bundle of type typ.
func fxGetBundle(tb testing.TB, e *env, path, typ string) *fxBundle {
	tb.Helper()
	r := e.Do("GET", path, "")
	fxStatus(tb, r, http.StatusOK)
	var b fxBundle
	if err := json.Unmarshal(r.Body, &b); err != nil {
		tb.Fatalf("GET %s: not a Bundle: %v", path, err)
	}
	if b.ResourceType != "Bundle" || b.Type != typ {
		tb.Fatalf("GET %s: resourceType %q type %q, want Bundle %q", path, b.ResourceType, b.Type, typ)
	}
	if b.Total == nil {
		tb.Fatalf("GET %s: Bundle without total", path)
	}
	return &b
}

// fxTotal is the total of the Bundle at path.
func fxTotal(tb testing.TB, e *env, path, typ string) int {
	tb.Helper()
	return *fxGetBundle(tb, e, path, typ).Total
}

// fxVersion reads the current ETag of a resource and checks it.
func fxWantETag(tb testing.TB, e *env, path, want string) resp {
	tb.Helper()
	r := e.Do("GET", path, "")
	fxStatus(tb, r, http.StatusOK)
	if got := r.Header.Get("ETag"); got != want {
		tb.Fatalf("GET %s: ETag %s, want %s", path, got, want)
	}
	return r
}

// fxClient is used by fxDo: enough idle connections for the concurrency
// tests.
var fxClient = &http.Client{
	Transport: &http.Transport{MaxIdleConnsPerHost: 64},
	Timeout:   60 * time.Second,
}

// fxDo is e.Do for goroutines: it returns errors instead of failing the
// test (t.Fatal may only be called from the test goroutine).
func fxDo(e *env, method, path, body string, headers ...string) (resp, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	u := path
	if !strings.HasPrefix(path, "http") {
		u = e.URL + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return resp{}, err
	}
	req.Header.Set("Authorization", "Bearer "+e.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	res, err := fxClient.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return resp{}, err
	}
	return resp{Status: res.StatusCode, Header: res.Header, Body: b}, nil
}

// fxRaw sends a request written by hand over TCP, for request targets
// net/http's client refuses to send. target is the raw request-target;
// headers are sent as given, plus Host, Authorization (integration token
// unless given), Content-Length and Connection: close.
func fxRaw(tb testing.TB, e *env, method, target, body string, headers ...string) resp {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", e.srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, e.srv.Listener.Addr())
	auth := true
	for i := 0; i+1 < len(headers); i += 2 {
		if strings.EqualFold(headers[i], "Authorization") {
			auth = false
		}
		fmt.Fprintf(&b, "%s: %s\r\n", headers[i], headers[i+1])
	}
	if auth {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", e.token)
	}
	if body != "" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		tb.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp{Status: res.StatusCode, Header: res.Header, Body: out}
}

// fxDecodeAny decodes JSON into any with json.Number numbers.
func fxDecodeAny(tb testing.TB, b []byte) any {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		tb.Fatalf("not JSON: %v", err)
	}
	return v
}

// fxDiff lists the differences between two decoded JSON values (numbers
// as json.Number are compared by their text). It stands in for go-cmp,
// which the module does not require.
func fxDiff(want, got any, path string, out *[]string) {
	if len(*out) > 20 {
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: want object, got %T", path, got))
			return
		}
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			wv, wok := w[k]
			gv, gok := g[k]
			switch {
			case !wok:
				*out = append(*out, fmt.Sprintf("%s.%s: unexpected member %v", path, k, gv))
			case !gok:
				*out = append(*out, fmt.Sprintf("%s.%s: missing (want %v)", path, k, wv))
			default:
				fxDiff(wv, gv, path+"."+k, out)
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: want array, got %T", path, got))
			return
		}
		if len(w) != len(g) {
			*out = append(*out, fmt.Sprintf("%s: array length %d, want %d", path, len(g), len(w)))
			return
		}
		for i := range w {
			fxDiff(w[i], g[i], fmt.Sprintf("%s[%d]", path, i), out)
		}
	default:
		if !reflect.DeepEqual(want, got) {
			*out = append(*out, fmt.Sprintf("%s: got %#v, want %#v", path, got, want))
		}
	}
}

// fxWithoutServerMeta removes meta.versionId and meta.lastUpdated, and
// meta itself when that leaves it empty.
func fxWithoutServerMeta(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	if meta, ok := m["meta"].(map[string]any); ok {
		delete(meta, "versionId")
		delete(meta, "lastUpdated")
		if len(meta) == 0 {
			delete(m, "meta")
		}
	}
	return m
}
