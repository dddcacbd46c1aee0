package rest

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/store"
)

func (s *Server) historySystem(c echo.Context) error { return s.history(c, "", "") }
func (s *Server) historyType(c echo.Context) error {
	return s.history(c, c.Param("type"), "")
}
func (s *Server) historyInstance(c echo.Context) error {
	return s.history(c, c.Param("type"), c.Param("id"))
}

// count parses _count (default and maximum from the config).
func (s *Server) count(c echo.Context) (int, error) {
	raw := c.QueryParam("_count")
	if raw == "" {
		return s.cfg.DefaultCount, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 0 {
		return 0, outcome.New(outcome.Invalid, "invalid", "_count must be a non-negative integer").WithExpression("_count")
	}
	return min(n, s.cfg.MaxCount), nil
}

// parseInstant parses a FHIR instant (or a dateTime with a zone).
func parseInstant(v string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not an instant")
}

func encodeCursor(v *store.Version) string {
	raw := fmt.Sprintf("%d|%s|%s|%d", v.LastUpdated.UnixMicro(), v.Type, v.ID, v.VersionID)
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeCursor(s string) (*store.Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(string(raw), "|")
	if len(parts) != 4 {
		return nil, fmt.Errorf("bad cursor")
	}
	ts, err1 := strconv.ParseInt(parts[0], 10, 64)
	vid, err2 := strconv.ParseInt(parts[3], 10, 64)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("bad cursor")
	}
	return &store.Cursor{LastUpdated: time.UnixMicro(ts).UTC(), Type: parts[1], ID: parts[2], VersionID: vid}, nil
}

// history serves instance, type and system history, newest first, paged
// by a keyset cursor: a next link names the last entry shown, so writes
// made while a client pages neither shift nor repeat entries.
func (s *Server) history(c echo.Context, typ, id string) error {
	n, err := s.count(c)
	if err != nil {
		return err
	}
	q := store.HistoryQuery{Type: typ, ID: id}
	if v := c.QueryParam("_since"); v != "" {
		t, err := parseInstant(v)
		if err != nil {
			return outcome.New(outcome.Invalid, "invalid", "_since must be an instant such as 2026-01-02T03:04:05Z").WithExpression("_since")
		}
		q.Since = t
	}
	if v := c.QueryParam("_cursor"); v != "" {
		cur, err := decodeCursor(v)
		if err != nil {
			return outcome.New(outcome.Invalid, "invalid", "_cursor is not a cursor this server issued").WithExpression("_cursor")
		}
		q.Before = cur
	}
	ctx := c.Request().Context()
	req := requester(c)
	total, err := s.repo.CountHistory(ctx, req, store.HistoryQuery{Type: typ, ID: id, Since: q.Since})
	if err != nil {
		return err
	}
	var page []*store.Version
	if n > 0 {
		q.Limit = n + 1
		if page, err = s.repo.History(ctx, req, q); err != nil {
			return err
		}
	} else if id != "" {
		// _count=0 still checks the resource exists and is visible.
		if _, err := s.repo.History(ctx, req, store.HistoryQuery{Type: typ, ID: id, Limit: 1}); err != nil {
			return err
		}
	}
	base := s.base(c)
	b := newBundle("history")
	if total >= 0 { // -1: not counted (the requester sees part of the versions)
		b.Total = &total
	}
	path := base
	if typ != "" {
		path += "/" + typ
	}
	if id != "" {
		path += "/" + id
	}
	path += "/_history"
	b.Link = append(b.Link, bundleLink{Relation: "self", URL: path + queryString(c.QueryParams())})
	if len(page) > n {
		page = page[:n]
		next := url.Values{}
		next.Set("_count", strconv.Itoa(n))
		if !q.Since.IsZero() {
			next.Set("_since", c.QueryParam("_since"))
		}
		next.Set("_cursor", encodeCursor(page[len(page)-1]))
		b.Link = append(b.Link, bundleLink{Relation: "next", URL: path + "?" + next.Encode()})
	}
	for _, v := range page {
		b.Entry = append(b.Entry, historyEntry(base, v))
	}
	return writeJSON(c, http.StatusOK, b)
}

func queryString(v url.Values) string {
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}
