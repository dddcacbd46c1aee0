// Package repo implements the FHIR interactions on top of a store.Store:
// read, vread, create, update, patch, delete, their conditional forms, and
// history. It is where versions are numbered, server-owned meta is set,
// no-op updates are recognised, and the access policy is called on every
// path. The REST layer and the bundle processor both use it.
//
// # Concurrency
//
// Writes are optimistic (see package store): read the current version n,
// build n+1, Put it. A Put that loses the race is retried from a fresh
// read, except when the client sent If-Match, where losing means 412.
// Conditional creates take a claim on a key derived from the criteria, so
// two concurrent conditional creates with the same criteria make one
// resource.
package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/jsonpatch"
	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/fhir/search"
	"github.com/dossier-fhir/dossier/store"
)

// Repo performs FHIR interactions.
type Repo struct {
	st     store.Store
	parser *resource.Parser
	policy access.Policy
	reg    *search.Registry
	now    func() time.Time

	profiles       ProfileValidator
	strictProfiles bool
	closedMu       sync.Mutex
	closedCache    map[string]closedEntry
}

// New builds a Repo. Every written resource is indexed for the search
// parameters of reg, and conditional criteria are searches on it.
func New(st store.Store, parser *resource.Parser, reg *search.Registry, policy access.Policy) *Repo {
	return &Repo{st: st, parser: parser, reg: reg, policy: policy, now: time.Now}
}

// Reindex recomputes the search fields of every current resource of the
// given types from its stored JSON (after search parameters were added or
// changed), without making new versions. It returns how many resources
// it updated.
func (r *Repo) Reindex(ctx context.Context, types []string, progress func(typ string, n int)) (int, error) {
	total := 0
	for _, typ := range types {
		if !resource.IsType(typ) {
			continue
		}
		vs, err := r.st.Find(ctx, store.Query{Type: typ})
		if err != nil {
			return total, storeErr(err, typ, "")
		}
		n := 0
		for _, v := range vs {
			if err := r.index(v); err != nil {
				return total, err
			}
			err := r.st.Reindex(ctx, v)
			if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrGone) {
				continue // written since: that write indexed it
			}
			if err != nil {
				return total, storeErr(err, typ, v.ID)
			}
			n++
		}
		total += n
		if progress != nil {
			progress(typ, n)
		}
	}
	return total, nil
}

// Index fills v's search fields (keys, ranges, sort values, owning
// patient, the policy's keys) from obj, the decoded form of v.JSON
// (objects as map[string]any, arrays as []any, numbers as json.Number).
// The audit trail indexes its AuditEvents with it, from the object it
// builds them from.
func (r *Repo) Index(v *store.Version, obj map[string]any) error { return r.indexObject(v, obj) }

// index fills v's search fields from its JSON.
func (r *Repo) index(v *store.Version) error {
	dec := json.NewDecoder(bytes.NewReader(v.JSON))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return outcome.Wrap(err, outcome.Internal, "exception", "indexing failed")
	}
	return r.indexObject(v, m)
}

func (r *Repo) indexObject(v *store.Version, m map[string]any) error {
	ix, err := r.reg.Index(v.Type, v.ID, m, "")
	if err != nil {
		return outcome.Wrap(err, outcome.Internal, "exception", "indexing failed")
	}
	v.Keys, v.Ranges, v.SortStr, v.SortNum, v.Patient = ix.Keys, ix.Ranges, ix.SortStr, ix.SortNum, ix.Patient
	if v.Type == "AuditEvent" {
		// A trace belongs to the record it concerns: the entity in the
		// patient role. The indexer's owner is the first Patient of the
		// "patient" parameter, the agent when the requester is a patient,
		// which put a patient's attempt on another record in his own
		// trail (naming that record) and out of the record's.
		if p := auditedPatient(m); p != "" {
			v.Patient = p
		}
	}
	setAccessKeys(v)
	return nil
}

// auditedPatient returns the id of an AuditEvent's entity in the patient
// role (object-role 1), "" when none.
func auditedPatient(m map[string]any) string {
	ents, _ := m["entity"].([]any)
	for _, e := range ents {
		ent, _ := e.(map[string]any)
		role, _ := ent["role"].(map[string]any)
		what, _ := ent["what"].(map[string]any)
		ref, _ := what["reference"].(string)
		if role["system"] != "http://terminology.hl7.org/CodeSystem/object-role" || role["code"] != "1" {
			continue
		}
		if id, ok := strings.CutPrefix(ref, "Patient/"); ok && id != "" && !strings.Contains(id, "/") {
			return id
		}
	}
	return ""
}

// Registry returns the search registry.
func (r *Repo) Registry() *search.Registry { return r.reg }

// Result is the outcome of a write.
type Result struct {
	Version *store.Version
	Created bool // a new resource (201)
	NoOp    bool // nothing changed: the update was identical, or the delete found nothing
	// Also are versions of other resources the write implies (a replaced
	// document becoming superseded), committed atomically with Version.
	Also []*store.Version
}

