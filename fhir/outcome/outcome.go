// Package outcome is how the FHIR layer reports failures: an *Error has a
// Kind (what went wrong, independent of HTTP) and the OperationOutcome
// issues to show the client. The REST layer's single error handler maps
// kinds to HTTP statuses.
//
// Diagnostics may contain what the client sent (validation messages name
// elements and values); they go into responses, never into logs.
package outcome

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Kind classifies an error.
type Kind int

// Kinds of error.
const (
	Internal             Kind = iota
	Invalid                   // 400: malformed request or resource
	Unauthenticated           // 401
	Forbidden                 // 403
	NotFound                  // 404
	MethodNotAllowed          // 405
	NotAcceptable             // 406
	Conflict                  // 409
	Gone                      // 410
	PreconditionFailed        // 412
	TooLarge                  // 413
	UnsupportedMediaType      // 415
	Unprocessable             // 422: valid FHIR but breaks a business rule
	Unavailable               // 503
	NotImplemented            // 501
)

// Issue is one OperationOutcome.issue.
type Issue struct {
	Severity    string   `json:"severity"` // fatal | error | warning | information
	Code        string   `json:"code"`     // IssueType code
	Diagnostics string   `json:"diagnostics,omitempty"`
	Expression  []string `json:"expression,omitempty"`
}

// Error is a FHIR-level failure.
type Error struct {
	Kind   Kind
	Issues []Issue
	Err    error // cause, for errors.Is/As; never shown to clients
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, is := range e.Issues {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(is.Code)
		if is.Diagnostics != "" {
			b.WriteString(": ")
			b.WriteString(is.Diagnostics)
		}
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error with one issue of severity error.
func New(k Kind, code, format string, args ...any) *Error {
	return &Error{Kind: k, Issues: []Issue{{Severity: "error", Code: code, Diagnostics: fmt.Sprintf(format, args...)}}}
}

// Wrap is New with a cause.
func Wrap(err error, k Kind, code, format string, args ...any) *Error {
	e := New(k, code, format, args...)
	e.Err = err
	return e
}

// KindOf returns the kind of err (Internal when it carries none).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// OperationOutcome is the JSON of an R4 OperationOutcome.
type OperationOutcome struct {
	ResourceType string  `json:"resourceType"`
	Issue        []Issue `json:"issue"`
}

// JSON renders issues as an OperationOutcome.
func JSON(issues []Issue) []byte {
	if len(issues) == 0 {
		issues = []Issue{{Severity: "information", Code: "informational", Diagnostics: "ok"}}
	}
	b, _ := json.Marshal(OperationOutcome{ResourceType: "OperationOutcome", Issue: issues})
	return b
}

// Info is a single informational issue.
func Info(msg string) []Issue {
	return []Issue{{Severity: "information", Code: "informational", Diagnostics: msg}}
}

// WithExpression sets the expression of every issue.
func (e *Error) WithExpression(expr ...string) *Error {
	for i := range e.Issues {
		e.Issues[i].Expression = expr
	}
	return e
}

// HTTPStatus is the one switch from error kinds to HTTP statuses (the
// REST error handler and bundle entry responses both use it).
func (k Kind) HTTPStatus() int {
	switch k {
	case Invalid:
		return http.StatusBadRequest
	case Unauthenticated:
		return http.StatusUnauthorized
	case Forbidden:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case NotAcceptable:
		return http.StatusNotAcceptable
	case Conflict:
		return http.StatusConflict
	case Gone:
		return http.StatusGone
	case PreconditionFailed:
		return http.StatusPreconditionFailed
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	case UnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case Unprocessable:
		return http.StatusUnprocessableEntity
	case Unavailable:
		return http.StatusServiceUnavailable
	case NotImplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}
