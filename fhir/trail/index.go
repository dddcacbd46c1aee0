package trail

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/store"
)

// Search fields of events, by shape.
//
// Every AuditEvent is searchable (Options.Index, the generic indexer over
// AuditEvent's search parameters), which cost ~75 µs of CPU and 415
// allocations per event (BenchmarkIndex). But events of one shape (the
// same requester, interaction, outcome, secrecy label and resource type)
// differ only in the resource's id, the patient's id and the time. The
// trail therefore indexes each shape once, with placeholder ids (random,
// chosen at New) and a placeholder time, and fills an event's fields from
// that template (~14 µs, 52 allocations): the placeholders replaced in
// keys (a value the ids make equal to another is kept once, as the
// indexer does), the time in ranges and sort values, and the sort value
// of a parameter holding ids (ids are only in references) recomputed as
// the least "Type/id" of its values. Ids that are not FHIR ids (a refused
// attempt may name anything) are indexed as they are. TestIndexTemplate
// compares the result with the indexer's own, event by event, over
// requesters, interactions, outcomes, labels and ids that collide with
// constants of the event, with each other or with the requester's.

// placeholderTime is the recorded time of templates.
var placeholderTime = time.Date(2001, 2, 3, 4, 5, 6, 789012000, time.UTC)

// shape is what an event's search fields depend on besides its ids and
// time.
type shape struct {
	anon                                                bool // no requester
	role, subject, rpps, profession, mode, patient, org string
	interaction, operation, typ, secret                 string
	refused                                             int
	hasID, hasPatient, samePatient                      bool
}

func shapeOf(req *access.Requester, tc repo.Touch) shape {
	s := shape{
		anon: req == nil, interaction: tc.Interaction, operation: tc.Operation, typ: tc.Type,
		secret: tc.Secret, refused: tc.Refused,
		hasID: tc.ID != "", hasPatient: tc.Patient != "", samePatient: tc.ID != "" && tc.ID == tc.Patient,
	}
	if req != nil {
		s.role, s.subject, s.rpps, s.profession = string(req.Role), req.Subject, req.RPPS, req.Profession
		s.mode, s.patient, s.org = req.Mode, req.Patient, req.Org
	}
	return s
}

// template is the search fields of a shape, with placeholders.
type template struct {
	keys    map[string][]string
	subst   map[string]bool // keys with a placeholder in a value
	ranges  map[string][]store.Range
	sortStr map[string]string
	sortNum map[string][2]float64
	patient string
}

// templates caches the templates of the shapes seen (at most maxShapes;
// emptied when full).
type templates struct {
	mu        sync.Mutex
	m         map[shape]*template
	id, pat   string // placeholder ids of the resource and of the patient
	maxShapes int
}

func newTemplates() *templates {
	return &templates{m: map[shape]*template{}, id: placeholderID(), pat: placeholderID(), maxShapes: 4096}
}

func placeholderID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "z" + hex.EncodeToString(b)
}

// index fills v's search fields for the event of touch tc by req at now.
func (t *Trail) index(v *store.Version, req *access.Requester, tc repo.Touch, now time.Time) error {
	if !plainID(tc.ID) || !plainID(tc.Patient) {
		// An id the indexer might read otherwise than a placeholder
		// (a refused attempt can name anything): index the event itself.
		return t.indexEvent(v, req, tc, now)
	}
	ts := t.tpl
	sh := shapeOf(req, tc)
	ts.mu.Lock()
	tp := ts.m[sh]
	ts.mu.Unlock()
	if tp == nil {
		var err error
		if tp, err = t.newTemplate(req, tc, v.Security); err != nil {
			return err
		}
		ts.mu.Lock()
		if len(ts.m) >= ts.maxShapes {
			clear(ts.m)
		}
		ts.m[sh] = tp
		ts.mu.Unlock()
	}
	r := strings.NewReplacer(ts.id, tc.ID, ts.pat, tc.Patient)
	v.Keys = make(map[string][]string, len(tp.keys))
	for k, vals := range tp.keys {
		if !tp.subst[k] {
			v.Keys[k] = vals // shared: stored versions' keys are never changed in place
			continue
		}
		out := make([]string, 0, len(vals))
		for _, s := range vals {
			if s = r.Replace(s); !slices.Contains(out, s) { // the indexer keeps a value once
				out = append(out, s)
			}
		}
		v.Keys[k] = out
	}
	at, was := float64(now.UnixMicro()), float64(placeholderTime.UnixMicro())
	moved := func(x float64) float64 {
		if x == was {
			return at
		}
		return x
	}
	v.Ranges = make(map[string][]store.Range, len(tp.ranges))
	for k, rs := range tp.ranges {
		out := make([]store.Range, len(rs))
		for i, x := range rs {
			out[i] = store.Range{Lo: moved(x.Lo), Hi: moved(x.Hi)}
		}
		v.Ranges[k] = out
	}
	v.SortNum = make(map[string][2]float64, len(tp.sortNum))
	for k, x := range tp.sortNum {
		v.SortNum[k] = [2]float64{moved(x[0]), moved(x[1])}
	}
	v.SortStr = make(map[string]string, len(tp.sortStr))
	for k, s := range tp.sortStr {
		if !tp.subst[k] {
			v.SortStr[k] = s
			continue
		}
		// Ids are only in references, whose sort value is the least
		// "Type/id" of the parameter's values: the ids change it.
		least := ""
		for _, ref := range v.Keys[k] {
			if strings.Contains(ref, "/") && (least == "" || ref < least) {
				least = ref
			}
		}
		v.SortStr[k] = least
	}
	v.Patient = r.Replace(tp.patient)
	return nil
}

// newTemplate indexes the event of tc's shape with placeholder ids and
// time.
func (t *Trail) newTemplate(req *access.Requester, tc repo.Touch, security []string) (*template, error) {
	ts := t.tpl
	ptc := tc
	if tc.ID != "" {
		ptc.ID = ts.id
	}
	if tc.Patient != "" {
		ptc.Patient = ts.pat
		if tc.Patient == tc.ID {
			ptc.Patient = ts.id
		}
	}
	tv := &store.Version{Type: "AuditEvent", ID: "template", VersionID: 1, LastUpdated: placeholderTime, Method: "POST", Security: security}
	if err := t.indexEvent(tv, req, ptc, placeholderTime); err != nil {
		return nil, err
	}
	tp := &template{keys: tv.Keys, subst: map[string]bool{}, ranges: tv.Ranges, sortStr: tv.SortStr, sortNum: tv.SortNum, patient: tv.Patient}
	for k, vals := range tv.Keys {
		for _, s := range vals {
			if strings.Contains(s, ts.id) || strings.Contains(s, ts.pat) {
				tp.subst[k] = true
			}
		}
	}
	return tp, nil
}

// plainID reports whether id is empty or a FHIR id ([A-Za-z0-9-.]{1,64}),
// which the indexer reads as it reads a placeholder.
func plainID(id string) bool {
	if len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// indexEvent indexes the event of tc itself.
func (t *Trail) indexEvent(v *store.Version, req *access.Requester, tc repo.Touch, now time.Time) error {
	ev := event(req, tc, now, t.source)
	meta, _ := eventMeta(tc, now)
	ev["resourceType"], ev["id"], ev["meta"] = "AuditEvent", v.ID, meta
	return t.opts.Index(v, ev)
}
