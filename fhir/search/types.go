package search

import "strings"

// resourceTypes lists the 146 FHIR R4 (4.0.1) resource types.
var resourceTypes = []string{
	"Account", "ActivityDefinition", "AdverseEvent", "AllergyIntolerance", "Appointment", "AppointmentResponse",
	"AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct", "BodyStructure", "Bundle",
	"CapabilityStatement", "CarePlan", "CareTeam", "CatalogEntry", "ChargeItem", "ChargeItemDefinition",
	"Claim", "ClaimResponse", "ClinicalImpression", "CodeSystem", "Communication", "CommunicationRequest",
	"CompartmentDefinition", "Composition", "ConceptMap", "Condition", "Consent", "Contract",
	"Coverage", "CoverageEligibilityRequest", "CoverageEligibilityResponse", "DetectedIssue", "Device", "DeviceDefinition",
	"DeviceMetric", "DeviceRequest", "DeviceUseStatement", "DiagnosticReport", "DocumentManifest", "DocumentReference",
	"EffectEvidenceSynthesis", "Encounter", "Endpoint", "EnrollmentRequest", "EnrollmentResponse", "EpisodeOfCare",
	"EventDefinition", "Evidence", "EvidenceVariable", "ExampleScenario", "ExplanationOfBenefit", "FamilyMemberHistory",
	"Flag", "Goal", "GraphDefinition", "Group", "GuidanceResponse", "HealthcareService",
	"ImagingStudy", "Immunization", "ImmunizationEvaluation", "ImmunizationRecommendation", "ImplementationGuide", "InsurancePlan",
	"Invoice", "Library", "Linkage", "List", "Location", "Measure",
	"MeasureReport", "Media", "Medication", "MedicationAdministration", "MedicationDispense", "MedicationKnowledge",
	"MedicationRequest", "MedicationStatement", "MedicinalProduct", "MedicinalProductAuthorization", "MedicinalProductContraindication", "MedicinalProductIndication",
	"MedicinalProductIngredient", "MedicinalProductInteraction", "MedicinalProductManufactured", "MedicinalProductPackaged", "MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect",
	"MessageDefinition", "MessageHeader", "MolecularSequence", "NamingSystem", "NutritionOrder", "Observation",
	"ObservationDefinition", "OperationDefinition", "OperationOutcome", "Organization", "OrganizationAffiliation", "Parameters",
	"Patient", "PaymentNotice", "PaymentReconciliation", "Person", "PlanDefinition", "Practitioner",
	"PractitionerRole", "Procedure", "Provenance", "Questionnaire", "QuestionnaireResponse", "RelatedPerson",
	"RequestGroup", "ResearchDefinition", "ResearchElementDefinition", "ResearchStudy", "ResearchSubject", "RiskAssessment",
	"RiskEvidenceSynthesis", "Schedule", "SearchParameter", "ServiceRequest", "Slot", "Specimen",
	"SpecimenDefinition", "StructureDefinition", "StructureMap", "Subscription", "Substance", "SubstanceNucleicAcid",
	"SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation", "SubstanceSourceMaterial", "SubstanceSpecification", "SupplyDelivery",
	"SupplyRequest", "Task", "TerminologyCapabilities", "TestReport", "TestScript", "ValueSet",
	"VerificationResult", "VisionPrescription",
}

// resourceOnly are the resource types that are not DomainResources: the
// DomainResource search parameters (_text) do not apply to them.
var resourceOnly = map[string]bool{"Binary": true, "Bundle": true, "Parameters": true}

