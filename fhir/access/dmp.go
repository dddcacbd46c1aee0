package access

// The DMP policy: medical secrecy as one definition per requester kind, a
// store.Filter per resource type. Searches AND it into the store query
// (hidden resources never match, count, sort or decide a chain); reads by
// id evaluate the same filter in memory with store.Filter.Match, the
// reference semantics every store's translation is tested against. Both
// forms come from Scope.Filter, so they cannot drift apart.
//
// The filter needs facts about the requester that live in the record
// (which Practitioners carry the professional's RPPS, whose médecin
// traitant they are, the active Consents): Scope resolves them with a few
// store queries and caches them (see factsTTL).

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/store"
)

// Codes the policy reads (DOMAIN.md; Dossier's own code systems in profiles/).
const (
	SysConfidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
	SysLabels          = "urn:oid:1.2.250.1.213.1.1.4.13" // TRE_A07
	SysActReason       = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
	SysConsentScope    = "http://terminology.hl7.org/CodeSystem/consentscope"
	SysConsentPurpose  = "https://dossier-fhir.github.io/fhir/CodeSystem/consent-purpose"
	SysCarePlanCat     = "https://dossier-fhir.github.io/fhir/CodeSystem/careplan-category"
	SysRPPS            = "https://rpps.esante.gouv.fr"
	SysPSNational      = "urn:oid:1.2.250.1.71.4.2.1" // national PS id: "8" + RPPS

	LabelMasked           = SysLabels + "|MASQUE_PS"
	LabelInvisiblePatient = SysLabels + "|INVISIBLE_PATIENT"
	LabelInvisibleReps    = SysLabels + "|INVISIBLE_REPRESENTANTS_LEGAUX"
	LabelVeryRestricted   = SysConfidentiality + "|V"
	LabelRestricted       = SysConfidentiality + "|R"

	PurposeBTG      = SysActReason + "|BTG"
	PurposeETREAT   = SysActReason + "|ETREAT"
	PurposeMasked   = SysConsentPurpose + "|MASKED"
	PurposeCampaign = SysConsentPurpose + "|CAMPAIGN"

	CategoryPrevention = SysCarePlanCat + "|prevention"
)

// Search keys the repo adds to every version for the policy: the
// Organization whose integration engine wrote it (Version.Org), and its
// secrecy labels (Version.Security: meta.security and a document's
// securityLabel, "system|code").
const (
	OrgKey   = "_org"
	LabelKey = "_label"
)

// factsTTL bounds how long facts cached by one server instance may lag a
// Consent or Patient written through another instance; writes through this
// instance invalidate at once (Invalidate).
const factsTTL = 2 * time.Second

// DMP is the medical secrecy policy of the personal record.
type DMP struct {
	st       store.Store
	matrix   *Matrix
	clinical func(typ string) bool // in the Patient compartment (not Patient itself)

	gen   atomic.Uint64
	mu    sync.Mutex
	pros  map[string]*proFacts // by RPPS
	glob  *globalFacts
	nowFn func() time.Time
}

var _ Policy = (*DMP)(nil)

// NewDMP builds the policy. clinical reports whether a resource type
// belongs to a patient's record (the Patient compartment, Patient aside).
func NewDMP(st store.Store, m *Matrix, clinical func(typ string) bool) *DMP {
	return &DMP{st: st, matrix: m, clinical: clinical, pros: map[string]*proFacts{}, nowFn: time.Now}
}

// Invalidate drops cached facts (after a write of a Patient, Practitioner
// or Consent).
func (d *DMP) Invalidate() { d.gen.Add(1) }

// FactTypes are the types whose writes change the facts.
var FactTypes = []string{"Patient", "Practitioner", "Consent"}

