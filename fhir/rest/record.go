package rest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/fhir/resource"
)

// everything serves GET|POST /fhir/Patient/{id}/$everything: the whole
// record, paged (_count, _cursor), optionally since an instant (_since)
// and for some types (_type).
func (s *Server) everything(c echo.Context) error {
	if c.Param("type") != "Patient" {
		return outcome.New(outcome.NotFound, "not-supported", "$everything is defined on Patient only")
	}
	params := c.QueryParams()
	if c.Request().Method == http.MethodPost {
		if err := s.operationParams(c, params); err != nil {
			return err
		}
	}
	q := repo.EverythingQuery{Patient: c.Param("id"), Count: s.cfg.DefaultCount, Cursor: params.Get("_cursor")}
	if v := params.Get("_count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return outcome.New(outcome.Invalid, "value", "_count must be a positive integer").WithExpression("_count")
		}
		q.Count = min(n, s.cfg.MaxCount)
	}
	if v := params.Get("_since"); v != "" {
		t, err := parseInstant(v)
		if err != nil {
			return outcome.New(outcome.Invalid, "value", "_since must be an instant (e.g. 2024-01-31T10:00:00Z)").WithExpression("_since")
		}
		q.Since = t
	}
	for _, v := range params["_type"] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t == "" {
				continue
			} else if !resource.IsType(t) {
				return outcome.New(outcome.Invalid, "not-supported", "_type names an unknown resource type").WithExpression("_type")
			}
			q.Types = append(q.Types, t)
		}
	}
	page, err := s.repo.Everything(c.Request().Context(), requester(c), q)
	if err != nil {
		return err
	}
	base := s.base(c)
	b := newBundle("searchset")
	self := url.Values{}
	for k, v := range params {
		self[k] = v
	}
	path := fmt.Sprintf("%s/Patient/%s/$everything", base, q.Patient)
	b.Link = append(b.Link, bundleLink{Relation: "self", URL: path + queryString(self)})
	if page.Next != "" {
		self.Set("_cursor", page.Next)
		b.Link = append(b.Link, bundleLink{Relation: "next", URL: path + queryString(self)})
	}
	for _, v := range page.Matches {
		b.Entry = append(b.Entry, entry{FullURL: fmt.Sprintf("%s/%s/%s", base, v.Type, v.ID), Resource: v.JSON, Search: &entrySearch{Mode: "match"}})
	}
	for _, v := range page.Included {
		b.Entry = append(b.Entry, entry{FullURL: fmt.Sprintf("%s/%s/%s", base, v.Type, v.ID), Resource: v.JSON, Search: &entrySearch{Mode: "include"}})
	}
	return writeJSON(c, http.StatusOK, b)
}

