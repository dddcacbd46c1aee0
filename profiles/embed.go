// Package profiles embeds the FHIR R4 definition files committed beside
// it (the SearchParameter bundle, CompartmentDefinitions, ...), so the
// server needs no files at run time.
package profiles

import "embed"

// FS holds every *.json file of this folder, at its file name.
//
//go:embed *.json
var FS embed.FS