// Versions returns what committing the result stores.
func (res Result) Versions() []*store.Version {
	if res.NoOp {
		return nil
	}
	return append([]*store.Version{res.Version}, res.Also...)
}

// store stores a planned result: one version is a Put, more a Commit.
func (r *Repo) store(ctx context.Context, res Result) error {
	var err error
	if len(res.Also) == 0 {
		err = r.st.Put(ctx, res.Version)
	} else {
		err = r.st.Commit(ctx, res.Versions())
	}
	if err == nil {
		r.changed(res.Versions())
		touchWrites(ctx, res.Versions())
	}
	return err
}

const maxAttempts = 20

// storeErr converts store errors to FHIR errors.
func storeErr(err error, typ, id string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return outcome.Wrap(err, outcome.NotFound, "not-found", "%s/%s is not known", typ, id)
	case errors.Is(err, store.ErrGone):
		return outcome.Wrap(err, outcome.Gone, "deleted", "%s/%s has been deleted", typ, id)
	case errors.Is(err, store.ErrPreconditionFailed), errors.Is(err, store.ErrConflict):
		return outcome.Wrap(err, outcome.Conflict, "conflict", "concurrent write on %s/%s", typ, id)
	}
	return outcome.Wrap(err, outcome.Unavailable, "transient", "the store is unavailable")
}

// writable refuses writes to what only the server writes: the traces
// (AuditEvents, stored by the audit trail as write-once records).
func writable(typ string) error {
	if typ == "AuditEvent" {
		return outcome.New(outcome.Forbidden, "forbidden", "traces (AuditEvent) are written by the server only")
	}
	return nil
}

func notFound(typ, id string) error {
	return outcome.New(outcome.NotFound, "not-found", "%s/%s is not known", typ, id)
}

func checkType(typ string) error {
	if !resource.IsType(typ) {
		return outcome.New(outcome.NotFound, "not-supported", "unknown resource type %q", typ)
	}
	return nil
}

func checkID(typ, id string) error {
	if err := checkType(typ); err != nil {
		return err
	}
	if !resource.ValidID(id) {
		return outcome.New(outcome.NotFound, "not-found", "%s/%s is not known", typ, "(invalid id)")
	}
	return nil
}

// Read returns the current version. A version the requester may not see
// is reported exactly like a missing one.
func (r *Repo) Read(ctx context.Context, req *access.Requester, typ, id string) (*store.Version, error) {
	if err := checkID(typ, id); err != nil {
		return nil, err
	}
	if err := r.policy.Allow(req, access.Read, typ); err != nil {
		return nil, err
	}
	sc, err := r.scope(ctx, req)
	if err != nil {
		return nil, err
	}
	v, err := r.st.Read(ctx, typ, id)
	if v != nil {
		w, verr := r.shown(ctx, sc, v)
		if verr != nil {
			return nil, verr
		}
		if w == nil {
			touchRefused(ctx, "read", v, 404)
			return nil, notFound(typ, id)
		}
		touchVersions(ctx, "read", "", []*store.Version{v}, true)
		v = w
	}
	if err != nil {
		return v, storeErr(err, typ, id)
	}
	return v, nil
}

// VRead returns one version; a delete marker is returned with a Gone error.
func (r *Repo) VRead(ctx context.Context, req *access.Requester, typ, id string, vid int64) (*store.Version, error) {
	if err := checkID(typ, id); err != nil {
		return nil, err
	}
	if err := r.policy.Allow(req, access.VRead, typ); err != nil {
		return nil, err
	}
	if vid < 1 {
		return nil, outcome.New(outcome.NotFound, "not-found", "%s/%s has no such version", typ, id)
	}
	sc, err := r.scope(ctx, req)
	if err != nil {
		return nil, err
	}
	v, err := r.st.VRead(ctx, typ, id, vid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, outcome.New(outcome.NotFound, "not-found", "%s/%s has no version %d", typ, id, vid)
	}
	if err != nil {
		return nil, storeErr(err, typ, id)
	}
	ok, err := r.visibleVersion(ctx, sc, v, nil)
	if err != nil {
		return nil, err
	}
	w := v
	if ok {
		w = sc.View(v)
	}
	if w == nil || !ok {
		touchRefused(ctx, "vread", v, 404)
		return nil, outcome.New(outcome.NotFound, "not-found", "%s/%s has no version %d", typ, id, vid)
	}
	touchVersions(ctx, "vread", "", []*store.Version{v}, true)
	if w.Deleted {
		return w, outcome.New(outcome.Gone, "deleted", "version %d of %s/%s is a deletion", vid, typ, id)
	}
	return w, nil
}

// NewID returns a server-assigned logical id (a random UUID).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// parseFor parses body and checks its type against the URL's.
func (r *Repo) parseFor(typ string, body []byte) (*resource.Parsed, error) {
	p, err := r.parser.Parse(body)
	if err != nil {
		return nil, err
	}
	if p.Type != typ {
		return nil, outcome.New(outcome.Invalid, "invalid",
			"the body is a %s but the URL names %s", p.Type, typ).WithExpression("resourceType")
	}
	return p, nil
}

