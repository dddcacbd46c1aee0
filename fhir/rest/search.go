package rest

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/fhir/search"
	"github.com/dossier-fhir/dossier/store"
)

// search serves GET /fhir/{type}?…
func (s *Server) search(c echo.Context) error {
	return s.runSearch(c, c.Param("type"), c.QueryParams(), nil, "")
}

// searchPost serves POST /fhir/{type}/_search (form body, plus any query
// string parameters).
func (s *Server) searchPost(c echo.Context) error {
	ct := c.Request().Header.Get("Content-Type")
	if ct != "" && !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return outcome.New(outcome.UnsupportedMediaType, "not-supported", "_search takes application/x-www-form-urlencoded")
	}
	form, err := c.FormParams()
	if err != nil {
		return outcome.New(outcome.Invalid, "invalid", "the form body is not valid")
	}
	params := url.Values{}
	for k, v := range c.QueryParams() {
		params[k] = append(params[k], v...)
	}
	for k, v := range form {
		params[k] = append(params[k], v...)
	}
	return s.runSearch(c, c.Param("type"), params, nil, "")
}

// compartmentSearch serves GET /fhir/Patient/{id}/{type}?…: the search
// restricted to the patient's compartment (the CompartmentDefinition's
// parameters for that type, and the store's per-patient layout).
func (s *Server) compartmentSearch(c echo.Context) error {
	if c.Param("type") != "Patient" {
		return outcome.New(outcome.NotFound, "not-supported", "only the Patient compartment is supported")
	}
	id, typ := c.Param("id"), c.Param("ctype")
	if !resource.ValidID(id) {
		return outcome.New(outcome.NotFound, "not-found", "Patient/(invalid id) is not known")
	}
	reg := s.repo.Registry()
	var f store.Filter
	if typ == "Patient" {
		f = store.Eq("_id", id)
	} else {
		params := reg.OwnerParam(typ)
		if len(params) == 0 {
			return outcome.New(outcome.NotFound, "not-supported", "%s is not in the Patient compartment", typ)
		}
		ors := make([]store.Filter, 0, len(params))
		for _, p := range params {
			ors = append(ors, store.Eq(p, "Patient/"+id))
		}
		f = store.And(store.InPatient(id), store.Or(ors...))
	}
	return s.runSearch(c, typ, c.QueryParams(), &f, "/Patient/"+id)
}

// Page tokens: "a" + position = after it (next), "b" + position = before
// it (previous). Keyset paging: no server-side state, and pages do not
// shift when writes land between them.
func pageToken(dir string, p store.Position) string {
	return dir + base64.RawURLEncoding.EncodeToString([]byte(store.EncodePosition(p)))
}

func parsePageToken(tok string) (dir string, p store.Position, err error) {
	if len(tok) < 2 || (tok[0] != 'a' && tok[0] != 'b') {
		return "", p, fmt.Errorf("bad page")
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok[1:])
	if err != nil {
		return "", p, err
	}
	p, ok := store.DecodePosition(string(raw))
	if !ok {
		return "", p, fmt.Errorf("bad page")
	}
	return tok[:1], p, nil
}

func (s *Server) runSearch(c echo.Context, typ string, params url.Values, extra *store.Filter, prefix string) error {
	ctx := c.Request().Context()
	req := requester(c)
	base := s.base(c)
	plan, err := s.repo.CompileSearch(ctx, req, typ, params, base, strictHandling(c))
	if err != nil {
		return err
	}
	count := plan.Count
	if count < 0 {
		count = s.cfg.DefaultCount
	}
	count = min(count, s.cfg.MaxCount)
	q := store.Query{Type: typ, Filter: plan.Filter, Sort: plan.Sort}
	if extra != nil {
		q.Filter = store.And(*extra, plan.Filter)
	}
	dir := ""
	if plan.Page != "" {
		d, pos, err := parsePageToken(plan.Page)
		if err != nil {
			return outcome.New(outcome.Invalid, "invalid", "_page is not a page this server issued").WithExpression("_page")
		}
		dir = d
		if d == "a" {
			q.After = &pos
		} else {
			q.Before = &pos
		}
	}
	onlyCount := plan.Summary == "count" || count == 0
	if onlyCount {
		q.Limit = 0
	} else {
		q.Limit = count + 1 // one more tells whether another page exists
	}
	var page []*store.Version
	var total int64
	if onlyCount {
		total, err = s.repo.CountSearch(ctx, req, q)
	} else {
		page, total, err = s.repo.SearchPage(ctx, req, q)
	}
	if err != nil {
		return err
	}
	more := len(page) > count
	if more {
		if dir == "b" {
			page = page[1:]
		} else {
			page = page[:count]
		}
	}
	includes, err := s.repo.Includes(ctx, req, plan, page)
	if err != nil {
		return err
	}

	b := newBundle("searchset")
	if plan.Total != "none" {
		b.Total = &total
	}
	path := base + prefix + "/" + typ
	selfParams := url.Values{}
	for k, v := range params {
		if k != "_page" {
			selfParams[k] = v
		}
	}
	link := func(rel, page string) {
		v := url.Values{}
		for k, x := range selfParams {
			v[k] = x
		}
		if page != "" {
			v.Set("_page", page)
		}
		b.Link = append(b.Link, bundleLink{Relation: rel, URL: path + queryString(v)})
	}
	link("self", plan.Page)
	if !onlyCount && len(page) > 0 {
		first, last := store.PositionOf(page[0], q.Sort), store.PositionOf(page[len(page)-1], q.Sort)
		if (dir == "" && more) || dir == "b" || (dir == "a" && more) {
			link("next", pageToken("a", last))
		}
		if dir == "a" || (dir == "b" && more) {
			link("previous", pageToken("b", first))
		}
	}
	for _, v := range page {
		data, err := subset(v.JSON, plan)
		if err != nil {
			return err
		}
		b.Entry = append(b.Entry, entry{FullURL: fmt.Sprintf("%s/%s/%s", base, v.Type, v.ID), Resource: data, Search: &entrySearch{Mode: "match"}})
	}
	for _, v := range includes {
		data, err := subset(v.JSON, plan)
		if err != nil {
			return err
		}
		b.Entry = append(b.Entry, entry{FullURL: fmt.Sprintf("%s/%s/%s", base, v.Type, v.ID), Resource: data, Search: &entrySearch{Mode: "include"}})
	}
	b.addIgnored(plan.Ignored)
	return writeJSON(c, http.StatusOK, b)
}

