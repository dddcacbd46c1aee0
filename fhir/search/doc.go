// Package search knows the FHIR R4 search parameters: which exist for each
// resource type (from SearchParameter definitions such as the official
// bundle in profiles/Bundle-searchParams.json), which values of a resource
// each one selects (by evaluating its FHIRPath expression), what a store
// keeps of a resource to search it ([Registry.Index]) and how a search is
// compiled into a backend-neutral [store.Filter] ([Registry.Compile]).
//
// # Index names
//
// [Index] fills the search fields of a store.Version. An index name is the
// parameter code, followed by a suffix for what a modifier or a unit
// needs. Keys hold exact-match strings, Ranges numeric intervals [lo, hi]
// (both ends included).
//
//	string     Keys[code]            each value normalised: lower case, diacritics
//	                                 removed (NFD, combining marks dropped), white
//	                                 space collapsed and trimmed
//	           Keys[code:exact]      the values as written
//	                                 A HumanName gives family, given, prefix, suffix
//	                                 and text, each separately; an Address line,
//	                                 city, district, state, postalCode, country and
//	                                 text; another object its text.
//	token      Keys[code]            Coding/CodeableConcept.coding, Identifier:
//	                                 "system|code", "code" and "system|"; without a
//	                                 system "|code" and "code". ContactPoint:
//	                                 "value" and "|value". A code, string, uri or id
//	                                 primitive: "value" and "|value". A boolean:
//	                                 "true" or "false".
//	           Keys[code:text]       normalised CodeableConcept.text, Coding.display
//	                                 and Identifier.type.text
//	           Keys[code:of-type]    Identifier: "typeSystem|typeCode|value" for
//	                                 each coding of its type
//	reference  Keys[code]            Reference.reference: "Type/id" and "id" for a
//	                                 relative reference or an absolute one starting
//	                                 with the server's base ("/_history/n" dropped);
//	                                 any other absolute URL (urn:uuid: too) as
//	                                 written; contained ("#x") references skipped.
//	                                 A canonical (a string): the URL, and when it
//	                                 ends with "|version" also the URL without it.
//	           Keys[code:type]       the type referred to ("Patient"), when known
//	           Keys[code:identifier] Reference.identifier, in the token forms
//	uri        Keys[code]            the value as written
//	date       Ranges[code]          microseconds since the Unix epoch, as float64:
//	                                 the whole period a value's precision covers
//	                                 (2020 → [2020-01-01T00:00:00, 2021-01-01T00:00:00
//	                                 − 1µs]); a dateTime without a zone is UTC. An
//	                                 instant (meta.lastUpdated, AuditEvent.recorded,
//	                                 … and choice values typed instant) is exact,
//	                                 lo = hi. Period: start..end, -1e18 for a
//	                                 missing start, +1e18 for a missing end.
//	                                 Timing: each event, and repeat.boundsPeriod.
//	                                 Strings that are not dates are skipped.
//	number     Ranges[code]          [v, v] (a Range: [low, high])
//	quantity   Ranges[code]          [v, v] (a Range: [low, high], open ends ±1e18)
//	           Ranges[code|system|unitCode]  the same, when system and code are set
//	           Ranges[code||unitCode]        the same, by Quantity.code, and also by
//	                                         Quantity.unit when it differs. Money
//	                                         uses system urn:iso:std:iso:4217 and
//	                                         its currency as the code.
//	composite  (two components, the first a token or a reference)
//	           Ranges[code$form1]    second component a quantity, number or date,
//	                                 with the unit suffixes of quantity
//	                                 (Ranges[code$form1|system|unit], …)
//	           Keys[code]            second component a token, reference or uri:
//	                                 "form1$form2"; a string: "form1$normalised"
//	                                 where form1/form2 are the token forms except
//	                                 "system|", or the reference forms.
//
// Composites of other shapes (the three-part MolecularSequence
// coordinates) are not indexed. "_id" is not indexed (stores answer it from
// the id); "_lastUpdated", "_tag", "_profile", "_security" and "_source"
// are indexed like any other parameter from the resource's meta, so the
// resource must carry its final meta when indexed.
//
// A parameter is missing (for :missing) when none of Keys[code],
// Ranges[code], Keys[code:text] (token) and Keys[code:identifier]
// (reference) is present.
//
// Sort values: SortStr[code] is the smallest normalised value of a string
// parameter (for a HumanName "family given…", for an Address its lines,
// city, state, postal code and country), the smallest normalised code or
// value of a token, the first reference form of a reference, the smallest
// uri. SortNum[code] is [smallest lo, largest hi] of Ranges[code] for
// date, number and quantity parameters.
//
// Index.Patient is the owner in the Patient compartment: for a Patient its
// own id; otherwise the first "Patient/<id>" of the parameters
// [Registry.OwnerParam] lists, in that order.
//
// # Searching
//
// [Registry.Compile] follows the R4 search page: a repeated parameter is an
// AND, comma-separated values an OR (\, \$ \| and \\ escape). By type:
//
//	string     prefix of the normalised value; :exact equality with the value as
//	           written; :contains substring of the normalised value
//	token      equality with the form searched ("system|code", "code", "|code",
//	           "system|"); :text substring of Keys[code:text]; :not no value
//	           equal to any of those given (and resources without the value);
//	           :of-type "system|code|value"
//	reference  "id" (any type), "Type/id", an absolute URL of this server (made
//	           relative), another absolute URL (as is), a canonical with or
//	           without |version; :Type makes a bare id "Type/id"; :identifier
//	           the token forms of Reference.identifier; chains (subject:Patient.name,
//	           encounter.subject:Patient.birthdate, up to 4 levels) run the rest
//	           on each target type through the Finder; _has:Type:param:rest (nested
//	           too) likewise, giving _id values
//	date       prefixes eq (default), ne, gt, lt, ge, le, sa, eb, ap; the search
//	           value is the period [qlo, qhi] its precision covers (a time without
//	           a zone is UTC); a stored [lo, hi] matches eq when lo ≥ qlo and hi ≤
//	           qhi; ne when lo < qlo or hi > qhi (a resource without the value does
//	           not match); gt when hi > qhi; lt when lo < qlo; ge when hi ≥ qlo; le
//	           when lo ≤ qhi; sa when lo > qhi; eb when hi < qlo; ap when it
//	           overlaps [qlo − d, qhi + d] with d = 10% of the distance from qlo to
//	           now
//	number,    eq: the stored value within the range the search value's precision
//	quantity   implies, half a unit of its last significant digit (100 → [99.5,
//	           100.5), 100.00 → [99.995, 100.005), 1e2 → [50, 150)); ne: outside
//	           it; gt, lt, ge, le compare with the exact value; sa and eb: the
//	           whole stored interval above/below it; ap: within ±10% of it (at
//	           least the precision range). Quantity value|system|code and
//	           value||code search the ranges with that unit.
//	uri        equality; :below prefix; :above equality with the value or one
//	           of its prefixes cut at '/'
//	composite  "form1$value2" with the second part compared by its own type
//	           (prefixes included: code-value-quantity=http://loinc.org|8480-6$gt100)
//
// :missing=true|false works on every type (except the composites whose
// second part is a quantity, number or date). Modifiers that are not
// supported (:in, :not-in, :above and :below on tokens and references, :text
// on strings, …) are always an error, strict or not: silently ignoring a
// modifier would widen the results. _type, _content, _text, _query, _list,
// _filter, _contained, _containedType and parameters of type special (near)
// are unsupported: listed in Plan.Ignored when lenient, an error when
// strict, like unknown parameters. _format and _pretty are ignored
// silently.
//
// Not supported (besides the above): implicit code systems (gender=
// http://hl7.org/fhir/administrative-gender|male finds nothing: codes are
// stored without the system of their binding); "system|value" on a
// ContactPoint; phonetic matching (phonetic searches like name); the
// "system|" form in a composite's parts; composites of three parts;
// wildcard includes (_include=*); chaining a reference parameter that
// declares no target type without a :Type modifier. _include whose source
// type is not that of the matches (without :iterate) simply adds nothing.
// Chained and _has sub-queries are run whole through the Finder, which
// should bound them.
//
// A search on a reference that can only mean patients in the searched
// type's first owner parameter (see [Registry.PatientHint]) also ANDs a
// store.OpPatient condition with those patients, so a store can answer it
// from its per-patient layout.
package search
