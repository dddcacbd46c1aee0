package rest

// Binary with raw content (FHIR R4 Binary, "Serving Binary Resources
// using the RESTful API"):
//
//   - POST /Binary and PUT /Binary/{id} with any Content-Type other than
//     FHIR JSON store the body as the Binary's content (streamed into a
//     store blob, at most Config.MaxBinary bytes: 413 above), the
//     Content-Type as contentType and the X-Security-Context header as
//     securityContext. FHIR JSON bodies are Binary resources as usual.
//   - GET/HEAD /Binary/{id} and /Binary/{id}/_history/{vid} return the
//     content raw with its contentType, unless the client asks for FHIR
//     JSON (Accept application/fhir+json or application/json, or
//     _format=json): then the Binary resource, its data streamed as
//     base64.
//
// Every other interaction on Binary (search, history, delete, patch,
// bundles) is the generic one.

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/store"
)

// DefaultMaxBinary is the default limit of a raw Binary upload.
const DefaultMaxBinary = 20 << 20

// binaryRoutes are the route patterns where a Binary may carry or
// produce raw content (negotiate lets any media type through there).
var binaryRoutes = map[string]string{
	"/fhir/:type":                   http.MethodPost,
	"/fhir/:type/:id":               http.MethodPut + " " + http.MethodGet + " " + http.MethodHead,
	"/fhir/:type/:id/_history/:vid": http.MethodGet + " " + http.MethodHead,
}

// binaryRaw reports whether the request is a Binary interaction whose
// body or response may be raw content.
func binaryRaw(c echo.Context) bool {
	if c.Param("type") != "Binary" {
		return false
	}
	methods, ok := binaryRoutes[c.Path()]
	return ok && strings.Contains(methods, c.Request().Method)
}

// binaryOr routes Binary requests to bin and every other type to h.
func binaryOr(h, bin echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Param("type") == "Binary" {
			return bin(c)
		}
		return h(c)
	}
}

// fhirBody reports whether the request body is FHIR JSON (or has no
// Content-Type: the generic handlers then answer as for any resource).
func fhirBody(c echo.Context) bool {
	mt, _, err := mime.ParseMediaType(c.Request().Header.Get("Content-Type"))
	if err != nil {
		return true // empty (or malformed, which negotiate refused)
	}
	return mt == "application/fhir+json" || mt == "application/json"
}

// binaryInput is the raw upload of the request, refused early when its
// declared length is over the limit.
func (s *Server) binaryInput(c echo.Context) (repo.BinaryInput, error) {
	r := c.Request()
	if r.ContentLength > s.cfg.MaxBinary {
		return repo.BinaryInput{}, outcome.New(outcome.TooLarge, "too-costly", "the Binary content exceeds %d bytes", s.cfg.MaxBinary)
	}
	return repo.BinaryInput{
		ContentType:     r.Header.Get("Content-Type"),
		SecurityContext: r.Header.Get("X-Security-Context"),
		Body:            r.Body,
		Max:             s.cfg.MaxBinary,
	}, nil
}

func (s *Server) createBinary(c echo.Context) error {
	if fhirBody(c) {
		return s.create(c)
	}
	in, err := s.binaryInput(c)
	if err != nil {
		return err
	}
	res, err := s.repo.CreateBinary(c.Request().Context(), requester(c), in)
	if err != nil {
		return err
	}
	return s.respondWrite(c, res)
}

func (s *Server) updateBinary(c echo.Context) error {
	if fhirBody(c) {
		return s.update(c)
	}
	im, err := ifMatch(c)
	if err != nil {
		return err
	}
	in, err := s.binaryInput(c)
	if err != nil {
		return err
	}
	res, err := s.repo.UpdateBinary(c.Request().Context(), requester(c), c.Param("id"), in, im)
	if err != nil {
		return err
	}
	return s.respondWrite(c, res)
}

func (s *Server) readBinary(c echo.Context) error {
	return s.readThen(c, "Binary", func(v *store.Version) error { return s.serveBinary(c, v) })
}

func (s *Server) vreadBinary(c echo.Context) error {
	return s.vreadThen(c, "Binary", func(v *store.Version) error { return s.serveBinary(c, v) })
}

// wantsFHIR reports whether a Binary read asks for the FHIR resource
// rather than the raw content: _format, or an Accept that names a FHIR
// JSON media type (*/* and the content's own type get the raw content).
func wantsFHIR(c echo.Context) bool {
	if c.QueryParam("_format") != "" {
		return true // negotiate let only the JSON formats through
	}
	for _, mt := range acceptedTypes(c.Request().Header.Get("Accept")) {
		switch mt {
		case "application/json", "application/fhir+json", "application/json+fhir":
			return true
		}
	}
	return false
}

// binaryBuf is the copy buffer of a stream (the store hands out whole
// chunks; this only bounds each write to the client).
const binaryBuf = 64 << 10

// serveBinary answers a read of Binary version v, streaming its content.
func (s *Server) serveBinary(c echo.Context, v *store.Version) error {
	ctx := c.Request().Context()
	if wantsFHIR(c) && v.Blob == nil {
		return writeVersion(c, http.StatusOK, v) // the data is in the JSON
	}
	info, err := s.repo.Binary(v)
	if err != nil {
		return err
	}
	rc, size, err := s.repo.OpenBinary(ctx, v)
	if err != nil {
		return err
	}
	defer rc.Close()
	setVersionHeaders(c, v)
	h := c.Response().Header()
	if wantsFHIR(c) {
		// The stored JSON without its closing brace, then the data.
		prefix := bytes.TrimRight(v.JSON, " \t\r\n")
		if len(prefix) < 2 || prefix[len(prefix)-1] != '}' {
			return outcome.New(outcome.Internal, "exception", "a stored Binary is not a JSON object")
		}
		prefix = prefix[:len(prefix)-1]
		const open, end = `,"data":"`, `"}`
		h.Set("Content-Type", fhirJSON)
		h.Set("Content-Length", strconv.FormatInt(int64(len(prefix)+len(open))+int64(base64.StdEncoding.EncodedLen(int(size)))+int64(len(end)), 10))
		c.Response().WriteHeader(http.StatusOK)
		if c.Request().Method == http.MethodHead {
			return nil
		}
		w := c.Response()
		if _, err := w.Write(prefix); err != nil {
			return nil // the client went away
		}
		if _, err := io.WriteString(w, open); err != nil {
			return nil
		}
		enc := base64.NewEncoder(base64.StdEncoding, w)
		if err := s.copyBinary(c, enc, rc); err != nil {
			return nil
		}
		if err := enc.Close(); err != nil {
			return nil
		}
		_, _ = io.WriteString(w, end)
		return nil
	}
	ct := info.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	if info.SecurityContext != "" {
		h.Set("X-Security-Context", info.SecurityContext)
	}
	// The content is the client's, not ours: a browser must neither sniff
	// it nor run it in the server's origin.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox")
	c.Response().WriteHeader(http.StatusOK)
	if c.Request().Method == http.MethodHead {
		return nil
	}
	_ = s.copyBinary(c, c.Response(), rc)
	return nil
}

// copyBinary copies a content to the response. The status is already
// sent, so a failure can only cut the response short (the client sees
// fewer bytes than Content-Length); a store failure is logged.
func (s *Server) copyBinary(c echo.Context, w io.Writer, rc io.Reader) error {
	buf := make([]byte, binaryBuf)
	for {
		n, rerr := rc.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err // the client went away
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			if c.Request().Context().Err() == nil {
				s.log.Error("binary stream failed", "route", c.Path(), "cause", causeOf(rerr))
			}
			return rerr
		}
	}
}
