package rest_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/fhir/rest"
	"github.com/dossier-fhir/dossier/fhir/search"
	"github.com/dossier-fhir/dossier/profiles"
	"github.com/dossier-fhir/dossier/store"
	"github.com/dossier-fhir/dossier/store/embedded"
	smongo "github.com/dossier-fhir/dossier/store/mongo"
)

// One embedded engine and one parser for the package's tests; each test
// server gets its own database.
var (
	engineOnce sync.Once
	engine     *embedded.Engine
	engineErr  error
	parser     *resource.Parser
	registry   *search.Registry
	dbSeq      atomic.Int64
)

var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

func sharedEngine(tb testing.TB) *embedded.Engine {
	engineOnce.Do(func() {
		dir, err := tmpDir()
		if err != nil {
			engineErr = err
			return
		}
		// DOSSIER_TEST_SYNC=normal runs the engine with SQLite
		// synchronous=normal (benchmarks compare both settings).
		engine, engineErr = embedded.StartWith(context.Background(), embedded.Config{Dir: dir, Synchronous: os.Getenv("DOSSIER_TEST_SYNC")})
		if engineErr == nil {
			parser, engineErr = resource.NewParser()
		}
		if engineErr == nil {
			registry, engineErr = search.LoadRegistry(profiles.FS, profiles.SearchParameterFiles...)
		}
	})
	if engineErr != nil {
		tb.Fatal(engineErr)
	}
	return engine
}

// env is a running server over real HTTP on the embedded engine.
type env struct {
	tb    testing.TB
	URL   string // FHIR base, e.g. http://127.0.0.1:1234/fhir
	srv   *httptest.Server
	Store *smongo.Store
	Reg   *prometheus.Registry
	token string
}

type option func(*rest.Config)

func newEnv(tb testing.TB, opts ...option) *env {
	tb.Helper()
	return newEnvWith(tb, setup{opts: opts})
}

// setup chooses what newEnvWith builds beyond the defaults: the access
// policy (the interim rule unless set) and profile validation.
type setup struct {
	opts     []option
	policy   func(st store.Store) access.Policy
	profiles repo.ProfileValidator
	strict   bool
	// db, when set, is the database to use (two servers over one store:
	// different policies on the same data); it is dropped at cleanup.
	db string
	// tracer, when set, builds the audit trail of the server.
	tracer func(st store.Store, rp *repo.Repo) rest.Tracer
}

// newEnvWith is newEnv with a setup.
func newEnvWith(tb testing.TB, su setup) *env {
	tb.Helper()
	opts := su.opts
	e := sharedEngine(tb)
	db := su.db
	if db == "" {
		db = fmt.Sprintf("t%d", dbSeq.Add(1))
	}
	ctx := context.Background()
	ms, err := smongo.Open(ctx, e.URI(), db, e.Options(db))
	if err != nil {
		tb.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	st := store.NewMetered(ms, reg)
	v, err := access.NewHS256Verifier(testSecret)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := rest.DefaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	var logOut io.Writer = io.Discard
	if os.Getenv("DOSSIER_TEST_LOG") != "" { // debugging: server errors to stderr
		logOut = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))
	var pol access.Policy = access.Interim{}
	if su.policy != nil {
		pol = su.policy(st)
	}
	rp := repo.New(st, parser, registry, pol)
	if su.profiles != nil {
		rp.UseProfiles(su.profiles, su.strict)
	}
	if su.tracer != nil {
		cfg.Tracer = su.tracer(st, rp)
	}
	h := rest.New(cfg, rp, st, v, rest.NewMetrics(reg, reg), log)
	srv := httptest.NewServer(h)
	tb.Cleanup(func() {
		srv.Close()
		_ = ms.Database().Drop(context.Background())
		_ = ms.Close(context.Background())
	})
	en := &env{tb: tb, URL: srv.URL + "/fhir", srv: srv, Store: ms, Reg: reg}
	en.token = en.Token(access.Claims{Role: "integration", Org: "org1", Subject: "engine-1"})
	return en
}

// Token mints a token for the given claims.
func (e *env) Token(c access.Claims) string {
	e.tb.Helper()
	tok, err := access.MintHS256(testSecret, c, time.Now())
	if err != nil {
		e.tb.Fatal(err)
	}
	return tok
}

// resp is a response with its body read.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends a request with the integration token unless headers set
// Authorization ("" removes it).
func (e *env) Do(method, path, body string, headers ...string) resp {
	e.tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = e.URL + path
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		e.tb.Fatal(err)
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
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.tb.Fatal(err)
	}
	return resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// tmpDir is a folder for the shared engine, removed by TestMain.
func tmpDir() (string, error) {
	return os.MkdirTemp("", "dossier-rest-test-")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if engine != nil {
		dir := engine.Dir()
		_ = engine.Close()
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}