// operationParams adds the parameters of a POSTed Parameters resource
// (primitive values only) to params.
func (s *Server) operationParams(c echo.Context, params url.Values) error {
	if c.Request().ContentLength == 0 {
		return nil
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	in, err := decodeParameters(body)
	if err != nil {
		return err
	}
	for _, p := range in.Parameter {
		if v, ok := p.primitive(); ok {
			params.Add(p.Name, v)
		}
	}
	return nil
}

// closeRecord serves POST /fhir/Patient/{id}/$close.
func (s *Server) closeRecord(c echo.Context) error {
	return s.lifecycle(c, s.repo.CloseRecord)
}

// reopenRecord serves POST /fhir/Patient/{id}/$reopen.
func (s *Server) reopenRecord(c echo.Context) error {
	return s.lifecycle(c, s.repo.ReopenRecord)
}

func (s *Server) lifecycle(c echo.Context, op func(context.Context, *access.Requester, string) (repo.Result, error)) error {
	if c.Param("type") != "Patient" {
		return outcome.New(outcome.NotFound, "not-supported", "this operation is defined on Patient only")
	}
	res, err := op(c.Request().Context(), requester(c), c.Param("id"))
	if err != nil {
		return err
	}
	setVersionHeaders(c, res.Version)
	return c.Blob(http.StatusOK, fhirJSON, res.Version.JSON)
}

// parameter is one Parameters.parameter (the forms $validate and
// $everything take).
type parameter struct {
	Name          string          `json:"name"`
	Resource      json.RawMessage `json:"resource,omitempty"`
	ValueCode     *string         `json:"valueCode,omitempty"`
	ValueURI      *string         `json:"valueUri,omitempty"`
	ValueCanon    *string         `json:"valueCanonical,omitempty"`
	ValueString   *string         `json:"valueString,omitempty"`
	ValueInstant  *string         `json:"valueInstant,omitempty"`
	ValueDateTime *string         `json:"valueDateTime,omitempty"`
	ValueInteger  *int64          `json:"valueInteger,omitempty"`
	ValuePosInt   *int64          `json:"valuePositiveInt,omitempty"`
}

func (p parameter) primitive() (string, bool) {
	for _, s := range []*string{p.ValueCode, p.ValueURI, p.ValueCanon, p.ValueString, p.ValueInstant, p.ValueDateTime} {
		if s != nil {
			return *s, true
		}
	}
	for _, n := range []*int64{p.ValueInteger, p.ValuePosInt} {
		if n != nil {
			return strconv.FormatInt(*n, 10), true
		}
	}
	return "", false
}

type parameters struct {
	ResourceType string      `json:"resourceType"`
	Parameter    []parameter `json:"parameter"`
}

func decodeParameters(body []byte) (parameters, error) {
	var in parameters
	if err := json.Unmarshal(body, &in); err != nil || in.ResourceType != "Parameters" {
		return in, outcome.New(outcome.Invalid, "structure", "the body must be a Parameters resource")
	}
	return in, nil
}

// validate serves POST /fhir/{type}/$validate and /fhir/{type}/{id}/$validate:
// the body is the resource, or Parameters with "resource", "mode"
// (create | update | delete) and "profile". The answer is 200 with an
// OperationOutcome listing every issue (base R4 rules, profiles, the
// record's content rules) with its FHIRPath location; "All OK" when none.
func (s *Server) validate(c echo.Context) error {
	typ, id := c.Param("type"), c.Param("id")
	if !resource.IsType(typ) {
		return outcome.New(outcome.NotFound, "not-supported", "unknown resource type %q", typ)
	}
	mode, profile := c.QueryParam("mode"), c.QueryParam("profile")
	var body []byte
	var err error
	if mode != "delete" || c.Request().ContentLength != 0 { // mode=delete in the URL needs no body
		if body, err = s.readBody(c); err != nil {
			return err
		}
	}
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	_ = json.Unmarshal(body, &head)
	if head.ResourceType == "Parameters" && typ != "Parameters" {
		in, err := decodeParameters(body)
		if err != nil {
			return err
		}
		body = nil
		for _, p := range in.Parameter {
			switch p.Name {
			case "resource":
				body = p.Resource
			case "mode":
				mode, _ = p.primitive()
			case "profile":
				profile, _ = p.primitive()
			}
		}
	}
	ctx := c.Request().Context()
	req := requester(c)
	switch mode {
	case "", "create", "update":
	case "delete":
		if id == "" {
			return outcome.New(outcome.Invalid, "required", "mode=delete needs the resource id in the URL")
		}
		issues, err := s.repo.ValidateDelete(ctx, req, typ, id)
		if err != nil {
			return err
		}
		return validationOutcome(c, issues)
	default:
		return outcome.New(outcome.Invalid, "value", "mode must be create, update or delete").WithExpression("mode")
	}
	if len(body) == 0 {
		return outcome.New(outcome.Invalid, "required", "no resource to validate")
	}
	if profile != "" {
		if body, err = claimProfile(body, profile); err != nil {
			return err
		}
	}
	p, err := s.repo.Validate(typ, body)
	if err != nil {
		oe, ok := err.(*outcome.Error)
		if !ok || oe.Kind != outcome.Invalid {
			return err
		}
		return validationOutcome(c, oe.Issues)
	}
	var issues []outcome.Issue
	if mode == "update" {
		if id == "" || p.ID != id {
			issues = append(issues, outcome.Issue{Severity: "error", Code: "invalid",
				Diagnostics: "for mode=update the resource id must match the id in the URL", Expression: []string{typ + ".id"}})
		}
	}
	more, err := s.repo.ValidateProfiles(ctx, req, p)
	if err != nil {
		oe, ok := err.(*outcome.Error)
		if !ok || (oe.Kind != outcome.Invalid && oe.Kind != outcome.Unprocessable) {
			return err
		}
		more = oe.Issues
	}
	return validationOutcome(c, append(issues, more...))
}

// claimProfile adds profile to the resource's meta.profile.
func claimProfile(body []byte, profile string) ([]byte, error) {
	obj, err := resource.ParseObject(body)
	if err != nil {
		return nil, outcome.New(outcome.Invalid, "structure", "the resource is not a JSON object")
	}
	meta := resource.Object{}
	if raw, ok := obj.Get("meta"); ok {
		if meta, err = resource.ParseObject(raw); err != nil {
			return nil, outcome.New(outcome.Invalid, "structure", "meta is not an object")
		}
	}
	var profiles []string
	if raw, ok := meta.Get("profile"); ok {
		_ = json.Unmarshal(raw, &profiles)
	}
	profiles = append(profiles, profile)
	pb, _ := json.Marshal(profiles)
	meta = meta.Set("profile", pb)
	return obj.Set("meta", meta.Marshal()).Marshal(), nil
}

func validationOutcome(c echo.Context, issues []outcome.Issue) error {
	if len(issues) == 0 {
		issues = []outcome.Issue{{Severity: "information", Code: "informational", Diagnostics: "All OK"}}
	}
	return c.Blob(http.StatusOK, fhirJSON, outcome.JSON(issues))
}

// dutyReport serves GET /fhir/$duty-report?rpps=…|organization=…&start=…&end=…[&window=days]:
// the doctors' duty report (L1111-14/15) as a MeasureReport.
func (s *Server) dutyReport(c echo.Context) error {
	q := repo.DutyQuery{RPPS: c.QueryParam("rpps"), Organization: strings.TrimPrefix(c.QueryParam("organization"), "Organization/"), Window: 7 * 24 * time.Hour}
	var err error
	if q.Start, err = parseDay(c.QueryParam("start")); err != nil {
		return outcome.New(outcome.Invalid, "value", "start must be a date or an instant").WithExpression("start")
	}
	if q.End, err = parseDay(c.QueryParam("end")); err != nil {
		return outcome.New(outcome.Invalid, "value", "end must be a date or an instant").WithExpression("end")
	}
	if w := c.QueryParam("window"); w != "" {
		days, err := strconv.Atoi(w)
		if err != nil || days < 0 || days > 366 {
			return outcome.New(outcome.Invalid, "value", "window is a number of days (0–366)").WithExpression("window")
		}
		q.Window = time.Duration(days) * 24 * time.Hour
	}
	rep, err := s.repo.Duty(c.Request().Context(), requester(c), q)
	if err != nil {
		return err
	}
	body, err := rep.MeasureReport(time.Now())
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, fhirJSON, body)
}

// parseDay parses a date (its start, UTC) or an instant.
func parseDay(s string) (time.Time, error) {
	if t, err := parseInstant(s); err == nil {
		return t, nil
	}
	return time.Parse("2006-01-02", s)
}