// Validate parses and validates body as a resource of type typ.
func (r *Repo) Validate(typ string, body []byte) (*resource.Parsed, error) {
	if err := checkType(typ); err != nil {
		return nil, err
	}
	return r.parseFor(typ, body)
}

// build turns a parsed resource into version vid.
func (r *Repo) build(req *access.Requester, p *resource.Parsed, id string, vid int64, method string, prev *store.Version) (*store.Version, error) {
	ts := r.now().UTC().Truncate(time.Microsecond)
	if prev != nil && !ts.After(prev.LastUpdated) {
		ts = prev.LastUpdated.Add(time.Microsecond)
	}
	data, err := resource.WithMeta(p.Object, p.Type, id, vid, ts)
	if err != nil {
		return nil, outcome.Wrap(err, outcome.Invalid, "structure", "meta is not valid: %v", err)
	}
	// The content hash serves to recognise no-op updates; a create's is
	// computed lazily, the first time an update compares with it.
	var hash string
	if method != "POST" {
		if hash, err = resource.ContentHash(data); err != nil {
			return nil, outcome.Wrap(err, outcome.Internal, "exception", "hashing failed")
		}
	}
	v := &store.Version{
		Type: p.Type, ID: id, VersionID: vid, LastUpdated: ts, Method: method, JSON: data, Hash: hash,
	}
	if req != nil {
		v.Org = req.Org
		v.Author = req.Subject
	}
	if v.Org == "" && prev != nil {
		v.Org = prev.Org // a professional's change keeps the engine's organization
	}
	// The search index gives the keys and the owning patient.
	v.Security = resource.SecurityLabels(p.Object)
	if err := r.index(v); err != nil {
		return nil, err
	}
	return v, nil
}

// Create stores body as a new resource with a server-assigned id (any id
// in the body is ignored, as the spec says for create). ifNoneExist, when
// not empty, makes it a conditional create.
func (r *Repo) Create(ctx context.Context, req *access.Requester, typ string, body []byte, ifNoneExist string) (Result, error) {
	if err := checkType(typ); err != nil {
		return Result{}, err
	}
	if err := r.policy.Allow(req, access.Create, typ); err != nil {
		return Result{}, err
	}
	p, err := r.parseFor(typ, body)
	if err != nil {
		return Result{}, err
	}
	if ifNoneExist == "" {
		return r.createNew(ctx, req, p, NewID())
	}
	crit, err := r.Criteria(ctx, req, typ, ifNoneExist)
	if err != nil {
		return Result{}, err
	}
	return r.createOnce(ctx, req, crit, func() (Result, error) { return r.createNew(ctx, req, p, NewID()) })
}

func (r *Repo) createNew(ctx context.Context, req *access.Requester, p *resource.Parsed, id string) (Result, error) {
	ctx, pend := WithPending(ctx)
	res, err := r.PlanCreate(ctx, req, p, id)
	if err != nil {
		pend.Undo()
		return Result{}, err
	}
	if err := r.store(ctx, res); err != nil {
		pend.Undo()
		return Result{}, storeErr(err, p.Type, id)
	}
	return res, nil
}

// createOnce runs create unless a resource matches crit (the existing
// one is returned, NoOp); concurrent callers with the same criteria
// serialise on a claim.
func (r *Repo) createOnce(ctx context.Context, req *access.Requester, crit Criteria, create func() (Result, error)) (Result, error) {
	return r.conditionally(ctx, req, crit,
		func(match *store.Version) (Result, error) { return Result{Version: match, NoOp: true}, nil }, create)
}