// addIgnored reports ignored search parameters in an outcome entry
// (lenient handling).
func (b *bundleJSON) addIgnored(ignored []string) {
	if len(ignored) == 0 {
		return
	}
	ignored = append([]string(nil), ignored...)
	sort.Strings(ignored)
	ignored = slices.Compact(ignored)
	b.Entry = append(b.Entry, entry{
		Resource: outcome.JSON([]outcome.Issue{{Severity: "warning", Code: "not-supported",
			Diagnostics: fmt.Sprintf("search parameters ignored (unknown or not supported): %s", strings.Join(ignored, ", "))}}),
		Search: &entrySearch{Mode: "outcome"},
	})
}

// subset applies _summary and _elements to one resource.
func subset(data []byte, plan *search.Plan) ([]byte, error) {
	if (plan.Summary == "" || plan.Summary == "false") && len(plan.Elements) == 0 {
		return data, nil
	}
	return resource.Subset(data, plan.Summary, plan.Elements)
}

func strictHandling(c echo.Context) bool {
	for _, h := range c.Request().Header.Values("Prefer") {
		if containsFold(h, "handling=strict") {
			return true
		}
	}
	return false
}

// systemSearch serves GET /fhir?_type=A,B&…: the type searches of each
// listed type one after the other (types in the order given, each in its
// _sort order), with one total and keyset paging across them (_page holds
// the type's index and the position in it). _type is required: a search
// of every type of the record is not offered.
func (s *Server) systemSearch(c echo.Context) error {
	ctx := c.Request().Context()
	req := requester(c)
	base := s.base(c)
	params := c.QueryParams()
	var types []string
	for _, v := range params["_type"] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				if !resource.IsType(t) {
					return outcome.New(outcome.Invalid, "not-supported", "_type names an unknown resource type").WithExpression("_type")
				}
				types = append(types, t)
			}
		}
	}
	if len(types) == 0 {
		return outcome.New(outcome.Invalid, "not-supported", "a system search needs _type (e.g. _type=Patient,Practitioner)").WithExpression("_type")
	}
	rest := url.Values{}
	for k, v := range params {
		if k != "_type" && k != "_page" {
			rest[k] = v
		}
	}
	startType, after := 0, ""
	if p := params.Get("_page"); p != "" {
		i, tok, ok := strings.Cut(p, ".")
		n, err := strconv.Atoi(i)
		if !ok || err != nil || n < 0 || n >= len(types) {
			return outcome.New(outcome.Invalid, "invalid", "_page is not a page this server issued").WithExpression("_page")
		}
		startType, after = n, tok
	}
	b := newBundle("searchset")
	var total int64
	count := -1
	var lastType int
	var last *store.Version
	var lastSort []store.SortKey
	more := false
	var ignored []string
	for i, typ := range types {
		plan, err := s.repo.CompileSearch(ctx, req, typ, rest, base, strictHandling(c))
		if err != nil {
			return err
		}
		ignored = append(ignored, plan.Ignored...)
		if count < 0 {
			count = plan.Count
			if count < 0 {
				count = s.cfg.DefaultCount
			}
			count = min(count, s.cfg.MaxCount)
		}
		q := store.Query{Type: typ, Filter: plan.Filter, Sort: plan.Sort}
		if i == startType && after != "" {
			_, pos, err := parsePageToken(after)
			if err != nil {
				return outcome.New(outcome.Invalid, "invalid", "_page is not a page this server issued").WithExpression("_page")
			}
			q.After = &pos
		}
		room := count - len(b.Entry)
		if i < startType || room < 0 || more {
			room = 0
		}
		q.Limit = room + 1
		page, n, err := s.repo.SearchPage(ctx, req, q)
		if err != nil {
			return err
		}
		total += n
		if i < startType {
			continue
		}
		if len(page) > room {
			more = true
			page = page[:room]
		}
		for _, v := range page {
			data, err := subset(v.JSON, plan)
			if err != nil {
				return err
			}
			b.Entry = append(b.Entry, entry{FullURL: fmt.Sprintf("%s/%s/%s", base, v.Type, v.ID), Resource: data, Search: &entrySearch{Mode: "match"}})
			lastType, last, lastSort = i, v, plan.Sort
		}
	}
	if params.Get("_total") != "none" {
		b.Total = &total
	}
	self := url.Values{}
	for k, v := range params {
		self[k] = v
	}
	b.Link = append(b.Link, bundleLink{Relation: "self", URL: base + queryString(self)})
	if more && last != nil {
		self.Set("_page", strconv.Itoa(lastType)+"."+pageToken("a", store.PositionOf(last, lastSort)))
		b.Link = append(b.Link, bundleLink{Relation: "next", URL: base + queryString(self)})
	}
	b.addIgnored(ignored)
	return writeJSON(c, http.StatusOK, b)
}