// Allow implements Policy: which roles may attempt which interactions,
// narrowed by the token's SMART scopes.
func (d *DMP) Allow(r *Requester, act Action, typ string) error {
	if r == nil {
		return outcome.New(outcome.Unauthenticated, "login", "a bearer token is required")
	}
	deny := func(why string) error { return outcome.New(outcome.Forbidden, "forbidden", "%s", why) }
	write := act == Create || act == Update || act == Patch || act == Delete
	switch r.Role {
	case RoleAdmin:
		if act == Close || act == Reopen {
			break
		}
		if write {
			return deny("the host's administrator manages records (close, reopen) and writes no content")
		}
	case RoleCampaign:
		if write || act == Close || act == Reopen {
			return deny("prevention campaign tools read the prevention section only")
		}
	case RolePatient, RoleRepresentative:
		if act == Close || act == Reopen {
			return deny("closing a record is done by the host's administrator")
		}
		if write && typ != "Consent" && typ != "DocumentReference" {
			return deny("a patient manages Consents and the masking of documents; other content is written by professionals")
		}
		if (act == Create || act == Delete) && typ == "DocumentReference" {
			return deny("a patient masks or unmasks documents; documents are added and deleted by professionals")
		}
	case RoleProfessional, RoleIntegration:
		if act == Close || act == Reopen {
			return deny("closing a record is done by the host's administrator")
		}
	default:
		return deny("unknown role")
	}
	if typ == "AuditEvent" && write {
		return deny("traces are written by the server only")
	}
	return checkScopes(r, act, typ)
}

// Scope implements Policy.
func (d *DMP) Scope(ctx context.Context, r *Requester) (Scope, error) {
	s := &dmpScope{d: d, r: r}
	if r == nil || (r.Role != RoleProfessional && r.Role != RoleCampaign) {
		return s, nil // the other roles' rules need no facts
	}
	var err error
	if s.g, err = d.global(ctx); err != nil {
		return nil, err
	}
	if r.Role == RoleProfessional {
		if s.p, err = d.professional(ctx, r.RPPS); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// RPPSIdentifiers are the identifier search values ("system|value") a
// Practitioner carrying one of these RPPS numbers has: the RPPS itself,
// or the national PS id "8" + RPPS.
func RPPSIdentifiers(rpps ...string) []string {
	var out []string
	for _, n := range rpps {
		out = append(out, SysRPPS+"|"+n, SysPSNational+"|8"+n)
	}
	return out
}

// ---- facts ----

type proFacts struct {
	refs    []string // "Practitioner/<id>" carrying the RPPS
	gp      []string // patients whose médecin traitant this is
	permit  []string // patients with an active authorisation for this professional
	blocked []string // patients who blocked this professional
	gen     uint64
	at      time.Time
}

type globalFacts struct {
	refuseBTG, refuseETREAT []string // patients who refused emergency access
	maskedOK                []string // patients allowing masked documents in an emergency
	objectors               []string // patients who objected to prevention campaigns
	gen                     uint64
	at                      time.Time
}

func (d *DMP) fresh(gen uint64, at time.Time) bool {
	return gen == d.gen.Load() && d.nowFn().Sub(at) < factsTTL
}

func (d *DMP) global(ctx context.Context) (*globalFacts, error) {
	d.mu.Lock()
	g := d.glob
	d.mu.Unlock()
	if g != nil && d.fresh(g.gen, g.at) {
		return g, nil
	}
	gen, at := d.gen.Load(), d.nowFn()
	cs, err := d.consents(ctx, store.Eq("purpose", PurposeBTG, PurposeETREAT, PurposeMasked, PurposeCampaign))
	if err != nil {
		return nil, err
	}
	g = &globalFacts{gen: gen, at: at}
	for _, c := range cs {
		switch {
		case c.deny && c.purposes[PurposeBTG] && len(c.actors) == 0:
			g.refuseBTG = append(g.refuseBTG, c.patient)
		}
		switch {
		case c.deny && c.purposes[PurposeETREAT] && len(c.actors) == 0:
			g.refuseETREAT = append(g.refuseETREAT, c.patient)
		}
		if !c.deny && c.purposes[PurposeMasked] {
			g.maskedOK = append(g.maskedOK, c.patient)
		}
		if c.deny && c.purposes[PurposeCampaign] {
			g.objectors = append(g.objectors, c.patient)
		}
	}
	d.mu.Lock()
	d.glob = g
	d.mu.Unlock()
	return g, nil
}

func (d *DMP) professional(ctx context.Context, rpps string) (*proFacts, error) {
	d.mu.Lock()
	p := d.pros[rpps]
	d.mu.Unlock()
	if p != nil && d.fresh(p.gen, p.at) {
		return p, nil
	}
	gen, at := d.gen.Load(), d.nowFn()
	p = &proFacts{gen: gen, at: at}
	if rpps != "" {
		vs, err := d.st.Find(ctx, store.Query{Type: "Practitioner", Filter: store.Eq("identifier", RPPSIdentifiers(rpps)...)})
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			p.refs = append(p.refs, "Practitioner/"+v.ID)
		}
	}
	if len(p.refs) > 0 {
		vs, err := d.st.Find(ctx, store.Query{Type: "Patient", Filter: store.Eq("general-practitioner", p.refs...)})
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			p.gp = append(p.gp, v.ID)
		}
		cs, err := d.consents(ctx, store.Eq("actor", p.refs...))
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			special := c.purposes[PurposeBTG] || c.purposes[PurposeETREAT] || c.purposes[PurposeMasked] || c.purposes[PurposeCampaign]
			switch {
			case c.deny && !special:
				p.blocked = append(p.blocked, c.patient)
			case !c.deny && !special:
				p.permit = append(p.permit, c.patient)
			}
		}
	}
	d.mu.Lock()
	if len(d.pros) > 10_000 {
		d.pros = map[string]*proFacts{}
	}
	d.pros[rpps] = p
	d.mu.Unlock()
	return p, nil
}