// conditionally is the loop of the conditional writes: one match → onMatch;
// several → 412; none → onNone under the criteria's claim. A request that
// finds the claim taken waits for the holder's resource to appear and then
// sees it as the one match.
func (r *Repo) conditionally(ctx context.Context, req *access.Requester, crit Criteria,
	onMatch func(*store.Version) (Result, error), onNone func() (Result, error)) (Result, error) {
	key := crit.claimKey()
	for attempt := 0; attempt < 200; attempt++ {
		matches, err := r.find(ctx, req, crit, 2)
		if err != nil {
			return Result{}, err
		}
		switch len(matches) {
		case 1:
			return onMatch(matches[0])
		case 2:
			return Result{}, outcome.New(outcome.PreconditionFailed, "multiple-matches",
				"the conditional criteria match more than one resource")
		}
		res, err := r.claimAndRun(ctx, req, key, crit, onNone)
		if errors.Is(err, errRetry) {
			select {
			case <-ctx.Done():
				return Result{}, outcome.Wrap(ctx.Err(), outcome.Unavailable, "timeout", "timed out")
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		return res, err
	}
	return Result{}, outcome.New(outcome.Conflict, "conflict", "too many concurrent conditional writes")
}

var errRetry = errors.New("retry")

func (r *Repo) claimAndRun(ctx context.Context, req *access.Requester, key string, crit Criteria, create func() (Result, error)) (Result, error) {
	mine := NewID() + "|" + r.now().UTC().Format(time.RFC3339Nano)
	holder, err := r.st.Claim(ctx, key, mine)
	if errors.Is(err, store.ErrConflict) {
		return Result{}, errRetry // the key kept changing hands: try again
	}
	if err != nil {
		return Result{}, storeErr(err, crit.Type, "")
	}
	if holder != "" {
		// Someone else holds the key: wait for their resource to appear
		// (the next find returns it), or take over a claim whose holder
		// died (older than 30 s).
		_, at, _ := strings.Cut(holder, "|")
		if t, perr := time.Parse(time.RFC3339Nano, at); perr != nil || r.now().Sub(t) > 30*time.Second {
			_ = r.st.Release(ctx, key, holder)
		}
		return Result{}, errRetry
	}
	defer func() { _ = r.st.Release(context.WithoutCancel(ctx), key, mine) }()
	// Re-check under the claim: the previous holder may have created the
	// resource and released just before we claimed. Same visibility as
	// the caller's own search: matches always go through the policy.
	matches, err := r.find(ctx, req, crit, 1)
	if err != nil {
		return Result{}, err
	}
	if len(matches) > 0 {
		return Result{}, errRetry
	}
	return create()
}

// Update replaces typ/id with body (creating it when absent: update as
// create with a client id). ifMatch, when not nil, is the version the
// client expects to replace.
func (r *Repo) Update(ctx context.Context, req *access.Requester, typ, id string, body []byte, ifMatch *int64) (Result, error) {
	if err := checkType(typ); err != nil {
		return Result{}, err
	}
	if !resource.ValidID(id) {
		return Result{}, outcome.New(outcome.Invalid, "value", "the id in the URL is not a valid FHIR id")
	}
	if err := r.policy.Allow(req, access.Update, typ); err != nil {
		return Result{}, err
	}
	p, err := r.parseFor(typ, body)
	if err != nil {
		return Result{}, err
	}
	if p.ID == "" {
		return Result{}, outcome.New(outcome.Invalid, "required", "the resource has no id (update needs the id in the body)").WithExpression(typ + ".id")
	}
	if p.ID != id {
		return Result{}, outcome.New(outcome.Invalid, "invalid", "the id in the body does not match the id in the URL").WithExpression(typ + ".id")
	}
	return r.write(ctx, req, typ, id, ifMatch, "PUT", func(*store.Version) (*resource.Parsed, error) { return p, nil })
}

// write is the write of update and patch. next builds the new content
// from the current version (nil when absent).
func (r *Repo) write(ctx context.Context, req *access.Requester, typ, id string, ifMatch *int64, method string,
	next func(cur *store.Version) (*resource.Parsed, error)) (Result, error) {
	return r.retry(ctx, typ, id, ifMatch, func(ctx context.Context) (Result, error) {
		return r.PlanWrite(ctx, req, typ, id, ifMatch, method, next)
	})
}

// retry is the optimistic write loop of every single write (update,
// patch, delete, raw Binary): plan from a fresh read, store; when another
// writer got there first, plan again, or answer 412 when the client sent
// If-Match. What a plan claimed is given back when it is not stored.
func (r *Repo) retry(ctx context.Context, typ, id string, ifMatch *int64, plan func(ctx context.Context) (Result, error)) (Result, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		ctx, pend := WithPending(ctx)
		res, err := plan(ctx)
		if err != nil || res.NoOp {
			pend.Undo()
			return res, err
		}
		err = r.store(ctx, res)
		if err != nil {
			pend.Undo()
		}
		if errors.Is(err, store.ErrConflict) {
			if ifMatch != nil {
				return Result{}, outcome.New(outcome.PreconditionFailed, "conflict",
					"%s/%s was changed by another request", typ, id)
			}
			continue
		}
		if err != nil {
			return Result{}, storeErr(err, typ, id)
		}
		return res, nil
	}
	return Result{}, outcome.New(outcome.Conflict, "conflict", "too many concurrent writes on %s/%s", typ, id)
}

// PlanWrite reads the current version of typ/id and builds the next one
// from next, without storing it. A Result with NoOp holds the current
// version (the content is unchanged). Bundles commit planned versions
// together; single writes Put them.
func (r *Repo) PlanWrite(ctx context.Context, req *access.Requester, typ, id string, ifMatch *int64, method string,
	next func(cur *store.Version) (*resource.Parsed, error)) (Result, error) {
	if err := writable(typ); err != nil {
		return Result{}, err
	}
	sc, err := r.scope(ctx, req)
	if err != nil {
		return Result{}, err
	}
	cur, err := r.st.Read(ctx, typ, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrGone) {
		return Result{}, storeErr(err, typ, id)
	}
	if cur != nil {
		if ok, err := r.visible(ctx, sc, cur); err != nil {
			return Result{}, err
		} else if !ok {
			touchRefused(ctx, strings.ToLower(method), cur, 404)
			return Result{}, notFound(typ, id)
		}
	}
	live := cur != nil && !cur.Deleted
	if ifMatch != nil && (!live || cur.VersionID != *ifMatch) {
		return Result{}, outcome.New(outcome.PreconditionFailed, "conflict",
			"If-Match does not match the current version of %s/%s", typ, id)
	}
	if method == "PATCH" && !live {
		if cur == nil {
			return Result{}, notFound(typ, id)
		}
		return Result{}, storeErr(store.ErrGone, typ, id)
	}
	p, err := next(cur)
	if err != nil {
		return Result{}, err
	}
	if err := r.prepare(ctx, req, p); err != nil {
		return Result{}, err
	}
	vid := int64(1)
	if cur != nil {
		vid = cur.VersionID + 1
	}
	v, err := r.build(req, p, id, vid, method, cur)
	if err != nil {
		return Result{}, err
	}
	if live {
		curHash := cur.Hash
		if curHash == "" {
			curHash, _ = resource.ContentHash(cur.JSON)
		}
		if v.Hash == "" {
			v.Hash, _ = resource.ContentHash(v.JSON)
		}
		if v.Hash == curHash {
			return Result{Version: cur, NoOp: true}, nil
		}
	}
	act := access.Update
	if method == "PATCH" {
		act = access.Patch
	}
	if !live {
		act = access.Create
	}
	if err := r.canWrite(ctx, sc, act, v, cur); err != nil {
		touchRefused(ctx, string(act), v, 403)
		return Result{}, err
	}
	also, err := r.afterBuild(ctx, req, v, cur)
	if err != nil {
		touchRefused(ctx, string(act), v, outcome.KindOf(err).HTTPStatus())
		return Result{}, err
	}
	res := Result{Version: v, Created: !live, Also: also}
	pendingOf(ctx).add(res.Versions()...)
	return res, nil
}

// PlanCreate builds version 1 of a new resource with the given id.
func (r *Repo) PlanCreate(ctx context.Context, req *access.Requester, p *resource.Parsed, id string) (Result, error) {
	if err := writable(p.Type); err != nil {
		return Result{}, err
	}
	sc, err := r.scope(ctx, req)
	if err != nil {
		return Result{}, err
	}
	if err := r.prepare(ctx, req, p); err != nil {
		return Result{}, err
	}
	v, err := r.build(req, p, id, 1, "POST", nil)
	if err != nil {
		return Result{}, err
	}
	if err := r.canWrite(ctx, sc, access.Create, v, nil); err != nil {
		touchRefused(ctx, "create", v, 403)
		return Result{}, err
	}
	also, err := r.afterBuild(ctx, req, v, nil)
	if err != nil {
		touchRefused(ctx, "create", v, outcome.KindOf(err).HTTPStatus())
		return Result{}, err
	}
	res := Result{Version: v, Created: true, Also: also}
	pendingOf(ctx).add(res.Versions()...)
	return res, nil
}

// PlanDelete builds the delete marker of typ/id; NoOp when there is
// nothing to delete.
func (r *Repo) PlanDelete(ctx context.Context, req *access.Requester, typ, id string, ifMatch *int64) (Result, error) {
	if err := writable(typ); err != nil {
		return Result{}, err
	}
	sc, err := r.scope(ctx, req)
	if err != nil {
		return Result{}, err
	}
	cur, err := r.st.Read(ctx, typ, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrGone) {
		return Result{}, storeErr(err, typ, id)
	}
	if cur != nil {
		if ok, err := r.visible(ctx, sc, cur); err != nil {
			return Result{}, err
		} else if !ok {
			touchRefused(ctx, "delete", cur, 404)
			cur = nil // hidden: behaves as absent
		}
	}
	if cur == nil {
		return Result{}, notFound(typ, id)
	}
	live := !cur.Deleted
	if ifMatch != nil && (!live || cur.VersionID != *ifMatch) {
		return Result{}, outcome.New(outcome.PreconditionFailed, "conflict",
			"If-Match does not match the current version of %s/%s", typ, id)
	}
	if !live {
		return Result{Version: cur, NoOp: true}, nil
	}
	ts := r.now().UTC().Truncate(time.Microsecond)
	if !ts.After(cur.LastUpdated) {
		ts = cur.LastUpdated.Add(time.Microsecond)
	}
	// The marker keeps the fields secrecy decides on, so that it is seen
	// by whoever saw the resource.
	v := &store.Version{
		Type: typ, ID: id, VersionID: cur.VersionID + 1, LastUpdated: ts, Deleted: true, Method: "DELETE",
		Patient: cur.Patient, Security: cur.Security, Org: cur.Org, Keys: cur.Keys,
	}
	if req != nil {
		v.Author = req.Subject
		if req.Org != "" {
			v.Org = req.Org
		}
	}
	setAccessKeys(v)
	if err := r.canWrite(ctx, sc, access.Delete, v, cur); err != nil {
		touchRefused(ctx, "delete", cur, 403)
		return Result{}, err
	}
	if _, err := r.afterBuild(ctx, req, v, cur); err != nil {
		touchRefused(ctx, "delete", cur, outcome.KindOf(err).HTTPStatus())
		return Result{}, err
	}
	pendingOf(ctx).add(v)
	return Result{Version: v}, nil
}

// Commit stores planned versions atomically.
func (r *Repo) Commit(ctx context.Context, vs []*store.Version) error {
	if err := r.st.Commit(ctx, vs); err != nil {
		return storeErr(err, "", "")
	}
	r.changed(vs)
	touchWrites(ctx, vs)
	return nil
}

// Policy returns the access policy (bundles check each entry with it).
func (r *Repo) Policy() access.Policy { return r.policy }

// Parser returns the resource parser.
func (r *Repo) Parser() *resource.Parser { return r.parser }

// Find returns current resources matching crit that req may see, at most
// limit (0: all).
func (r *Repo) Find(ctx context.Context, req *access.Requester, crit Criteria, limit int) ([]*store.Version, error) {
	return r.find(ctx, req, crit, limit)
}

// ConditionalUpdate updates the one resource matching criteria, creates
// one when none matches, and fails with 412 when several match.
func (r *Repo) ConditionalUpdate(ctx context.Context, req *access.Requester, typ, criteria string, body []byte, ifMatch *int64) (Result, error) {
	if err := checkType(typ); err != nil {
		return Result{}, err
	}
	if err := r.policy.Allow(req, access.Update, typ); err != nil {
		return Result{}, err
	}
	crit, err := r.Criteria(ctx, req, typ, criteria)
	if err != nil {
		return Result{}, err
	}
	p, err := r.parseFor(typ, body)
	if err != nil {
		return Result{}, err
	}
	// R4: one match is updated, none creates. Concurrent requests with no
	// prior match: one creates, the others then update what it created.
	put := func(id string) (Result, error) {
		return r.write(ctx, req, typ, id, ifMatch, "PUT", func(*store.Version) (*resource.Parsed, error) { return p, nil })
	}
	return r.conditionally(ctx, req, crit, func(match *store.Version) (Result, error) {
		if p.ID != "" && p.ID != match.ID {
			return Result{}, outcome.New(outcome.Invalid, "invalid",
				"the id in the body does not match the resource the criteria select").WithExpression(typ + ".id")
		}
		return put(match.ID)
	}, func() (Result, error) {
		id := p.ID
		if id == "" {
			id = NewID()
		}
		return put(id)
	})
}

// Patch applies a JSON Patch to the current version; the result is
// validated like any update.
func (r *Repo) Patch(ctx context.Context, req *access.Requester, typ, id string, patch []byte, ifMatch *int64) (Result, error) {
	if err := checkID(typ, id); err != nil {
		return Result{}, err
	}
	if err := r.policy.Allow(req, access.Patch, typ); err != nil {
		return Result{}, err
	}
	return r.write(ctx, req, typ, id, ifMatch, "PATCH", r.PatchContent(typ, id, patch))
}

// PatchContent returns the content function of a JSON Patch write: the
// patch applied to the current version, validated again.
func (r *Repo) PatchContent(typ, id string, patch []byte) func(cur *store.Version) (*resource.Parsed, error) {
	return func(cur *store.Version) (*resource.Parsed, error) {
		if cur.Blob != nil {
			return nil, outcome.New(outcome.Invalid, "not-supported",
				"the content of this Binary was uploaded raw: replace it with PUT, it cannot be patched")
		}
		out, err := jsonpatch.Apply(cur.JSON, patch)
		if err != nil {
			return nil, outcome.Wrap(err, outcome.Invalid, "processing", "the JSON Patch cannot be applied: %v", err)
		}
		p, err := r.parser.Parse(out)
		if err != nil {
			var oe *outcome.Error
			if errors.As(err, &oe) {
				oe.Issues = append([]outcome.Issue{{Severity: "error", Code: "processing",
					Diagnostics: "the patched resource is not valid"}}, oe.Issues...)
			}
			return nil, err
		}
		if p.Type != typ || p.ID != id {
			return nil, outcome.New(outcome.Invalid, "processing", "a patch may not change resourceType or id")
		}
		return p, nil
	}
}

// Delete deletes typ/id logically: a delete marker becomes the current
// version. Deleting a missing or already deleted resource is a no-op.
func (r *Repo) Delete(ctx context.Context, req *access.Requester, typ, id string, ifMatch *int64) (Result, error) {
	if err := checkID(typ, id); err != nil {
		return Result{}, err
	}
	if err := r.policy.Allow(req, access.Delete, typ); err != nil {
		return Result{}, err
	}
	return r.retry(ctx, typ, id, ifMatch, func(ctx context.Context) (Result, error) {
		return r.PlanDelete(ctx, req, typ, id, ifMatch)
	})
}

// ConditionalDelete deletes the one resource matching criteria: none is a
// no-op, several is 412.
func (r *Repo) ConditionalDelete(ctx context.Context, req *access.Requester, typ, criteria string) (Result, error) {
	if err := checkType(typ); err != nil {
		return Result{}, err
	}
	if err := r.policy.Allow(req, access.Delete, typ); err != nil {
		return Result{}, err
	}
	crit, err := r.Criteria(ctx, req, typ, criteria)
	if err != nil {
		return Result{}, err
	}
	matches, err := r.find(ctx, req, crit, 2)
	if err != nil {
		return Result{}, err
	}
	switch len(matches) {
	case 0:
		return Result{NoOp: true}, nil
	case 1:
		return r.Delete(ctx, req, typ, matches[0].ID, nil)
	}
	return Result{}, outcome.New(outcome.PreconditionFailed, "multiple-matches",
		"the conditional criteria match more than one resource")
}

// History lists versions newest first.
func (r *Repo) History(ctx context.Context, req *access.Requester, q store.HistoryQuery) ([]*store.Version, error) {
	if q.Type != "" {
		if err := checkType(q.Type); err != nil {
			return nil, err
		}
	}
	if err := r.policy.Allow(req, access.History, q.Type); err != nil {
		return nil, err
	}
	if q.ID != "" && !resource.ValidID(q.ID) {
		return nil, notFound(q.Type, "(invalid id)")
	}
	sc, err := r.scope(ctx, req)
	if err != nil {
		return nil, err
	}
	if q.ID != "" {
		cur, err := r.st.Read(ctx, q.Type, q.ID)
		if cur == nil {
			if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrGone) {
				return nil, notFound(q.Type, q.ID)
			}
			return nil, storeErr(err, q.Type, q.ID)
		}
		if ok, err := r.visible(ctx, sc, cur); err != nil {
			return nil, err
		} else if !ok {
			return nil, notFound(q.Type, q.ID)
		}
	}
	// Each version is judged on its own labels, owner and keys; hidden
	// ones are skipped and the next versions fetched until the page is
	// full.
	var out []*store.Version
	currents := map[string]*store.Version{}
	for {
		vs, err := r.st.History(ctx, q)
		if err != nil {
			return nil, storeErr(err, q.Type, q.ID)
		}
		var last *store.Version
		if len(vs) > 0 {
			last = vs[len(vs)-1]
		}
		vis, err := r.visibleVersions(ctx, sc, vs, currents)
		if err != nil {
			return nil, err
		}
		out = append(out, vis...)
		if q.Limit <= 0 || len(out) >= q.Limit || len(vs) < q.Limit || last == nil {
			break
		}
		q.Before = &store.Cursor{LastUpdated: last.LastUpdated, Type: last.Type, ID: last.ID, VersionID: last.VersionID}
	}
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	switch {
	case q.ID != "":
		touchVersions(ctx, "history-instance", "", out, true)
	case q.Type != "":
		touchVersions(ctx, "history-type", "", out, false)
	default:
		touchVersions(ctx, "history-system", "", out, false)
	}
	return out, nil
}

