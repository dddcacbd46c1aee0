// Package trail stores the audit trail: an AuditEvent for every access
// to a record, written before the response leaves (fail-closed) and in
// groups (group commit).
//
// # Events
//
// The repo notes what a request touches (repo.Touch: the interaction, the
// resource, the patient, the outcome); Trail.Trace turns each touch into
// an AuditEvent following the ANS traceability profile (tde-auditevent)
// as far as its public facts go:
//
//	type            audit-event-type|rest
//	subtype         restful-interaction|<read, vread, search-type, …> (an
//	                operation also carries its name in display: $everything)
//	action          C (create) R (reads, searches) U (update, patch) D (delete) E (operation)
//	recorded        when
//	outcome         0 success, 4 refused (outcomeDesc: the status)
//	purposeOfEvent  v3-ActReason TREAT (professional, normal), BTG
//	                (bris_de_glace), ETREAT (centre_15); none for others
//	agent           the requestor: a professional by his RPPS
//	                (who.identifier, altId), profession (TRE_G15) and role;
//	                a patient or representative by the Patient reference; an
//	                integration engine by its Organization; plus the
//	                organization as a second agent when the token names one
//	source          this server (observer, site, type 4 application server)
//	entity          the resource (what) or, for a search, its type (name);
//	                the patient (what Patient/<id>, object-role 1)
//	meta.security   the INVISIBLE_PATIENT / INVISIBLE_REPRESENTANTS_LEGAUX
//	                label of the data accessed, when it has one
//
// No clinical content: no query string, no body, no diagnostics.
// AuditEvents are stored as resources of the patient's record (their
// owner is the patient), so AuditEvent?patient=… reads the per-patient
// layout.
//
// # Group commit and fail-closed
//
// Trace adds its events to the open round (a batch: the events of the
// requests that will share one commit) and waits; one writer goroutine
// stores the rounds in turn. While other traced requests are on their
// way (Begin was called for them and they have not reached Trace yet)
// the writer waits for their events too, at most MaxDelay after the
// round's first event arrived; a round holds at most MaxBatch events.
// It stores a round in one store.Append (one insert per batch; each
// event whole or not at all) and wakes all its requests at once (one
// channel closed per round). On the embedded engine a commit costs an
// fsync: without the wait, a batch was about one event at a few hundred
// requests per second (BENCHMARKS.md); the fsync also holds a Go P,
// which `dossier serve` offsets with a spare one (embedded.SpareProc).
// A request whose events could not be stored gets the error: the REST
// layer then answers 503 and returns none of the data.
// A failed batch may leave some of its events stored (an insert that
// stops at its first error): the requests still get 503, so the failure
// leaves at worst a trace of data never returned, never data returned
// without its trace. Close refuses new traces and stores what is waiting.
package trail

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/store"
)

// Options configure a Trail.
type Options struct {
	// Index fills a version's search fields from the event's object
	// (repo.Repo.Index). The trail calls it once per shape of event and
	// fills the events of that shape from the result (index.go).
	Index func(v *store.Version, obj map[string]any) error
	// Notify is called once the traces of an emergency access are stored
	// (repo.Repo.NotifyEmergency); nil: no notifications.
	Notify func(ctx context.Context, req *access.Requester, patient string) error
	// Source names this server in AuditEvent.source.
	Source string
	// MaxDelay is how long the writer may wait for more events after the
	// first, and it waits only while other traced requests are on their
	// way (started, see Begin, and not yet at Trace): a lone request is
	// never delayed, concurrent ones share a commit (like PostgreSQL's
	// commit_delay with commit_siblings). Without the wait a batch is
	// what queued while the previous write ran, about one event at a
	// few hundred requests per second, and every event paid a commit
	// and its fsync. Zero means DefaultMaxDelay; negative, no wait.
	// MaxBatch caps a batch (default 256 events).
	MaxDelay time.Duration
	MaxBatch int
	// Registerer, when set, receives the trail's metrics.
	Registerer prometheus.Registerer
}

// DefaultMaxDelay is the default Options.MaxDelay (BENCHMARKS.md).
const DefaultMaxDelay = 500 * time.Microsecond

// Trail stores AuditEvents.
type Trail struct {
	st   store.Store
	opts Options
	// mu guards rounds and closed. Trace adds its events to the last
	// round (a new one when there is none open or it is full); the
	// writer takes the first. Close sets closed, so no event arrives
	// after the writer's last round.
	mu     sync.Mutex
	rounds []*round
	closed bool
	kick   chan struct{} // a round has events (capacity 1)
	stop   chan struct{}
	done   sync.WaitGroup
	now    func() time.Time
	source map[string]any // AuditEvent.source, shared by every event
	tpl    *templates     // search fields by shape of event (index.go)
	// coming counts the requests between Begin and their arrival; the
	// arrival that brings it to zero wakes a waiting writer.
	coming atomic.Int64
	wake   chan struct{}

	batches, events prometheus.Counter
	failures        prometheus.Counter
}