type consent struct {
	patient  string
	deny     bool
	actors   []string
	purposes map[string]bool
}

// consents returns the active patient-privacy Consents matching f.
func (d *DMP) consents(ctx context.Context, f store.Filter) ([]consent, error) {
	vs, err := d.st.Find(ctx, store.Query{Type: "Consent", Filter: and(f, store.Eq("status", "active"))})
	if err != nil {
		return nil, err
	}
	var out []consent
	for _, v := range vs {
		if c, ok := parseConsent(v); ok {
			out = append(out, c)
		}
	}
	return out, nil
}

func parseConsent(v *store.Version) (consent, bool) {
	var doc struct {
		Status string `json:"status"`
		Scope  struct {
			Coding []struct{ System, Code string } `json:"coding"`
		} `json:"scope"`
		Provision struct {
			Type  string `json:"type"`
			Actor []struct {
				Reference struct {
					Reference string `json:"reference"`
				} `json:"reference"`
			} `json:"actor"`
			Purpose []struct{ System, Code string } `json:"purpose"`
		} `json:"provision"`
	}
	if v.Patient == "" || json.Unmarshal(v.JSON, &doc) != nil || doc.Status != "active" {
		return consent{}, false
	}
	privacy := false
	for _, c := range doc.Scope.Coding {
		privacy = privacy || (c.System == SysConsentScope && c.Code == "patient-privacy")
	}
	if !privacy || (doc.Provision.Type != "permit" && doc.Provision.Type != "deny") {
		return consent{}, false
	}
	c := consent{patient: v.Patient, deny: doc.Provision.Type == "deny", purposes: map[string]bool{}}
	for _, a := range doc.Provision.Actor {
		if ref := a.Reference.Reference; strings.HasPrefix(ref, "Practitioner/") {
			c.actors = append(c.actors, ref)
		}
	}
	for _, p := range doc.Provision.Purpose {
		c.purposes[p.System+"|"+p.Code] = true
	}
	return c, true
}

// ---- the definition ----

type dmpScope struct {
	d *DMP
	r *Requester
	p *proFacts
	g *globalFacts
}

func none() store.Filter { return store.None() }

