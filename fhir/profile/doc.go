// Package profile checks resources against the StructureDefinitions of
// profiles/ (our DMP profiles), with the CodeSystems and ValueSets there.
//
// Load reads StructureDefinition-*.json, CodeSystem-*.json and
// ValueSet-*.json (other files are ignored). Set.Validate works on the
// generic JSON of a resource that has already passed base R4 validation
// and returns every issue it finds, each with a FHIRPath location
// (Patient.identifier[1].value; for a missing element, where it should be:
// DocumentReference.securityLabel). IssueType codes: required (min),
// structure (max, a type not allowed, a value in no slice of a closed
// slicing), value (fixed, pattern, regex), code-invalid (required binding),
// invariant; invalid for a profile claimed on the wrong type.
//
// Which profiles apply: each URL of meta.profile (a |version is ignored)
// that is ours or that one of ours names in its
// https://dossier-fhir.github.io/fhir/StructureDefinition/follows extension
// (so claiming FR Core Patient INS applies dossier-patient-ins); an
// unknown URL gives one warning (not-supported), not an error. In strict
// mode, also the default profile of the core record types: Patient,
// Encounter, DocumentReference, and CarePlan when it has our prevention
// category (the table is in validate.go). A profile claimed twice (ours
// and the followed URL) is applied once.
//
// Supported semantics, read from differential.element only (no snapshot;
// the base resource's own rules are google/fhir's job):
//   - the element tree by ElementDefinition.id (path segments, name:slice);
//     min and max per parent instance, so children are checked in every
//     present instance of their parent and not at all when it is absent;
//   - fixed[x] (exact JSON equality) and pattern[x] (every element of the
//     pattern present with the same value; for arrays, each pattern item
//     matches some item);
//   - the regex extension on ElementDefinition.type, anchored to the whole
//     value, on string values;
//   - required bindings on code (the code in the ValueSet under any
//     system), Coding (system and code) and CodeableConcept (at least one
//     coding in the ValueSet; text only fails); other strengths are not
//     checked. ValueSets: compose.include of a whole embedded CodeSystem or
//     of listed concepts, include.valueSet (union when alone, intersection
//     with the system's codes otherwise), exclude of listed concepts. A
//     whole CodeSystem that is not embedded contributes no code, so a code
//     bound that way is invalid. Filters are refused at load;
//   - slicing with discriminators value and pattern at $this or a
//     dotted path (the slice's fixed/pattern value there; for an extension
//     slice with path url and no fixed url, its type's profile), and type
//     at $this; rules open/closed (openAtEnd is treated as open); per-slice
//     min/max and per-slice child constraints, nested slicing inside a
//     slice (complex extensions). An item goes to the first slice it
//     matches. Type slices of a choice element (value[x]:valueQuantity) are
//     supported without a slicing declaration;
//   - choice elements: name[x] finds nameType keys; a type list restricts
//     the allowed types; children of name[x] apply whatever the type. A
//     renamed path (scheduledPeriod) works as a plain element;
//   - invariants (ElementDefinition.constraint) whose expression is in a
//     tiny FHIRPath subset, evaluated on the element: paths of element
//     names (arrays flatten, choices by base name), $this, parentheses,
//     exists(), empty(), not(), hasValue(), count(), and, or, xor, implies
//     with three-valued logic. Only a false result is a violation.
//
// Not supported, refused at load so that a profile is never half-applied:
// exists and profile discriminators, type discriminators on a path,
// re-slicing (slice/reslice), invariants outside the subset above (no
// comparisons, literals, where(), resolve()), ValueSet filters, a required
// binding to a ValueSet that is not embedded. Silently not checked:
// ElementDefinition.type.profile and targetProfile (references are not
// resolved, extension profiles are not fetched: constrain the extension
// inline, as dossier-patient-ins does), mustSupport, maxLength,
// min/maxValue, ordered slicing, bindings of other strengths, primitive
// extensions (_element). The NIR key check, which a regex cannot express,
// is ValidNIRKey.
package profile