// round is one group commit: the events of the requests that share it,
// and its result. The writer closes done once err is set: one close wakes
// every request of the round (no channel per request).
type round struct {
	vs   []*store.Version
	at   time.Time // when its first event arrived
	full bool      // taken by the writer or at MaxBatch: no more events
	done chan struct{}
	err  error
}

// ErrClosed is returned by Trace after Close.
var ErrClosed = errors.New("audit trail closed")

// New starts a Trail writing to st.
func New(st store.Store, opts Options) *Trail {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	if opts.MaxDelay == 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.Source == "" {
		opts.Source = "dossier"
	}
	t := &Trail{st: st, opts: opts, kick: make(chan struct{}, 1), stop: make(chan struct{}), wake: make(chan struct{}, 1), now: time.Now, source: sourceOf(opts.Source), tpl: newTemplates(),
		batches:  prometheus.NewCounter(prometheus.CounterOpts{Name: "dossier_audit_batches_total", Help: "Store writes of audit events."}),
		events:   prometheus.NewCounter(prometheus.CounterOpts{Name: "dossier_audit_events_total", Help: "Audit events stored."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "dossier_audit_failures_total", Help: "Audit batches that could not be stored."}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(t.batches, t.events, t.failures)
	}
	t.done.Add(1)
	go t.writer()
	return t
}

// Close stops the writer after storing what it holds.
func (t *Trail) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.done.Wait()
		return
	}
	t.closed = true
	t.mu.Unlock()
	close(t.stop)
	t.done.Wait()
}

// Begin notes a traced request on its way; it implements rest.Tracer.
func (t *Trail) Begin() (arrived func()) {
	t.coming.Add(1)
	return func() {
		if t.coming.Add(-1) == 0 {
			select {
			case t.wake <- struct{}{}:
			default:
			}
		}
	}
}

