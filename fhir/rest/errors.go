package rest

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/store"
)

// toOutcome converts any error to an *outcome.Error.
func toOutcome(err error) *outcome.Error {
	var oe *outcome.Error
	if errors.As(err, &oe) {
		return oe
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return outcome.New(outcome.NotFound, "not-found", "no such endpoint")
		case http.StatusMethodNotAllowed:
			return outcome.New(outcome.MethodNotAllowed, "not-supported", "this method is not allowed on this endpoint")
		case http.StatusRequestEntityTooLarge:
			return outcome.New(outcome.TooLarge, "too-costly", "the request body is too large")
		case http.StatusUnsupportedMediaType:
			return outcome.New(outcome.UnsupportedMediaType, "not-supported", "unsupported media type")
		case http.StatusUnauthorized:
			return outcome.New(outcome.Unauthenticated, "login", "authentication required")
		case http.StatusBadRequest:
			return outcome.New(outcome.Invalid, "invalid", "bad request")
		}
		if he.Code >= 400 && he.Code < 500 {
			return outcome.New(outcome.Invalid, "invalid", "%s", http.StatusText(he.Code))
		}
	}
	switch {
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return outcome.Wrap(err, outcome.Unavailable, "transient", "the service is temporarily unavailable")
	case errors.Is(err, store.ErrNotFound):
		return outcome.Wrap(err, outcome.NotFound, "not-found", "not found")
	}
	return outcome.Wrap(err, outcome.Internal, "exception", "internal error")
}

// handleError is Echo's error handler: every error leaves as an
// OperationOutcome.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	oe := toOutcome(err)
	code := oe.Kind.HTTPStatus()
	if code >= 500 {
		// The cause's type and store op only; never request content.
		s.log.Error("request failed", "route", c.Path(), "method", c.Request().Method, "status", code, "cause", causeOf(err))
	}
	h := c.Response().Header()
	if code == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="dossier"`)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.Blob(code, fhirJSON, outcome.JSON(oe.Issues))
}

// causeOf describes an internal error without request data: store errors
// name their operation; other causes only their Go type.
func causeOf(err error) string {
	var se *store.Error
	if errors.As(err, &se) {
		return se.Error()
	}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		err = u
	}
	return errorType(err)
}