func and(fs ...store.Filter) store.Filter { return store.AndOf(fs...) }

func or(fs ...store.Filter) store.Filter { return store.OrOf(fs...) }

// inPatients is the compartment of ids (nothing when empty).
func inPatients(ids []string) store.Filter {
	if len(ids) == 0 {
		return none()
	}
	return store.InPatient(ids...)
}

func notInPatients(ids []string) store.Filter {
	if len(ids) == 0 {
		return store.All()
	}
	return store.Not(store.InPatient(ids...))
}

// labelled: the resource carries one of the labels, as a document
// securityLabel or in meta.security.
func labelled(labels ...string) store.Filter { return store.Eq(LabelKey, labels...) }

func unlabelled(labels ...string) store.Filter { return store.Not(labelled(labels...)) }

// Filter implements Scope: what the requester may see of typ.
func (s *dmpScope) Filter(typ string) store.Filter {
	r := s.r
	if r == nil {
		return none()
	}
	clinical := s.d.clinical(typ)
	if typ == "AuditEvent" {
		return s.tracesFilter()
	}
	switch r.Role {
	case RoleAdmin:
		// Manages records: identities and the directory, no clinical content.
		if typ == "Binary" || typ == "AuditEvent" || clinical {
			return none()
		}
		return store.All()
	case RoleIntegration:
		// Writes for its organization and reads what it wrote; sees the
		// identities (to file documents in the right record) and the
		// directory.
		if typ == "Binary" || typ == "AuditEvent" || clinical {
			return store.Eq(OrgKey, orNothing(r.Org))
		}
		return store.All()
	case RolePatient, RoleRepresentative:
		if typ == "Binary" {
			return none() // read through its document only
		}
		if !clinical && typ != "Patient" {
			if typ == "AuditEvent" {
				return none() // traces: their own rule (issue 7)
			}
			return store.All() // the directory
		}
		hidden := []string{LabelInvisiblePatient}
		if r.Role == RoleRepresentative {
			hidden = append(hidden, LabelInvisibleReps, LabelVeryRestricted)
		}
		return and(inPatients([]string{r.Patient}), unlabelled(hidden...))
	case RoleCampaign:
		notObjecting := notInPatients(s.g.objectors)
		switch typ {
		case "Patient":
			return notObjecting // served as the minimal view (View)
		case "CarePlan":
			return and(notObjecting, store.Eq("category", CategoryPrevention))
		case "DocumentReference":
			return and(notObjecting, store.Eq("type", s.d.matrix.PreventionTypes...),
				unlabelled(LabelMasked, LabelInvisiblePatient, LabelInvisibleReps, LabelVeryRestricted, LabelRestricted))
		}
		return none()
	case RoleProfessional:
		return s.professionalFilter(typ, clinical)
	}
	return none()
}

func orNothing(s string) string {
	if s == "" {
		return "\x00none"
	}
	return s
}

