package rest

import (
	"bytes"

	"encoding/json"
	"fmt"
	"github.com/labstack/echo/v4"
	"net/http"
	"time"

	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/store"
)

type bundleJSON struct {
	ResourceType string       `json:"resourceType"`
	ID           string       `json:"id,omitempty"`
	Meta         *bundleMeta  `json:"meta,omitempty"`
	Type         string       `json:"type"`
	Total        *int64       `json:"total,omitempty"`
	Link         []bundleLink `json:"link,omitempty"`
	Entry        []entry      `json:"entry,omitempty"`
}

type bundleMeta struct {
	LastUpdated string `json:"lastUpdated"`
}

type bundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

type entry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Search   *entrySearch    `json:"search,omitempty"`
	Request  *entryRequest   `json:"request,omitempty"`
	Response *entryResponse  `json:"response,omitempty"`
}

type entrySearch struct {
	Mode string `json:"mode"`
}

type entryRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
}

type entryResponse struct {
	Status       string `json:"status"`
	Location     string `json:"location,omitempty"`
	Etag         string `json:"etag,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
}

func newBundle(typ string) *bundleJSON {
	return &bundleJSON{
		ResourceType: "Bundle", ID: repo.NewID(), Type: typ,
		Meta: &bundleMeta{LastUpdated: resource.Instant(time.Now())},
	}
}

// historyEntry is a history bundle entry for one version.
func historyEntry(base string, v *store.Version) entry {
	e := entry{FullURL: fmt.Sprintf("%s/%s/%s", base, v.Type, v.ID)}
	req := &entryRequest{Method: v.Method, URL: v.Type + "/" + v.ID}
	resp := &entryResponse{Etag: etag(v), LastModified: resource.Instant(v.LastUpdated)}
	switch {
	case v.Deleted:
		req.Method = http.MethodDelete
		resp.Status = "204 No Content"
	case v.Method == http.MethodPost:
		req.URL = v.Type
		resp.Status = "201 Created"
		resp.Location = fmt.Sprintf("%s/%s/_history/%d", v.Type, v.ID, v.VersionID)
	default:
		if req.Method == "" {
			req.Method = http.MethodPut
		}
		if v.VersionID == 1 {
			resp.Status = "201 Created"
		} else {
			resp.Status = "200 OK"
		}
	}
	if !v.Deleted {
		e.Resource = v.JSON
	}
	e.Request, e.Response = req, resp
	return e
}

// writeJSON answers with v as FHIR JSON (resources inside are written as
// stored: no HTML escaping, numbers untouched).
func writeJSON(c echo.Context, code int, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return c.Blob(code, fhirJSON, bytes.TrimRight(buf.Bytes(), "\n"))
}