// CountHistory counts the versions a history query selects.
func (r *Repo) CountHistory(ctx context.Context, req *access.Requester, q store.HistoryQuery) (int64, error) {
	if err := r.policy.Allow(req, access.History, q.Type); err != nil {
		return 0, err
	}
	sc, err := r.scope(ctx, req)
	if err != nil {
		return 0, err
	}
	if !sc.Everything() {
		return -1, nil // the store counts versions, not what this requester sees
	}
	n, err := r.st.CountHistory(ctx, q)
	if err != nil {
		return 0, storeErr(err, q.Type, q.ID)
	}
	return n, nil
}

// Search returns the current resources matching criteria (parsed by
// Criteria: strict, no result parameters), at most limit (0: all). Bundle
// GET entries use it; the HTTP search API uses CompileSearch/SearchPage.
func (r *Repo) Search(ctx context.Context, req *access.Requester, typ string, crit Criteria, limit int) ([]*store.Version, error) {
	if err := checkType(typ); err != nil {
		return nil, err
	}
	if err := r.policy.Allow(req, access.Search, typ); err != nil {
		return nil, err
	}
	vs, err := r.find(ctx, req, crit, limit)
	touchVersions(ctx, "search-type", "", vs, false)
	return vs, err
}

func (r *Repo) find(ctx context.Context, req *access.Requester, crit Criteria, limit int) ([]*store.Version, error) {
	sc, err := r.scope(ctx, req)
	if err != nil {
		return nil, err
	}
	q := crit.query()
	q.Filter = store.Restrict(q.Filter, sc.Filter(q.Type))
	q.Limit = limit
	vs, err := r.st.Find(ctx, q)
	if err != nil {
		return nil, storeErr(err, crit.Type, "")
	}
	return r.views(sc, vs), nil
}

