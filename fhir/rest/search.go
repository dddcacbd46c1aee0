package rest

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/fhir/repo"
)

// search is the foundation's type search: `_id` and `identifier`
// criteria, `_count`, paging by id. Other parameters are ignored and
// reported in an OperationOutcome entry (lenient handling), or rejected
// with `Prefer: handling=strict`. The full search API replaces this.
func (s *Server) search(c echo.Context) error {
	typ := c.Param("type")
	n, err := s.count(c)
	if err != nil {
		return err
	}
	params := c.QueryParams()
	crit := url.Values{}
	var ignored []string
	for k, vs := range params {
		switch k {
		case "_id", "identifier":
			crit[k] = vs
		case "_count", "_format", "_pretty", "_after":
		default:
			ignored = append(ignored, k)
		}
	}
	sort.Strings(ignored)
	if len(ignored) > 0 && strictHandling(c) {
		return outcome.New(outcome.Invalid, "not-supported", "unsupported search parameters: %v", ignored)
	}
	criteria := repo.Criteria{Type: typ}
	if len(crit) > 0 {
		if criteria, err = repo.ParseCriteria(typ, crit.Encode()); err != nil {
			return err
		}
	}
	after := params.Get("_after")
	all, err := s.repo.Search(c.Request().Context(), requester(c), typ, criteria, 0)
	if err != nil {
		return err
	}
	total := int64(len(all))
	// results are sorted by id: page after the last id shown
	i := sort.Search(len(all), func(i int) bool { return all[i].ID > after })
	if after == "" {
		i = 0
	}
	page := all[i:]
	base := s.base(c)
	b := newBundle("searchset")
	b.Total = &total
	self := url.Values{}
	for k, vs := range crit {
		self[k] = vs
	}
	self.Set("_count", strconv.Itoa(n))
	b.Link = append(b.Link, bundleLink{Relation: "self", URL: base + "/" + typ + "?" + self.Encode()})
	if len(page) > n {
		page = page[:n]
		if n > 0 {
			self.Set("_after", page[len(page)-1].ID)
			b.Link = append(b.Link, bundleLink{Relation: "next", URL: base + "/" + typ + "?" + self.Encode()})
		}
	}
	for _, v := range page {
		b.Entry = append(b.Entry, entry{FullURL: fmt.Sprintf("%s/%s/%s", base, v.Type, v.ID), Resource: v.JSON, Search: &entrySearch{Mode: "match"}})
	}
	if len(ignored) > 0 {
		b.Entry = append(b.Entry, entry{
			Resource: outcome.JSON([]outcome.Issue{{Severity: "warning", Code: "not-supported",
				Diagnostics: fmt.Sprintf("search parameters ignored (not supported): %v", ignored)}}),
			Search: &entrySearch{Mode: "outcome"},
		})
	}
	return writeJSON(c, http.StatusOK, b)
}

func strictHandling(c echo.Context) bool {
	for _, h := range c.Request().Header.Values("Prefer") {
		if containsFold(h, "handling=strict") {
			return true
		}
	}
	return false
}