// openTypes are the type suffixes an element of FHIR's open type "*"
// (Extension.value[x], ElementDefinition.fixed[x], ...) may take in JSON.
var openTypes = []string{
	"Address", "Age", "Annotation", "Attachment", "Base64Binary", "Boolean",
	"Canonical", "Code", "CodeableConcept", "Coding", "ContactDetail", "ContactPoint",
	"Contributor", "Count", "DataRequirement", "Date", "DateTime", "Decimal",
	"Distance", "Dosage", "Duration", "Expression", "HumanName", "Id",
	"Identifier", "Instant", "Integer", "Markdown", "Meta", "Money",
	"Oid", "ParameterDefinition", "Period", "PositiveInt", "Quantity", "Range",
	"Ratio", "Reference", "RelatedArtifact", "SampledData", "Signature", "String",
	"Time", "Timing", "TriggerDefinition", "UnsignedInt", "Uri", "Url",
	"UsageContext", "Uuid",
}

// choiceTypes maps the name of every choice element ("value" for value[x])
// found anywhere in the R4 resources and data types to the type suffixes
// its JSON keys may carry ("valueQuantity", "valueString", ...).
//
// FHIRPath names a choice element without its suffix (Observation.value),
// while JSON only has the suffixed key. A name in this table is looked up
// with each of its suffixes when the plain key is absent. The table is
// global rather than per element path. That is exact for R4 wherever the
// name navigated is a real element of the object: no R4 element has a
// sibling, not itself a choice expansion, spelled name+suffix with a
// suffix listed here. (It can only over-match for a name the object does
// not have at all, such as ActivityDefinition.effective finding the plain
// element effectivePeriod; no search expression navigates such a name.)
// The table was derived from the R4 definitions.
var choiceTypes = map[string][]string{
	"abatement":            {"Age", "DateTime", "Period", "Range", "String"},
	"additive":             {"CodeableConcept", "Reference"},
	"age":                  {"Age", "CodeableConcept", "Range", "String"},
	"allowed":              {"Boolean", "CodeableConcept", "Money", "String", "UnsignedInt"},
	"amount":               {"Quantity", "Range", "Ratio", "String"},
	"answer":               {"Boolean", "Coding", "Date", "DateTime", "Decimal", "Integer", "Quantity", "Reference", "String", "Time"},
	"asNeeded":             {"Boolean", "CodeableConcept"},
	"author":               {"Reference", "String"},
	"born":                 {"Date", "Period", "String"},
	"bounds":               {"Duration", "Period", "Range"},
	"characteristic":       {"CodeableConcept", "Quantity"},
	"chargeItem":           {"CodeableConcept", "Reference"},
	"code":                 {"CodeableConcept", "Reference"},
	"collected":            {"DateTime", "Period"},
	"content":              {"Attachment", "Reference", "String"},
	"created":              {"DateTime", "Period"},
	"date":                 {"DateTime", "Period"},
	"deceased":             {"Age", "Boolean", "Date", "DateTime", "Range", "String"},
	"defaultValue":         openTypes,
	"definingSubstance":    {"CodeableConcept", "Reference"},
	"definition":           {"Canonical", "CodeableConcept", "DataRequirement", "Expression", "Reference", "TriggerDefinition", "Uri"},
	"detail":               {"Boolean", "CodeableConcept", "Integer", "Quantity", "Range", "Ratio", "String"},
	"diagnosis":            {"CodeableConcept", "Reference"},
	"dose":                 {"Quantity", "Range"},
	"doseNumber":           {"PositiveInt", "String"},
	"due":                  {"Date", "Duration"},
	"effective":            {"DateTime", "Instant", "Period", "Timing"},
	"entity":               {"CodeableConcept", "Reference"},
	"event":                {"Coding", "Uri"},
	"example":              {"Boolean", "Canonical"},
	"fastingStatus":        {"CodeableConcept", "Duration"},
	"fixed":                openTypes,
	"identified":           {"DateTime", "Period"},
	"indication":           {"CodeableConcept", "Reference"},
	"item":                 {"CodeableConcept", "Reference"},
	"legallyBinding":       {"Attachment", "Reference"},
	"location":             {"Address", "CodeableConcept", "Reference"},
	"manufacturer":         {"Reference", "String"},
	"maxValue":             {"Date", "DateTime", "Decimal", "Instant", "Integer", "PositiveInt", "Quantity", "Time", "UnsignedInt"},
	"medication":           {"CodeableConcept", "Reference"},
	"minValue":             {"Date", "DateTime", "Decimal", "Instant", "Integer", "PositiveInt", "Quantity", "Time", "UnsignedInt"},
	"minimumVolume":        {"Quantity", "String"},
	"module":               {"Canonical", "CodeableConcept", "Uri"},
	"multipleBirth":        {"Boolean", "Integer"},
	"name":                 {"Reference", "Url"},
	"occurred":             {"DateTime", "Period"},
	"occurrence":           {"DateTime", "Period", "String", "Timing"},
	"offset":               {"Duration", "Range"},
	"onset":                {"Age", "DateTime", "Period", "Range", "String"},
	"participantEffective": {"DateTime", "Duration", "Period", "Timing"},
	"pattern":              openTypes,
	"performed":            {"Age", "DateTime", "Period", "Range", "String"},
	"probability":          {"Decimal", "Range"},
	"procedure":            {"CodeableConcept", "Reference"},
	"product":              {"CodeableConcept", "Reference"},
	"quantity":             {"Quantity", "Range", "Ratio"},
	"rate":                 {"Quantity", "Range", "Ratio"},
	"reported":             {"Boolean", "Reference"},
	"scheduled":            {"Period", "String", "Timing"},
	"seriesDoses":          {"PositiveInt", "String"},
	"serviced":             {"Date", "Period"},
	"source":               {"Attachment", "Canonical", "Reference", "Uri"},
	"start":                {"CodeableConcept", "Date"},
	"statusReason":         {"CodeableConcept", "Reference"},
	"studyEffective":       {"DateTime", "Duration", "Period", "Timing"},
	"subject":              {"CodeableConcept", "Reference"},
	"substance":            {"CodeableConcept", "Reference"},
	"target":               {"Canonical", "Identifier", "Reference", "Uri"},
	"time":                 {"DateTime", "Period"},
	"timing":               {"Age", "Date", "DateTime", "Duration", "Period", "Range", "Reference", "Timing"},
	"topic":                {"CodeableConcept", "Reference"},
	"used":                 {"Money", "String", "UnsignedInt"},
	"value":                openTypes,
	"when":                 {"Period", "Range"},
}