// professionalFilter: a blocked professional sees nothing of that
// patient. Otherwise the médecin traitant sees the whole record; an
// authorised professional (Consent permit; in an emergency access mode,
// any patient who did not refuse it) sees what the matrix allows of the
// documents, without the masked ones (in an emergency: unless the patient
// allows them) nor the very restricted ones; the author of a document
// always sees it.
func (s *dmpScope) professionalFilter(typ string, clinical bool) store.Filter {
	p, g, r := s.p, s.g, s.r
	notBlocked := notInPatients(p.blocked)
	switch {
	case typ == "Binary":
		return none() // read through its document only
	case typ == "AuditEvent":
		return none() // traces: their own rule
	case typ == "Patient":
		// Identity: whether a record exists, to declare an authorisation.
		return notBlocked
	case !clinical:
		return store.All() // the directory
	}
	emergency := r.Mode == ModeBrisDeGlace || r.Mode == ModeCentre15
	var refused []string
	switch r.Mode {
	case ModeBrisDeGlace:
		refused = g.refuseBTG
	case ModeCentre15:
		refused = g.refuseETREAT
	}
	var authorised store.Filter
	if emergency {
		authorised = or(inPatients(p.permit), notInPatients(refused))
	} else {
		authorised = inPatients(p.permit)
	}
	mine := none()
	if len(p.refs) > 0 && typ == "DocumentReference" {
		mine = store.Eq("author", p.refs...)
	}
	switch typ {
	case "Consent":
		// Consents: the médecin traitant's patients', and those naming
		// this professional (an authorisation declared, a block).
		named := none()
		if len(p.refs) > 0 {
			named = store.Eq("actor", p.refs...)
		}
		return and(notBlocked, or(inPatients(p.gp), named))
	}
	masked := unlabelled(LabelMasked, LabelVeryRestricted)
	if emergency {
		// In an emergency, masked resources where the patient allows them.
		masked = and(unlabelled(LabelVeryRestricted), or(unlabelled(LabelMasked), inPatients(g.maskedOK)))
	}
	content := and(authorised, masked)
	if typ == "DocumentReference" {
		content = and(content, s.d.matrix.documents(r.Profession, r.Specialty))
	}
	return and(notBlocked, or(inPatients(p.gp), mine, content))
}

// tracesFilter: who reads the traces (AuditEvents, kept in the record of
// the patient they concern). The patient reads his record's traces and a
// legal representative the minor's, except the traces of accesses to
// data hidden from them (a trace carries the invisibility label of what
// was accessed: the traces of the minor's secret care are secret too);
// the médecin traitant reads his patients' traces; a professional reads
// his own (agent.altId = his RPPS). Nobody else.
func (s *dmpScope) tracesFilter() store.Filter {
	r := s.r
	switch r.Role {
	case RolePatient:
		return and(inPatients([]string{r.Patient}), unlabelled(LabelInvisiblePatient))
	case RoleRepresentative:
		return and(inPatients([]string{r.Patient}), unlabelled(LabelInvisiblePatient, LabelInvisibleReps))
	case RoleProfessional:
		// His own traces, the successful ones: a refused attempt names a
		// resource he may not see.
		own := none()
		if r.RPPS != "" {
			own = and(store.Eq("altid", r.RPPS), store.Eq("outcome", "0"))
		}
		return or(inPatients(s.p.gp), own)
	}
	return none()
}

// Visible implements Scope: the same definition, in memory.
func (s *dmpScope) Visible(v *store.Version) bool {
	if v == nil {
		return false
	}
	return s.Filter(v.Type).Match(v)
}

// ThroughDocument implements Scope.
func (s *dmpScope) ThroughDocument() bool {
	return s.r != nil && s.r.Role != RoleIntegration
}

// Everything implements Scope.
func (s *dmpScope) Everything() bool { return false }

// minimalPatient are the elements a campaign tool sees of a Patient.
var minimalPatient = []string{"identifier", "name", "birthDate", "gender", "address", "telecom"}

// View implements Scope: prevention campaign tools get a minimal view of
// each Patient.
func (s *dmpScope) View(v *store.Version) *store.Version {
	if s.r == nil || s.r.Role != RoleCampaign || v.Type != "Patient" || v.Deleted {
		return v
	}
	data, err := resource.Subset(v.JSON, "", minimalPatient)
	if err != nil {
		return nil
	}
	out := *v
	out.JSON = data
	return &out
}

// MayReport implements Scope: the doctor himself (his RPPS), the
// organization's integration engine for its organization, and the host's
// administrator.
func (s *dmpScope) MayReport(rpps, org string) bool {
	r := s.r
	if r == nil {
		return false
	}
	switch r.Role {
	case RoleAdmin:
		return true
	case RoleProfessional:
		return rpps != "" && r.RPPS == rpps
	case RoleIntegration:
		return org != "" && r.Org == org
	}
	return false
}

