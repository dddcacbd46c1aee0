package resource

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"

	"github.com/dossier-fhir/dossier/fhir/outcome"
)

// Parser parses and validates R4 JSON. It is safe for concurrent use.
type Parser struct {
	um *jsonformat.Unmarshaller
}

// NewParser builds the parser and warms it up with a minimal resource of
// every type, so the first client request does not pay for lazy setup.
func NewParser() (*Parser, error) {
	um, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		return nil, err
	}
	p := &Parser{um: um}
	for _, t := range typeList {
		_, _ = p.um.Unmarshal([]byte(`{"resourceType":"` + t + `"}`))
	}
	return p, nil
}

// Parsed is a validated resource.
type Parsed struct {
	Type   string
	ID     string // "" when the body has none
	Object Object
}

type collector struct{ issues []outcome.Issue }

func (c *collector) ReportValidationError(path string, err error) error {
	c.issues = append(c.issues, issue("error", path, err.Error()))
	return nil
}

func (c *collector) ReportValidationWarning(path string, err error) error {
	c.issues = append(c.issues, issue("warning", path, err.Error()))
	return nil
}

func issue(sev, path, msg string) outcome.Issue {
	is := outcome.Issue{Severity: sev, Code: "invalid", Diagnostics: msg}
	if path != "" {
		is.Expression = []string{path}
	}
	return is
}

// Parse checks data is one valid R4 resource and returns it. Every
// problem found is reported in one *outcome.Error of kind Invalid.
func (p *Parser) Parse(data []byte) (*Parsed, error) {
	obj, err := ParseObject(data)
	if err != nil {
		return nil, outcome.Wrap(err, outcome.Invalid, "structure", "the body is not a valid JSON object: %v", err)
	}
	typ, ok := obj.GetString("resourceType")
	if !ok {
		return nil, outcome.New(outcome.Invalid, "required", "resourceType is missing")
	}
	if !IsType(typ) {
		return nil, outcome.New(outcome.Invalid, "not-supported", "%q is not an R4 resource type", typ)
	}
	var id string
	if raw, ok := obj.Get("id"); ok {
		if json.Unmarshal(raw, &id) != nil || !ValidID(id) {
			return nil, outcome.New(outcome.Invalid, "value", "id is not a valid FHIR id").WithExpression(typ + ".id")
		}
	}
	c := &collector{}
	_, perr := p.um.UnmarshalWithErrorReporter(data, c)
	issues := append(c.issues, structuralIssues(typ, data)...)
	if perr != nil {
		issues = append(parseIssues(perr), issues...)
	}
	hasError := false
	for _, is := range issues {
		if is.Severity == "error" || is.Severity == "fatal" {
			hasError = true
		}
	}
	if hasError {
		return nil, &outcome.Error{Kind: outcome.Invalid, Issues: issues, Err: perr}
	}
	return &Parsed{Type: typ, ID: id, Object: obj}, nil
}

// parseIssues turns google/fhir's error (often a list) into issues.
func parseIssues(err error) []outcome.Issue {
	v := reflect.ValueOf(err)
	if v.Kind() == reflect.Slice {
		var out []outcome.Issue
		for i := 0; i < v.Len(); i++ {
			if e, ok := v.Index(i).Interface().(error); ok && e != nil {
				out = append(out, errorIssue(e))
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return []outcome.Issue{errorIssue(err)}
}

func errorIssue(e error) outcome.Issue {
	msg := e.Error()
	path := ""
	// google/fhir formats located errors as `error at "path": details`.
	if rest, ok := strings.CutPrefix(msg, "error at "); ok {
		var p string
		if n, _ := fmt.Sscanf(rest, "%q", &p); n == 1 {
			path = p
			if i := strings.Index(rest, "\": "); i >= 0 {
				msg = rest[i+3:]
			}
		}
	}
	return issue("error", path, msg)
}
