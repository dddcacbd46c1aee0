package rest

import (
	"context"
	"net/http"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/fhir/repo"
)

// Tracer stores the traces of one request: an AuditEvent per record
// touched (package audit). It returns only when they are stored.
type Tracer interface {
	// Begin is called when a traced request starts; the request calls
	// the returned function once, when it hands its touches to Trace or
	// ends without any (the trail's group commit waits for requests on
	// their way, see trail.Options.MaxDelay).
	Begin() (arrived func())
	Trace(ctx context.Context, req *access.Requester, touches []repo.Touch) error
}

// traced makes every access to a record leave a trace before the response
// leaves, fail-closed: the repo notes what it touches in the request's
// context; the traces are stored when the handler starts writing its
// response (or returns an error), and when they cannot be stored the
// client gets 503 and none of the data.
func (s *Server) traced(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.cfg.Tracer == nil {
			return next(c)
		}
		ctx, touches := repo.WithTouches(c.Request().Context())
		c.SetRequest(c.Request().WithContext(ctx))
		req := requester(c)
		arrived := sync.OnceFunc(s.cfg.Tracer.Begin())
		defer arrived()
		tw := &traceWriter{ResponseWriter: c.Response().Writer}
		tw.flush = func() error {
			ts := touches.Take()
			arrived()
			if len(ts) == 0 {
				return nil
			}
			return s.cfg.Tracer.Trace(ctx, req, ts)
		}
		c.Response().Writer = tw
		err := next(c)
		if tw.started {
			// The response has been written (or replaced by a 503); a
			// touch noted after the first byte is stored now, late.
			if ferr := tw.flush(); ferr != nil {
				s.log.Error("trace after the response", "err", ferr)
			}
			return err
		}
		if ferr := tw.flush(); ferr != nil {
			s.log.Error("trace store failed: request refused", "err", ferr)
			return outcome.Wrap(ferr, outcome.Unavailable, "transient",
				"the access could not be traced; nothing is returned without a trace")
		}
		return err
	}
}

// traceWriter stores the request's traces just before the first byte of
// the response; when that fails the response becomes a 503.
type traceWriter struct {
	http.ResponseWriter
	flush   func() error
	once    sync.Once
	started bool
	failed  bool
}

func (w *traceWriter) begin() {
	w.once.Do(func() {
		w.started = true
		if err := w.flush(); err != nil {
			w.failed = true
			h := w.ResponseWriter.Header()
			for k := range h {
				delete(h, k)
			}
			h.Set("Content-Type", fhirJSON)
			w.ResponseWriter.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.ResponseWriter.Write(outcome.JSON([]outcome.Issue{{Severity: "error", Code: "transient",
				Diagnostics: "the access could not be traced; nothing is returned without a trace"}}))
		}
	})
}

func (w *traceWriter) WriteHeader(code int) {
	w.begin()
	if !w.failed {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *traceWriter) Write(p []byte) (int, error) {
	w.begin()
	if w.failed {
		return len(p), nil // swallowed: the client has its 503
	}
	return w.ResponseWriter.Write(p)
}

func (w *traceWriter) Flush() {
	w.begin()
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.failed {
		f.Flush()
	}
}