// CanWrite implements Scope: who may write what in a record, on top of
// seeing it (the current version is visible, or the write would have been
// answered 404).
func (s *dmpScope) CanWrite(act Action, v, cur *store.Version) error {
	r := s.r
	deny := func(format string, args ...any) error {
		return outcome.New(outcome.Forbidden, "forbidden", format, args...)
	}
	switch r.Role {
	case RoleIntegration:
		return nil // everything it writes is its organization's
	case RoleProfessional:
		p := s.p
		if v.Patient != "" && slices.Contains(p.blocked, v.Patient) {
			return deny("the patient has blocked this professional")
		}
		switch {
		case v.Type == "Consent":
			if act == Delete || !s.ownDeclaration(v) {
				return deny("a professional may only declare an authorisation (Consent permit) for himself")
			}
			return nil
		case v.Type == "Patient":
			if act == Create || slices.Contains(p.gp, v.ID) || slices.Contains(p.permit, v.ID) {
				return nil
			}
			return deny("updating a Patient needs an authorisation to the record")
		case v.Type == "DocumentReference" && act != Create:
			if cur == nil || !s.authoredByMe(cur) {
				return deny("only the author of a document may change or delete it")
			}
			return nil
		case act == Delete:
			return deny("a professional deletes only the documents he authored")
		}
		if v.Patient == "" || slices.Contains(p.gp, v.Patient) || slices.Contains(p.permit, v.Patient) {
			return nil
		}
		if (r.Mode == ModeBrisDeGlace && !slices.Contains(s.g.refuseBTG, v.Patient)) ||
			(r.Mode == ModeCentre15 && !slices.Contains(s.g.refuseETREAT, v.Patient)) {
			return nil
		}
		return deny("writing to this record needs the patient's authorisation")
	case RolePatient, RoleRepresentative:
		if v.Patient != r.Patient {
			return deny("a patient writes only in his own record")
		}
		if v.Type == "DocumentReference" && !onlyMaskingChanged(cur, v) {
			return deny("a patient may only add or remove the MASQUE_PS label of a document")
		}
		return nil
	}
	return deny("this role may not write")
}

func (s *dmpScope) authoredByMe(v *store.Version) bool {
	for _, a := range v.Keys["author"] {
		if slices.Contains(s.p.refs, a) {
			return true
		}
	}
	return false
}

// ownDeclaration: a Consent permit naming only this professional, without
// a special purpose.
func (s *dmpScope) ownDeclaration(v *store.Version) bool {
	c, ok := parseConsent(v)
	if !ok || c.deny || len(c.purposes) > 0 || len(c.actors) == 0 {
		return false
	}
	for _, a := range c.actors {
		if !slices.Contains(s.p.refs, a) {
			return false
		}
	}
	return true
}

// onlyMaskingChanged: the new version differs from the current one only
// by the MASQUE_PS label in securityLabel.
func onlyMaskingChanged(cur, v *store.Version) bool {
	if cur == nil || cur.Deleted || v.Deleted {
		return false
	}
	strip := func(data []byte) (string, []string, bool) {
		obj, err := resource.ParseObject(data)
		if err != nil {
			return "", nil, false
		}
		var labels []struct{ System, Code string }
		if raw, ok := obj.Get("securityLabel"); ok {
			var ccs []struct {
				Coding []struct{ System, Code string } `json:"coding"`
			}
			if json.Unmarshal(raw, &ccs) != nil {
				return "", nil, false
			}
			for _, cc := range ccs {
				labels = append(labels, cc.Coding...)
			}
		}
		var out []string
		for _, l := range labels {
			if l.System+"|"+l.Code != LabelMasked {
				out = append(out, l.System+"|"+l.Code)
			}
		}
		slices.Sort(out)
		h, err := resource.ContentHash(obj.Delete("securityLabel").Marshal())
		return h, out, err == nil
	}
	h1, l1, ok1 := strip(cur.JSON)
	h2, l2, ok2 := strip(v.JSON)
	return ok1 && ok2 && h1 == h2 && slices.Equal(l1, l2) && !bytes.Equal(cur.JSON, nil)
}