// Trace stores the AuditEvents of one request's touches and returns when
// they are stored (nil) or could not be (the error). It implements
// rest.Tracer.
func (t *Trail) Trace(ctx context.Context, req *access.Requester, touches []repo.Touch) error {
	if len(touches) == 0 {
		return nil
	}
	now := t.now().UTC().Truncate(time.Microsecond)
	vs := make([]*store.Version, 0, len(touches))
	for _, tc := range touches {
		v, err := t.version(req, tc, now)
		if err != nil {
			return err
		}
		vs = append(vs, v)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	var r *round
	if n := len(t.rounds); n > 0 && !t.rounds[n-1].full {
		r = t.rounds[n-1]
	} else {
		r = &round{at: time.Now(), done: make(chan struct{})}
		t.rounds = append(t.rounds, r)
	}
	r.vs = append(r.vs, vs...)
	if len(r.vs) >= t.opts.MaxBatch {
		r.full = true
	}
	t.mu.Unlock()
	select {
	case t.kick <- struct{}{}:
	default:
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if r.err != nil {
		return r.err
	}
	t.notify(ctx, req, touches)
	return nil
}

// notify tells the patient and the médecin traitant of an emergency
// access (once per session: Notify keeps that promise).
func (t *Trail) notify(ctx context.Context, req *access.Requester, touches []repo.Touch) {
	if t.opts.Notify == nil || req == nil || req.Role != access.RoleProfessional ||
		(req.Mode != access.ModeBrisDeGlace && req.Mode != access.ModeCentre15) {
		return
	}
	seen := map[string]bool{}
	for _, tc := range touches {
		if tc.Refused != 0 || tc.Patient == "" || seen[tc.Patient] {
			continue
		}
		seen[tc.Patient] = true
		_ = t.opts.Notify(ctx, req, tc.Patient) // best effort: the traces are the record of the access
	}
}

// writer is the group commit loop.
func (t *Trail) writer() {
	defer t.done.Done()
	for {
		t.mu.Lock()
		waiting := len(t.rounds) > 0
		t.mu.Unlock()
		if !waiting {
			select {
			case <-t.kick:
				continue
			case <-t.stop:
				// Nothing can be added any more (closed): store
				// what is, then stop.
				for t.writeFirst() {
				}
				return
			}
		}
		t.gather()
		t.writeFirst()
	}
}

// gather waits, while other traced requests are on their way, for their
// events to join the first round (there is one: only the writer removes
// rounds): at most MaxDelay after its first event arrived, until it is
// full, or until the last one on its way arrived.
func (t *Trail) gather() {
	if t.opts.MaxDelay < 0 {
		return
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for t.coming.Load() > 0 {
		t.mu.Lock()
		full, at := t.rounds[0].full, t.rounds[0].at
		t.mu.Unlock()
		if full {
			return
		}
		if timer == nil {
			wait := time.Until(at.Add(t.opts.MaxDelay))
			if wait <= 0 {
				return
			}
			timer = time.NewTimer(wait)
		}
		select {
		case <-t.kick: // more events: full yet?
		case <-t.wake: // the last one on its way arrived (or a stale wake-up: the loop checks)
		case <-timer.C:
			return
		case <-t.stop:
			return
		}
	}
}

// writeFirst stores the first round and wakes its requests; false when
// there was none.
func (t *Trail) writeFirst() bool {
	t.mu.Lock()
	if len(t.rounds) == 0 {
		t.mu.Unlock()
		return false
	}
	r := t.rounds[0]
	r.full = true
	t.rounds[0] = nil
	t.rounds = t.rounds[1:]
	t.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err := t.st.Append(ctx, r.vs)
	cancel()
	t.batches.Inc()
	if err != nil {
		t.failures.Inc()
	} else {
		t.events.Add(float64(len(r.vs)))
	}
	r.err = err
	close(r.done)
	return true
}

// version builds the stored AuditEvent of one touch: the event's object
// is built once and marshalled once (resourceType, id and meta first, as
// every stored resource); its search fields come from its shape's
// template (index.go).
func (t *Trail) version(req *access.Requester, tc repo.Touch, now time.Time) (*store.Version, error) {
	id := repo.NewID()
	ev := event(req, tc, now, t.source)
	meta, security := eventMeta(tc, now)
	data, err := marshalResource("AuditEvent", id, meta, ev)
	if err != nil {
		return nil, err
	}
	v := &store.Version{Type: "AuditEvent", ID: id, VersionID: 1, LastUpdated: now, Method: "POST", JSON: data, Security: security}
	if t.opts.Index != nil {
		if err := t.index(v, req, tc, now); err != nil { // index.go
			return nil, err
		}
	}
	if v.Patient == "" {
		v.Patient = tc.Patient
	}
	return v, nil
}

// eventMeta returns the meta of the AuditEvent of tc recorded at now, and
// its security labels as "system|code" (the touched data's invisibility
// label, if any).
func eventMeta(tc repo.Touch, now time.Time) (meta map[string]any, security []string) {
	meta = map[string]any{"versionId": "1", "lastUpdated": resource.Instant(now)}
	if tc.Secret != "" {
		sys, code := splitToken(tc.Secret)
		meta["security"] = []any{coding(sys, code)}
		security = []string{sys + "|" + code}
	}
	return meta, security
}

// marshalResource writes {"resourceType":typ,"id":id,"meta":meta, the
// members of body (without those three)}.
func marshalResource(typ, id string, meta, body map[string]any) ([]byte, error) {
	head, err := json.Marshal(struct {
		ResourceType string         `json:"resourceType"`
		ID           string         `json:"id"`
		Meta         map[string]any `json:"meta"`
	}{typ, id, meta})
	if err != nil {
		return nil, err
	}
	rest, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	if len(rest) <= 2 { // {}
		return head, nil
	}
	out := make([]byte, 0, len(head)+len(rest))
	out = append(out, head[:len(head)-1]...)
	out = append(out, ',')
	return append(out, rest[1:]...), nil
}

// Codes of the events.
const (
	sysEventType   = "http://terminology.hl7.org/CodeSystem/audit-event-type"
	sysInteraction = "http://hl7.org/fhir/restful-interaction"
	sysEntityType  = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
	sysObjectRole  = "http://terminology.hl7.org/CodeSystem/object-role"
	sysSourceType  = "http://terminology.hl7.org/CodeSystem/security-source-type"
	sysProfession  = "urn:oid:1.2.250.1.71.1.2.7"
	sysRole        = repo.CanonicalBase + "/CodeSystem/requester-role"
)

func coding(system, code string) map[string]any {
	return map[string]any{"system": system, "code": code}
}

// The members every event shares, built once and never changed (the
// indexer and the encoder only read them).
var (
	restType    = map[string]any{"system": sysEventType, "code": "rest", "display": "RESTful Operation"}
	systemObj   = map[string]any{"system": sysEntityType, "code": "2", "display": "System Object"}
	person      = map[string]any{"system": sysEntityType, "code": "1", "display": "Person"}
	patientRole = map[string]any{"system": sysObjectRole, "code": "1", "display": "Patient"}
)

// sourceOf builds AuditEvent.source naming this server (once, in New).
func sourceOf(name string) map[string]any {
	return map[string]any{
		"site":     name,
		"observer": map[string]any{"display": name},
		"type":     []any{map[string]any{"system": sysSourceType, "code": "4", "display": "Application Server"}},
	}
}

// event builds the members of the AuditEvent of one touch, except
// resourceType, id and meta, as the decoded JSON the search indexer reads
// (map[string]any and []any).
func event(req *access.Requester, tc repo.Touch, now time.Time, source map[string]any) map[string]any {
	action := map[string]string{"create": "C", "update": "U", "patch": "U", "delete": "D", "operation": "E"}[tc.Interaction]
	if action == "" {
		action = "R"
	}
	subtype := coding(sysInteraction, tc.Interaction)
	if tc.Operation != "" {
		subtype["display"] = tc.Operation
	}
	ev := map[string]any{
		"type":     restType,
		"subtype":  []any{subtype},
		"action":   action,
		"recorded": now.Format(time.RFC3339Nano),
		"outcome":  "0",
	}
	if tc.Refused != 0 {
		ev["outcome"] = "4"
		ev["outcomeDesc"] = "refused: " + httpStatus(tc.Refused)
	}
	if req != nil && req.Role == access.RoleProfessional {
		purpose := map[string]string{access.ModeBrisDeGlace: "BTG", access.ModeCentre15: "ETREAT"}[req.Mode]
		if purpose == "" {
			purpose = "TREAT"
		}
		ev["purposeOfEvent"] = []any{map[string]any{"coding": []any{coding(access.SysActReason, purpose)}}}
	}
	ev["agent"] = agents(req)
	ev["source"] = source
	var entities []any
	if tc.ID != "" {
		entities = append(entities, map[string]any{
			"what": map[string]any{"reference": tc.Type + "/" + tc.ID},
			"type": systemObj,
		})
	} else if tc.Type != "" {
		entities = append(entities, map[string]any{
			"name": tc.Type,
			"type": systemObj,
		})
	}
	if tc.Patient != "" && !(tc.Type == "Patient" && tc.ID == tc.Patient) {
		entities = append(entities, map[string]any{
			"what": map[string]any{"reference": "Patient/" + tc.Patient},
			"type": person,
			"role": patientRole,
		})
	} else if tc.Patient != "" {
		// The resource is the Patient: one entity, with the patient role.
		e := entities[0].(map[string]any)
		e["type"] = person
		e["role"] = patientRole
	}
	ev["entity"] = entities
	return ev
}

func agents(req *access.Requester) []any {
	if req == nil {
		return []any{map[string]any{"requestor": true, "who": map[string]any{"display": "anonymous"}}}
	}
	a := map[string]any{
		"requestor": true,
		"type":      map[string]any{"coding": []any{coding(sysRole, string(req.Role))}},
	}
	switch req.Role {
	case access.RoleProfessional:
		a["who"] = map[string]any{"identifier": map[string]any{"system": access.SysRPPS, "value": req.RPPS}}
		a["altId"] = req.RPPS
		if req.Profession != "" {
			a["role"] = []any{map[string]any{"coding": []any{coding(sysProfession, req.Profession)}}}
		}
	case access.RolePatient, access.RoleRepresentative:
		a["who"] = map[string]any{"reference": "Patient/" + req.Patient}
	case access.RoleIntegration:
		a["who"] = map[string]any{"reference": "Organization/" + req.Org}
	default:
		a["who"] = map[string]any{"display": req.Subject}
	}
	if req.Subject != "" && req.Role != access.RoleProfessional {
		a["altId"] = req.Subject
	}
	out := []any{a}
	if req.Org != "" && req.Role != access.RoleIntegration {
		out = append(out, map[string]any{"requestor": false, "who": map[string]any{"reference": "Organization/" + req.Org}})
	}
	return out
}

func splitToken(s string) (string, string) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '|' {
			return s[:i], s[i+1:]
		}
	}
	return "", s
}

func httpStatus(code int) string {
	switch code {
	case 403:
		return "403 forbidden"
	case 404:
		return "404 not found (hidden)"
	case 409:
		return "409 conflict"
	case 412:
		return "412 precondition failed"
	case 422:
		return "422 business rule"
	}
	return "status " + strconv.Itoa(code)
}
