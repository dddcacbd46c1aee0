package rest

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/dossier-fhir/dossier/fhir/bundle"
	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/store"
)

// typeAllow is what /fhir/{type} allows without search criteria (PUT and
// DELETE there are conditional and need criteria).
const typeAllow = "GET, POST"

func etag(v *store.Version) string { return fmt.Sprintf(`W/"%d"`, v.VersionID) }

// setVersionHeaders sets ETag and Last-Modified for v.
func setVersionHeaders(c echo.Context, v *store.Version) {
	h := c.Response().Header()
	h.Set("ETag", etag(v))
	h.Set("Last-Modified", v.LastUpdated.UTC().Format(http.TimeFormat))
}

// writeVersion answers with the stored JSON of v, unchanged.
func writeVersion(c echo.Context, code int, v *store.Version) error {
	setVersionHeaders(c, v)
	if c.Request().Method == http.MethodHead {
		c.Response().Header().Set("Content-Type", fhirJSON)
		return c.NoContent(code)
	}
	return c.Blob(code, fhirJSON, v.JSON)
}

// parseETag reads a version from an If-Match / If-None-Match value:
// W/"3", "3" or 3.
func parseETag(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "W/")
	s = strings.Trim(s, `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

func ifMatch(c echo.Context) (*int64, error) {
	h := c.Request().Header.Get("If-Match")
	if h == "" {
		return nil, nil
	}
	n, ok := parseETag(h)
	if !ok {
		return nil, outcome.New(outcome.Invalid, "invalid", `If-Match must be a version ETag such as W/"3"`)
	}
	return &n, nil
}

// notModified applies If-None-Match and If-Modified-Since to a read.
func notModified(c echo.Context, v *store.Version) bool {
	r := c.Request()
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, t := range strings.Split(inm, ",") {
			if strings.TrimSpace(t) == "*" {
				return true
			}
			if n, ok := parseETag(t); ok && n == v.VersionID {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !v.LastUpdated.Truncate(time.Second).After(t) {
			return true
		}
	}
	return false
}

func (s *Server) read(c echo.Context) error {
	return s.readThen(c, c.Param("type"), func(v *store.Version) error { return writeVersion(c, http.StatusOK, v) })
}

// readThen reads typ/{id} and answers with serve, or 304/410/404.
func (s *Server) readThen(c echo.Context, typ string, serve func(*store.Version) error) error {
	v, err := s.repo.Read(c.Request().Context(), requester(c), typ, c.Param("id"))
	if err != nil {
		if v != nil && outcome.KindOf(err) == outcome.Gone {
			setVersionHeaders(c, v)
		}
		return err
	}
	if notModified(c, v) {
		setVersionHeaders(c, v)
		return c.NoContent(http.StatusNotModified)
	}
	return serve(v)
}

func (s *Server) vread(c echo.Context) error {
	return s.vreadThen(c, c.Param("type"), func(v *store.Version) error { return writeVersion(c, http.StatusOK, v) })
}

// vreadThen reads version {vid} of typ/{id} and answers with serve.
func (s *Server) vreadThen(c echo.Context, typ string, serve func(*store.Version) error) error {
	vid, err := strconv.ParseInt(c.Param("vid"), 10, 64)
	if err != nil || vid < 1 {
		return outcome.New(outcome.NotFound, "not-found", "no such version")
	}
	v, err := s.repo.VRead(c.Request().Context(), requester(c), typ, c.Param("id"), vid)
	if err != nil {
		if v != nil && outcome.KindOf(err) == outcome.Gone {
			setVersionHeaders(c, v)
		}
		return err
	}
	return serve(v)
}

func (s *Server) create(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	res, err := s.repo.Create(c.Request().Context(), requester(c), c.Param("type"), body, c.Request().Header.Get("If-None-Exist"))
	if err != nil {
		return err
	}
	return s.respondWrite(c, res)
}

func (s *Server) update(c echo.Context) error {
	im, err := ifMatch(c)
	if err != nil {
		return err
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	res, err := s.repo.Update(c.Request().Context(), requester(c), c.Param("type"), c.Param("id"), body, im)
	if err != nil {
		return err
	}
	return s.respondWrite(c, res)
}

func (s *Server) conditionalUpdate(c echo.Context) error {
	q := c.Request().URL.RawQuery
	if q == "" {
		c.Response().Header().Set("Allow", typeAllow)
		return outcome.New(outcome.MethodNotAllowed, "not-supported", "PUT on a type needs search criteria (conditional update)")
	}
	im, err := ifMatch(c)
	if err != nil {
		return err
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	res, err := s.repo.ConditionalUpdate(c.Request().Context(), requester(c), c.Param("type"), q, body, im)
	if err != nil {
		return err
	}
	return s.respondWrite(c, res)
}

func (s *Server) patch(c echo.Context) error {
	im, err := ifMatch(c)
	if err != nil {
		return err
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	res, err := s.repo.Patch(c.Request().Context(), requester(c), c.Param("type"), c.Param("id"), body, im)
	if err != nil {
		return err
	}
	return s.respondWrite(c, res)
}

func (s *Server) delete(c echo.Context) error {
	im, err := ifMatch(c)
	if err != nil {
		return err
	}
	res, err := s.repo.Delete(c.Request().Context(), requester(c), c.Param("type"), c.Param("id"), im)
	if err != nil {
		return err
	}
	return s.respondDelete(c, res)
}

func (s *Server) conditionalDelete(c echo.Context) error {
	q := c.Request().URL.RawQuery
	if q == "" {
		c.Response().Header().Set("Allow", typeAllow)
		return outcome.New(outcome.MethodNotAllowed, "not-supported", "DELETE on a type needs search criteria (conditional delete)")
	}
	res, err := s.repo.ConditionalDelete(c.Request().Context(), requester(c), c.Param("type"), q)
	if err != nil {
		return err
	}
	return s.respondDelete(c, res)
}

// respondDelete answers a delete: 204, or 200 with an OperationOutcome
// when the client prefers one. Deleting what does not exist is a success
// too (R4 3.1.0.7.1 allows 200/204 there).
func (s *Server) respondDelete(c echo.Context, res repo.Result) error {
	if res.Version != nil && res.Version.Deleted {
		c.Response().Header().Set("ETag", etag(res.Version))
	}
	if prefer(c) == "OperationOutcome" {
		msg := "deleted"
		if res.NoOp {
			msg = "nothing to delete: no current resource matched"
		}
		return c.Blob(http.StatusOK, fhirJSON, outcome.JSON(outcome.Info(msg)))
	}
	return c.NoContent(http.StatusNoContent)
}

// respondWrite answers a create or update per Prefer.
func (s *Server) respondWrite(c echo.Context, res repo.Result) error {
	v := res.Version
	if v == nil {
		return errors.New("write returned no version")
	}
	code := http.StatusOK
	if res.Created {
		code = http.StatusCreated
	}
	setVersionHeaders(c, v)
	c.Response().Header().Set("Location", fmt.Sprintf("%s/%s/%s/_history/%d", s.base(c), v.Type, v.ID, v.VersionID))
	switch prefer(c) {
	case "minimal":
		return c.NoContent(code)
	case "OperationOutcome":
		msg := "written"
		if res.NoOp {
			msg = "no change: the resource already had this content, or the conditional create matched an existing resource"
		}
		return c.Blob(code, fhirJSON, outcome.JSON(outcome.Info(msg)))
	}
	return c.Blob(code, fhirJSON, v.JSON)
}

// prefer returns the Prefer header's return= value ("" when absent).
func prefer(c echo.Context) string {
	for _, h := range c.Request().Header.Values("Prefer") {
		for _, part := range strings.FieldsFunc(h, func(r rune) bool { return r == ',' || r == ';' }) {
			k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "return") {
				v = strings.Trim(strings.TrimSpace(v), `"`)
				switch strings.ToLower(v) {
				case "minimal":
					return "minimal"
				case "representation":
					return "representation"
				case "operationoutcome":
					return "OperationOutcome"
				}
			}
		}
	}
	return ""
}

// bundle runs a batch or transaction Bundle posted to the base.
func (s *Server) transactionOrBatch(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	out, err := s.bundles.Process(c.Request().Context(), requester(c), body, bundle.Options{
		Base: s.base(c), Representation: prefer(c) == "representation",
	})
	if err != nil {
		return err
	}
	return c.Blob(http.StatusOK, fhirJSON, out)
}
