package access

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/dossier-fhir/dossier/store"
)

// Matrix is the profession × document type table (profiles/access-matrix.json):
// which document types a professional authorised to a record may read.
type Matrix struct {
	// UnknownTypeProfessions may read document types not in KnownTypes.
	UnknownTypeProfessions []string `json:"unknownTypeProfessions"`
	// KnownTypes are the document types ("system|code") the table covers.
	KnownTypes []string `json:"knownTypes"`
	// Deny lists, per profession ("10") or profession and specialty
	// ("10/SM26"), the types and classes it may not read.
	Deny map[string]struct {
		Types   []string `json:"types"`
		Classes []string `json:"classes"`
	} `json:"deny"`
	// PreventionTypes are the document types of the prevention section.
	PreventionTypes []string `json:"preventionTypes"`
}

// LoadMatrix reads the access matrix from fsys.
func LoadMatrix(fsys fs.FS, name string) (*Matrix, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	var m Matrix
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, t := range append(append([]string{}, m.KnownTypes...), m.PreventionTypes...) {
		if !strings.Contains(t, "|") {
			return nil, fmt.Errorf("%s: type %q is not system|code", name, t)
		}
	}
	return &m, nil
}

// documents returns the filter of the DocumentReferences a professional
// of profession (and specialty) may read by type and class.
func (m *Matrix) documents(profession, specialty string) store.Filter {
	var denyTypes, denyClasses []string
	for _, key := range []string{profession, profession + "/" + specialty} {
		if d, ok := m.Deny[key]; ok && key != profession+"/" {
			denyTypes = append(denyTypes, d.Types...)
			denyClasses = append(denyClasses, d.Classes...)
		}
	}
	var allowed store.Filter
	if slices.Contains(m.UnknownTypeProfessions, profession) {
		allowed = store.All()
	} else {
		allowed = store.Eq("type", m.KnownTypes...)
	}
	parts := []store.Filter{allowed}
	if len(denyTypes) > 0 {
		parts = append(parts, store.Not(store.Eq("type", denyTypes...)))
	}
	if len(denyClasses) > 0 {
		parts = append(parts, store.Not(store.Eq("category", denyClasses...)))
	}
	return and(parts...)
}
