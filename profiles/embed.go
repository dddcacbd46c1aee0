// Package profiles embeds the FHIR R4 definition files committed beside
// it (the SearchParameter bundle, CompartmentDefinitions, ...), so the
// server needs no files at run time.
package profiles

import "embed"

// FS holds every *.json file of this folder, at its file name.
//
//go:embed *.json
var FS embed.FS

// SearchParameterFiles are the search parameter files the server loads:
// the R4 definitions, then Dossier's own (which may add or override).
var SearchParameterFiles = []string{"Bundle-searchParams.json", "Bundle-dossier-searchParams.json"}
