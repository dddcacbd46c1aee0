package rest

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/fhir/resource"
)

type capability struct {
	ResourceType   string         `json:"resourceType"`
	Status         string         `json:"status"`
	Date           string         `json:"date"`
	Publisher      string         `json:"publisher"`
	Kind           string         `json:"kind"`
	Software       map[string]any `json:"software"`
	Implementation map[string]any `json:"implementation"`
	FhirVersion    string         `json:"fhirVersion"`
	Format         []string       `json:"format"`
	PatchFormat    []string       `json:"patchFormat"`
	Rest           []capRest      `json:"rest"`
}

type capRest struct {
	Mode        string           `json:"mode"`
	Security    map[string]any   `json:"security"`
	Resource    []capResource    `json:"resource"`
	Interaction []map[string]any `json:"interaction"`
}

type capResource struct {
	Type              string           `json:"type"`
	Interaction       []map[string]any `json:"interaction"`
	Versioning        string           `json:"versioning"`
	ReadHistory       bool             `json:"readHistory"`
	UpdateCreate      bool             `json:"updateCreate"`
	ConditionalCreate bool             `json:"conditionalCreate"`
	ConditionalRead   string           `json:"conditionalRead"`
	ConditionalUpdate bool             `json:"conditionalUpdate"`
	ConditionalDelete string           `json:"conditionalDelete"`
	SearchParam       []capSearchParam `json:"searchParam,omitempty"`
	Operation         []capOperation   `json:"operation,omitempty"`
}

type capOperation struct {
	Name          string `json:"name"`
	Definition    string `json:"definition"`
	Documentation string `json:"documentation,omitempty"`
}

type capSearchParam struct {
	Name          string `json:"name"`
	Definition    string `json:"definition,omitempty"`
	Type          string `json:"type"`
	Documentation string `json:"documentation,omitempty"`
}

func codes(cs ...string) []map[string]any {
	out := make([]map[string]any, len(cs))
	for i, c := range cs {
		out[i] = map[string]any{"code": c}
	}
	return out
}

// metadata serves a CapabilityStatement generated from what the server
// implements: every R4 type with the same interactions, the search
// parameters that are actually supported, JSON only, JSON Patch.
func (s *Server) metadata(c echo.Context) error {
	cs := capability{
		ResourceType: "CapabilityStatement", Status: "active", Date: s.started.Format("2006-01-02T15:04:05Z"),
		Publisher: "Dossier", Kind: "instance",
		Software:       map[string]any{"name": "Dossier", "version": s.cfg.Version},
		Implementation: map[string]any{"description": "Dossier FHIR R4 server", "url": s.base(c)},
		FhirVersion:    "4.0.1",
		Format:         []string{"json", "application/fhir+json"},
		PatchFormat:    []string{"application/json-patch+json"},
	}
	r := capRest{
		Mode: "server",
		Security: map[string]any{
			"cors":        false,
			"description": "Bearer JWT (HS256, or RS256/ES256 from a JWKS) carrying the requester's role; see the README.",
		},
		Interaction: codes("transaction", "batch", "history-system", "search-system"),
	}
	for _, t := range resource.Types() {
		cr := capResource{
			Type:        t,
			Interaction: codes("read", "vread", "update", "patch", "delete", "history-instance", "history-type", "create", "search-type"),
			Versioning:  "versioned-update", ReadHistory: true, UpdateCreate: true,
			ConditionalCreate: true, ConditionalRead: "not-supported", ConditionalUpdate: true, ConditionalDelete: "single",
		}
		cr.SearchParam = s.searchParams(t)
		cr.Operation = []capOperation{{Name: "validate", Definition: "http://hl7.org/fhir/OperationDefinition/Resource-validate",
			Documentation: "Every issue (base R4, the profiles in profiles/, the record's content rules) with its FHIRPath location; modes create, update, delete."}}
		if t == "Patient" {
			cr.Operation = append(cr.Operation,
				capOperation{Name: "everything", Definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything",
					Documentation: "The whole record, paged (_count, _cursor), with _since and _type."},
				capOperation{Name: "close", Definition: repo.CanonicalBase + "/OperationDefinition/Patient-close",
					Documentation: "Closes the record (host admin): writes refused, reads kept, retention 10 years."},
				capOperation{Name: "reopen", Definition: repo.CanonicalBase + "/OperationDefinition/Patient-reopen",
					Documentation: "Reopens a closed record (host admin)."})
		}
		r.Resource = append(r.Resource, cr)
	}
	cs.Rest = []capRest{r}
	return writeJSON(c, http.StatusOK, cs)
}

// searchParams lists the search parameters the server implements for a
// type: those of the registry with an expression (parameters of type
// special and those without expression, such as _text or _content, are
// not implemented and not listed).
func (s *Server) searchParams(typ string) []capSearchParam {
	reg := s.repo.Registry()
	var out []capSearchParam
	for _, p := range reg.Params(typ) {
		if p.Type == "special" || (p.Expression == "" && p.Code != "_id") {
			continue
		}
		out = append(out, capSearchParam{Name: p.Code, Type: p.Type, Definition: p.URL})
	}
	return out
}

func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