// Criteria are parsed search criteria.
type Criteria struct {
	Type   string
	Filter store.Filter // the compiled criteria
	key    string       // canonical form (sorted query string), for claims
}

func (c Criteria) claimKey() string {
	sum := sha256.Sum256([]byte(c.Type + "?" + c.key))
	return "cond:" + hex.EncodeToString(sum[:])
}

func (c Criteria) query() store.Query {
	return store.Query{Type: c.Type, Filter: c.Filter}
}

// Criteria parses conditional criteria (If-None-Exist, conditional
// update and delete, conditional references): any search parameter
// works, strictly: an unknown parameter is an error, never ignored (a
// conditional write must not ignore a criterion).
func (r *Repo) Criteria(ctx context.Context, req *access.Requester, typ, query string) (Criteria, error) {
	query = strings.TrimPrefix(query, "?")
	if i := strings.Index(query, "?"); i >= 0 && !strings.Contains(query[:i], "=") {
		if query[:i] != typ {
			return Criteria{}, outcome.New(outcome.Invalid, "invalid", "the criteria name another resource type")
		}
		query = query[i+1:]
	}
	vals, err := url.ParseQuery(query)
	if err != nil {
		return Criteria{}, outcome.New(outcome.Invalid, "invalid", "the criteria are not a valid query string")
	}
	for k := range vals {
		switch k {
		case "_format", "_pretty":
			delete(vals, k)
		case "_sort", "_count", "_include", "_revinclude", "_summary", "_elements", "_total", "_page":
			return Criteria{}, outcome.New(outcome.Invalid, "invalid", "conditional criteria cannot use %s", k)
		}
	}
	if len(vals) == 0 {
		return Criteria{}, outcome.New(outcome.Invalid, "invalid", "conditional criteria are empty")
	}
	plan, err := r.reg.Compile(ctx, typ, vals, "", true, r.finder(req))
	if err != nil {
		return Criteria{}, err
	}
	return Criteria{Type: typ, Filter: plan.Filter, key: vals.Encode()}, nil
}

