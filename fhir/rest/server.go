// Package rest is Dossier's HTTP face: Echo routes (all in routes.go),
// handlers as methods of Server, and one error handler (errors.go) that
// turns every error into an OperationOutcome and a status.
//
// Logs carry the route pattern, method, status and duration only: no
// query strings (a search names patients), no ids, no bodies.
package rest

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/bundle"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/store"
)

// Config holds the HTTP layer's settings.
type Config struct {
	// BaseURL is the public FHIR base (e.g. https://dossier.example/fhir);
	// when empty it is derived from each request's Host.
	BaseURL string
	// MaxBodyBytes limits request bodies (413 above it).
	MaxBodyBytes int64
	// DefaultCount and MaxCount bound page sizes of history and search.
	DefaultCount, MaxCount int
	// Version is the software version shown in the CapabilityStatement.
	Version string
	// MaxBundleEntries limits batch and transaction bundles (413 above).
	MaxBundleEntries int
	// Tracer, when set, stores an AuditEvent for every access to a
	// record before the response leaves (fail-closed: 503 when it
	// cannot). A dependency rather than a setting, kept here so that
	// New's signature stays.
	Tracer Tracer
	// MaxBinary limits the content of a Binary uploaded raw (413 above);
	// it is streamed to the store, never held in memory.
	MaxBinary int64
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 16 << 20, DefaultCount: 50, MaxCount: 1000, Version: "dev", MaxBundleEntries: 10000, MaxBinary: DefaultMaxBinary}
}

// Server holds the handlers' dependencies.
type Server struct {
	cfg      Config
	repo     *repo.Repo
	bundles  *bundle.Processor
	store    store.Store
	verifier *access.Verifier
	metrics  *Metrics
	log      *slog.Logger
	started  time.Time
}

// New builds the Echo instance with every route.
func New(cfg Config, r *repo.Repo, st store.Store, v *access.Verifier, m *Metrics, log *slog.Logger) *echo.Echo {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultConfig().MaxBodyBytes
	}
	if cfg.MaxBinary <= 0 {
		cfg.MaxBinary = DefaultConfig().MaxBinary
	}
	if cfg.DefaultCount <= 0 {
		cfg.DefaultCount = DefaultConfig().DefaultCount
	}
	if cfg.MaxCount < cfg.DefaultCount {
		cfg.MaxCount = max(cfg.DefaultCount, DefaultConfig().MaxCount)
	}
	if log == nil {
		log = slog.Default()
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	s := &Server{cfg: cfg, repo: r, bundles: bundle.New(r, bundle.Config{MaxEntries: cfg.MaxBundleEntries}), store: st, verifier: v, metrics: m, log: log, started: time.Now().UTC()}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	s.routes(e)
	return e
}

func (s *Server) healthz(c echo.Context) error {
	return c.String(http.StatusOK, "ok\n")
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return c.String(http.StatusServiceUnavailable, "store unavailable\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

// base returns the FHIR base URL for links.
func (s *Server) base(c echo.Context) string {
	if s.cfg.BaseURL != "" {
		return s.cfg.BaseURL
	}
	r := c.Request()
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/fhir"
}
