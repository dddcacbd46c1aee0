package rest

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/outcome"
)

const fhirJSON = "application/fhir+json; charset=utf-8"

type ctxKey int

const requesterKey ctxKey = 1

// requester returns the authenticated requester of the request.
func requester(c echo.Context) *access.Requester {
	r, _ := c.Request().Context().Value(requesterKey).(*access.Requester)
	return r
}

// authenticate verifies the bearer token: no or bad token is 401.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		tok, ok := access.BearerToken(c.Request().Header.Get("Authorization"))
		if !ok {
			return outcome.New(outcome.Unauthenticated, "login", "a bearer token is required")
		}
		req, err := s.verifier.Verify(tok, time.Now())
		if err != nil {
			// The reason is fixed text from the verifier (no claim values).
			return outcome.Wrap(err, outcome.Unauthenticated, "login", "the bearer token was rejected: %v", err)
		}
		r := c.Request()
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), requesterKey, req)))
		return next(c)
	}
}

// negotiate enforces the formats: JSON only (406 for anything else),
// request bodies in FHIR JSON (415), JSON Patch for PATCH. The exception
// is Binary, whose create, update and reads take and give any media type
// (binary.go).
func (s *Server) negotiate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if f := c.QueryParam("_format"); f != "" {
			switch strings.TrimSpace(strings.SplitN(f, ";", 2)[0]) {
			case "json", "application/json", "application/fhir+json":
			default:
				return outcome.New(outcome.NotAcceptable, "not-supported", "only JSON is supported (_format=json)")
			}
		} else if !acceptsJSON(r.Header.Get("Accept")) && !binaryRaw(c) {
			return outcome.New(outcome.NotAcceptable, "not-supported",
				"only application/fhir+json and application/json can be produced")
		}
		switch r.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			ct := r.Header.Get("Content-Type")
			mt := ""
			if ct != "" {
				var err error
				if mt, _, err = mime.ParseMediaType(ct); err != nil {
					return outcome.New(outcome.UnsupportedMediaType, "not-supported", "the Content-Type header is malformed")
				}
			}
			if strings.HasSuffix(c.Path(), "/_search") {
				// form body: checked by the handler
			} else if r.Method == http.MethodPatch {
				if mt != "application/json-patch+json" {
					return outcome.New(outcome.UnsupportedMediaType, "not-supported",
						"PATCH needs Content-Type application/json-patch+json (JSON Patch)")
				}
			} else if mt != "" && mt != "application/fhir+json" && mt != "application/json" && !binaryRaw(c) {
				return outcome.New(outcome.UnsupportedMediaType, "not-supported",
					"the body must be application/fhir+json or application/json")
			}
		}
		return next(c)
	}
}

// acceptsJSON reports whether an Accept header allows FHIR JSON.
func acceptsJSON(accept string) bool {
	if strings.TrimSpace(accept) == "" {
		return true
	}
	for _, mt := range acceptedTypes(accept) {
		switch mt {
		case "*/*", "application/*", "application/json", "application/fhir+json", "application/json+fhir":
			return true
		}
	}
	return false
}

// readBody reads the request body up to the configured limit (413 above).
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, outcome.New(outcome.TooLarge, "too-costly", "the request body exceeds %d bytes", s.cfg.MaxBodyBytes)
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, outcome.Wrap(err, outcome.Invalid, "structure", "the request body could not be read")
	}
	if int64(len(buf)) > s.cfg.MaxBodyBytes {
		return nil, outcome.New(outcome.TooLarge, "too-costly", "the request body exceeds %d bytes", s.cfg.MaxBodyBytes)
	}
	if len(buf) == 0 {
		return nil, outcome.New(outcome.Invalid, "required", "the request body is empty")
	}
	return buf, nil
}

// recover turns a panic into a 500 OperationOutcome (a bug: logged with
// its stack, which holds no request content).
func (s *Server) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("panic", "route", c.Path(), "panic", fmt.Sprintf("%T", p), "stack", string(debug.Stack()))
				err = outcome.New(outcome.Internal, "exception", "internal error")
			}
		}()
		return next(c)
	}
}

// observe records the request metric and a log line: route pattern,
// method, status, duration; never the URL's query or ids.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		code := c.Response().Status
		d := time.Since(start)
		if s.metrics != nil {
			s.metrics.observeRequest(route, c.Request().Method, code, d)
		}
		s.log.Debug("request", "route", route, "method", c.Request().Method, "status", code, "duration", d)
		return nil
	}
}

func errorType(err error) string { return fmt.Sprintf("%T", err) }

// acceptedTypes lists the media types of an Accept header that are not
// refused (q=0), in order.
func acceptedTypes(accept string) []string {
	var out []string
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if q, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
				continue
			}
		}
		out = append(out, mt)
	}
	return out
}