// primitiveTypes are the FHIR primitive type names. As JSON key suffixes
// they are capitalised (valueDateTime); as type names they are not.
var primitiveTypes = map[string]bool{
	"base64Binary": true, "boolean": true, "canonical": true, "code": true, "date": true,
	"dateTime": true, "decimal": true, "id": true, "instant": true, "integer": true,
	"markdown": true, "oid": true, "positiveInt": true, "string": true, "time": true,
	"unsignedInt": true, "uri": true, "url": true, "uuid": true, "xhtml": true,
}

// typeFromSuffix turns a choice key suffix ("DateTime", "Quantity") into
// the FHIR type name ("dateTime", "Quantity").
func typeFromSuffix(suffix string) string {
	if suffix == "" {
		return ""
	}
	lower := strings.ToLower(suffix[:1]) + suffix[1:]
	if primitiveTypes[lower] {
		return lower
	}
	return suffix
}

// supertypes gives the parent of the FHIR complex types that specialise
// another one, for "is"/"as": an Age is a Quantity. The primitive
// specialisations (canonical of uri, code of string, ...) are left out on
// purpose: the R4 parameters tell a choice's primitive types apart, as in
// "(ConceptMap.source as uri)" versus "(ConceptMap.source as canonical)",
// so primitive types match exactly.
var supertypes = map[string]string{
	"Age": "Quantity", "Count": "Quantity", "Distance": "Quantity", "Duration": "Quantity",
	"MoneyQuantity": "Quantity", "SimpleQuantity": "Quantity",
}