// finder runs sub-queries of a search (chains, _has, includes) with the
// requester's visibility in the query: a hidden resource never decides
// what matches.
func (r *Repo) finder(req *access.Requester) search.Finder {
	return func(ctx context.Context, q store.Query) ([]*store.Version, error) {
		sc, err := r.scope(ctx, req)
		if err != nil {
			return nil, err
		}
		q.Filter = store.Restrict(q.Filter, sc.Filter(q.Type))
		vs, err := r.st.Find(ctx, q)
		if err != nil {
			return nil, storeErr(err, q.Type, "")
		}
		return r.views(sc, vs), nil
	}
}

// CompileSearch compiles a search of typ for req.
func (r *Repo) CompileSearch(ctx context.Context, req *access.Requester, typ string, params url.Values, base string, strict bool) (*search.Plan, error) {
	if err := checkType(typ); err != nil {
		return nil, err
	}
	if err := r.policy.Allow(req, access.Search, typ); err != nil {
		return nil, err
	}
	return r.reg.Compile(ctx, typ, params, base, strict, r.finder(req))
}

// SearchPage runs one page of a compiled search and counts all matches;
// the requester's visibility is part of the store query, so hidden
// resources neither match, count nor sort.
func (r *Repo) SearchPage(ctx context.Context, req *access.Requester, q store.Query) ([]*store.Version, int64, error) {
	sc, err := r.scope(ctx, req)
	if err != nil {
		return nil, 0, err
	}
	q.Filter = store.Restrict(q.Filter, sc.Filter(q.Type))
	vs, total, err := r.st.Search(ctx, q)
	if err != nil {
		return nil, 0, storeErr(err, q.Type, "")
	}
	vs = r.views(sc, vs)
	touchVersions(ctx, "search-type", "", vs, false)
	return vs, total, nil
}

// CountSearch counts the matches of a compiled search (_summary=count),
// with the requester's visibility in the query.
func (r *Repo) CountSearch(ctx context.Context, req *access.Requester, q store.Query) (int64, error) {
	sc, err := r.scope(ctx, req)
	if err != nil {
		return 0, err
	}
	q.Filter = store.Restrict(q.Filter, sc.Filter(q.Type))
	n, err := r.st.Count(ctx, q)
	if err != nil {
		return 0, storeErr(err, q.Type, "")
	}
	return n, nil
}

// Includes returns what the plan's _include and _revinclude add (through
// the finder: visible resources only).
func (r *Repo) Includes(ctx context.Context, req *access.Requester, plan *search.Plan, matches []*store.Version) ([]*store.Version, error) {
	if len(plan.Include) == 0 && len(plan.RevInclude) == 0 {
		return nil, nil
	}
	vs, err := r.reg.Includes(ctx, plan, matches, r.finder(req))
	touchVersions(ctx, "search-type", "", vs, false)
	return vs, err
}

// String is for debugging only (criteria may name patients: never log).
func (c Criteria) String() string { return c.Type + "?(criteria)" }
