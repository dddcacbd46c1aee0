package repo

// The personal record's rules, applied on every write (single requests and
// bundle entries alike), in this order:
//
//  1. content rules, which may complete the resource: a DocumentReference's
//     attachments get their size and SHA-1 hash computed when absent and
//     checked when present (400 on a mismatch); the record-closure
//     extension of a Patient is server-owned (only $close/$reopen set it);
//  2. profile validation (422 with every issue) against the StructureDefinitions
//     the resource claims in meta.profile, and with strict profiles against
//     the record's default profiles;
//  3. record rules on the built version: no write lands in a closed record
//     (422), one Patient per INS (409, with claims so that concurrent
//     creates make one record), and a DocumentReference that replaces
//     another marks it superseded in the same atomic commit.

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/store"
)

// Canonical URLs of Dossier's own definitions.
const (
	CanonicalBase = "https://dossier-fhir.github.io/fhir"
	// ExtRecordClosure marks a closed record on its Patient: sub-extensions
	// "closed" (when) and "retainUntil" (closure + 10 years, L1111-18).
	ExtRecordClosure = CanonicalBase + "/StructureDefinition/record-closure"
)

// RetentionAfterClosure is how long a closed record is kept (CSP L1111-18).
const RetentionAfterClosure = 10

// INSSystems are the identifier systems of the INS (qualified NIR, NIA,
// test and demo NIR): a Patient holds a record's INS, one record per INS.
var INSSystems = []string{
	"urn:oid:1.2.250.1.213.1.4.8",
	"urn:oid:1.2.250.1.213.1.4.9",
	"urn:oid:1.2.250.1.213.1.4.10",
	"urn:oid:1.2.250.1.213.1.4.11",
}

// ProfileValidator checks resources against StructureDefinitions.
type ProfileValidator interface {
	// Validate returns every issue of the resource against the profiles
	// it claims (and with strict, the default profiles of its type).
	Validate(typ string, resourceJSON []byte, strict bool) []outcome.Issue
	// Has reports whether url (with or without |version) names a profile
	// the validator checks.
	Has(url string) bool
}

// UseProfiles makes every write validate against v's profiles; strict
// applies the record's default profiles to resources that claim none.
func (r *Repo) UseProfiles(v ProfileValidator, strict bool) {
	r.profiles, r.strictProfiles = v, strict
}

// ValidateProfiles returns the profile issues of p (for $validate).
func (r *Repo) ValidateProfiles(ctx context.Context, req *access.Requester, p *resource.Parsed) ([]outcome.Issue, error) {
	obj, err := r.completeContent(ctx, req, p)
	if err != nil {
		return nil, err
	}
	if r.profiles == nil {
		return nil, nil
	}
	return r.profiles.Validate(p.Type, obj.Marshal(), r.strictProfiles), nil
}

// ---- the plan of a write: what earlier entries planned, what to undo ----

// Pending is what one write plan (a request, or a whole bundle) holds
// besides its versions: the versions planned so far, which rules look up
// before the store (a DocumentReference naming a Binary of the same
// bundle), and the claims to give back when nothing is committed.
type Pending struct {
	mu   sync.Mutex
	vs   map[string]*store.Version
	undo []func()
}

type pendingKey struct{}

// WithPending returns a context whose writes share one Pending.
func WithPending(ctx context.Context) (context.Context, *Pending) {
	p := &Pending{vs: map[string]*store.Version{}}
	return context.WithValue(ctx, pendingKey{}, p), p
}

func pendingOf(ctx context.Context) *Pending {
	p, _ := ctx.Value(pendingKey{}).(*Pending)
	return p
}

func (p *Pending) add(vs ...*store.Version) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range vs {
		p.vs[v.Type+"/"+v.ID] = v
	}
}

func (p *Pending) get(typ, id string) *store.Version {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.vs[typ+"/"+id]
}

func (p *Pending) onUndo(f func()) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.undo = append(p.undo, f)
}

// Undo gives back what the plan took (claims): call it when the planned
// versions were not committed.
func (p *Pending) Undo() {
	if p == nil {
		return
	}
	p.mu.Lock()
	undo := p.undo
	p.undo = nil
	p.mu.Unlock()
	for _, f := range undo {
		f()
	}
}

// lookup reads typ/id from the plan first, then from the store; nil when
// absent or deleted.
func (r *Repo) lookup(ctx context.Context, typ, id string) (*store.Version, error) {
	if v := pendingOf(ctx).get(typ, id); v != nil {
		if v.Deleted {
			return nil, nil
		}
		return v, nil
	}
	v, err := r.st.Read(ctx, typ, id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrGone) {
		return nil, nil
	}
	if err != nil {
		return nil, storeErr(err, typ, id)
	}
	return v, nil
}

// ---- 1. content rules ----

type lifecycleKey struct{}

// lifecycle marks the writes of $close and $reopen, the only ones that may
// set the closure extension or write a closed record.
func lifecycle(ctx context.Context) bool { return ctx.Value(lifecycleKey{}) != nil }

// prepare applies the content rules and profile validation to p (which it
// may complete) before the version is built.
func (r *Repo) prepare(ctx context.Context, req *access.Requester, p *resource.Parsed) error {
	obj, err := r.completeContent(ctx, req, p)
	if err != nil {
		return err
	}
	p.Object = obj
	if p.Type == "Patient" && !lifecycle(ctx) && closureOf(obj) != nil {
		return outcome.New(outcome.Unprocessable, "business-rule",
			"the record-closure extension is set by the server: use Patient/[id]/$close and $reopen").
			WithExpression("Patient.extension")
	}
	if r.profiles != nil && r.needsProfiles(p) {
		var errs []outcome.Issue
		for _, is := range r.profiles.Validate(p.Type, obj.Marshal(), r.strictProfiles) {
			if is.Severity == "error" || is.Severity == "fatal" {
				errs = append(errs, is)
			}
		}
		if len(errs) > 0 {
			return &outcome.Error{Kind: outcome.Unprocessable, Issues: errs}
		}
	}
	return nil
}

// needsProfiles reports whether profile validation can find anything:
// the resource claims profiles, or strict profiles apply to its type.
func (r *Repo) needsProfiles(p *resource.Parsed) bool {
	if r.strictProfiles {
		switch p.Type {
		case "Patient", "Encounter", "DocumentReference", "CarePlan":
			return true
		}
	}
	meta, ok := p.Object.Get("meta")
	if !ok || !bytes.Contains(meta, []byte(`"profile"`)) {
		return false
	}
	// Only profiles the validator knows change anything (an unknown one
	// is a warning, which writes do not report): Synthea's US Core
	// claims cost no second decoding.
	var m struct {
		Profile []string `json:"profile"`
	}
	if json.Unmarshal(meta, &m) != nil {
		return true
	}
	for _, u := range m.Profile {
		if r.profiles.Has(u) {
			return true
		}
	}
	return false
}

// completeContent computes what the server fills in: attachment size and
// hash of documents.
func (r *Repo) completeContent(ctx context.Context, req *access.Requester, p *resource.Parsed) (resource.Object, error) {
	if p.Type != "DocumentReference" {
		return p.Object, nil
	}
	raw, ok := p.Object.Get("content")
	if !ok {
		return p.Object, nil
	}
	var contents []json.RawMessage
	if err := json.Unmarshal(raw, &contents); err != nil {
		return nil, outcome.New(outcome.Invalid, "structure", "content is not an array").WithExpression("DocumentReference.content")
	}
	changed := false
	for i, c := range contents {
		co, err := resource.ParseObject(c)
		if err != nil {
			return nil, outcome.New(outcome.Invalid, "structure", "content is not an object")
		}
		araw, ok := co.Get("attachment")
		if !ok {
			continue
		}
		att, err := resource.ParseObject(araw)
		if err != nil {
			return nil, outcome.New(outcome.Invalid, "structure", "attachment is not an object")
		}
		at := fmt.Sprintf("DocumentReference.content[%d].attachment", i)
		size, sum, known, err := r.attachmentDigest(ctx, req, att, at)
		if err != nil {
			return nil, err
		}
		if !known {
			continue
		}
		att2, err := checkOrSet(att, at, size, sum)
		if err != nil {
			return nil, err
		}
		if att2 != nil {
			co = co.Set("attachment", att2.Marshal())
			contents[i] = co.Marshal()
			changed = true
		}
	}
	if !changed {
		return p.Object, nil
	}
	b, _ := json.Marshal(contents)
	obj := append(resource.Object(nil), p.Object...)
	return obj.Set("content", b), nil
}

// attachmentDigest gives the size and SHA-1 of an attachment's bytes:
// inline data, or a Binary of this server named by url. known is false
// when the bytes are elsewhere.
func (r *Repo) attachmentDigest(ctx context.Context, req *access.Requester, att resource.Object, at string) (int64, []byte, bool, error) {
	if data, ok := att.GetString("data"); ok {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return 0, nil, false, outcome.New(outcome.Invalid, "value", "attachment.data is not base64").WithExpression(at + ".data")
		}
		s := sha1.Sum(b)
		return int64(len(b)), s[:], true, nil
	}
	u, ok := att.GetString("url")
	if !ok {
		return 0, nil, false, nil
	}
	id, ok := strings.CutPrefix(u, "Binary/")
	if !ok || !resource.ValidID(id) {
		return 0, nil, false, nil
	}
	v, err := r.lookup(ctx, "Binary", id)
	if err != nil {
		return 0, nil, false, err
	}
	if v != nil && pendingOf(ctx).get("Binary", id) == nil {
		// A stored Binary the requester may not see is not known either
		// (one of the same bundle is the requester's own).
		sc, err := r.scope(ctx, req)
		if err != nil {
			return 0, nil, false, err
		}
		if ok, err := r.visible(ctx, sc, v); err != nil {
			return 0, nil, false, err
		} else if !ok {
			v = nil
		}
	}
	if v == nil {
		return 0, nil, false, outcome.New(outcome.Unprocessable, "not-found",
			"attachment.url names Binary/%s, which is not known", id).WithExpression(at + ".url")
	}
	size, sum, err := r.BinaryDigest(ctx, v)
	if err != nil {
		return 0, nil, false, err
	}
	return size, sum, true, nil
}

// checkOrSet compares size and hash with the attachment's (400 when they
// differ) and fills them in when absent; nil when nothing changed.
func checkOrSet(att resource.Object, at string, size int64, sum []byte) (resource.Object, error) {
	changed := false
	if raw, ok := att.Get("size"); ok {
		n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
		if err != nil || n != size {
			return nil, outcome.New(outcome.Invalid, "value",
				"attachment.size is %s but the document has %d bytes", raw, size).WithExpression(at + ".size")
		}
	} else {
		att = att.Set("size", json.RawMessage(strconv.FormatInt(size, 10)))
		changed = true
	}
	want := base64.StdEncoding.EncodeToString(sum)
	if h, ok := att.GetString("hash"); ok {
		got, err := base64.StdEncoding.DecodeString(h)
		if err != nil || !bytes.Equal(got, sum) {
			return nil, outcome.New(outcome.Invalid, "value",
				"attachment.hash is not the SHA-1 of the document (expected %s)", want).WithExpression(at + ".hash")
		}
	} else {
		b, _ := json.Marshal(want)
		att = att.Set("hash", b)
		changed = true
	}
	if !changed {
		return nil, nil
	}
	return att, nil
}

// ---- 3. record rules on the built version ----

// afterBuild applies the record rules to v (the next version of a
// resource whose current version is cur, nil when new) and returns the
// versions that must be committed with it.
func (r *Repo) afterBuild(ctx context.Context, req *access.Requester, v, cur *store.Version) ([]*store.Version, error) {
	if !lifecycle(ctx) {
		for _, pid := range ownersOf(v, cur) {
			closed, err := r.closed(ctx, pid)
			if err != nil {
				return nil, err
			}
			if closed {
				return nil, outcome.New(outcome.Unprocessable, "business-rule",
					"the record of Patient/%s is closed: it can be read but not written (reopen it with $reopen)", pid)
			}
		}
	}
	if v.Deleted {
		return nil, nil
	}
	switch v.Type {
	case "Patient":
		return nil, r.claimINS(ctx, v)
	case "DocumentReference":
		return r.supersede(ctx, req, v)
	}
	return nil, nil
}

func ownersOf(v, cur *store.Version) []string {
	var out []string
	if v.Patient != "" {
		out = append(out, v.Patient)
	}
	if cur != nil && cur.Patient != "" && cur.Patient != v.Patient {
		out = append(out, cur.Patient)
	}
	return out
}

// closureOf returns the record-closure extension of a Patient, nil when open.
func closureOf(obj resource.Object) resource.Object {
	raw, ok := obj.Get("extension")
	if !ok || !bytes.Contains(raw, []byte(ExtRecordClosure)) {
		return nil
	}
	var exts []json.RawMessage
	if json.Unmarshal(raw, &exts) != nil {
		return nil
	}
	for _, e := range exts {
		o, err := resource.ParseObject(e)
		if err != nil {
			continue
		}
		if u, _ := o.GetString("url"); u == ExtRecordClosure {
			return o
		}
	}
	return nil
}

// closedCacheTTL bounds how long another server instance may still accept
// writes to a record closed elsewhere; this instance forgets at once.
const closedCacheTTL = time.Second

type closedEntry struct {
	closed bool
	at     time.Time
}

// closed reports whether the record of Patient pid is closed.
func (r *Repo) closed(ctx context.Context, pid string) (bool, error) {
	now := time.Now()
	r.closedMu.Lock()
	e, ok := r.closedCache[pid]
	r.closedMu.Unlock()
	if ok && now.Sub(e.at) < closedCacheTTL {
		return e.closed, nil
	}
	v, err := r.lookup(ctx, "Patient", pid)
	if err != nil {
		return false, err
	}
	closed := false
	if v != nil {
		obj, err := resource.ParseObject(v.JSON)
		if err == nil {
			closed = closureOf(obj) != nil
		}
	}
	r.closedMu.Lock()
	if r.closedCache == nil || len(r.closedCache) > 100_000 {
		r.closedCache = map[string]closedEntry{}
	}
	r.closedCache[pid] = closedEntry{closed: closed, at: now}
	r.closedMu.Unlock()
	return closed, nil
}

func (r *Repo) forgetClosed(pid string) {
	r.closedMu.Lock()
	delete(r.closedCache, pid)
	r.closedMu.Unlock()
}

// insOf returns the INS identifiers of a Patient as "system|value".
func insOf(data []byte) []string {
	var p struct {
		Identifier []struct {
			System string `json:"system"`
			Value  string `json:"value"`
		} `json:"identifier"`
	}
	if json.Unmarshal(data, &p) != nil {
		return nil
	}
	var out []string
	for _, id := range p.Identifier {
		for _, s := range INSSystems {
			if id.System == s && id.Value != "" {
				out = append(out, s+"|"+id.Value)
			}
		}
	}
	return out
}

// claimINS makes v the one record of each of its INS. The claim
// "ins:<system>|<value>" holds the Patient id for good; a holder that no
// longer carries that INS (deleted, changed, or never stored) is stale
// and taken over; a holder being created right now (a young claim whose
// Patient is not stored yet) wins: the other request gets 409 too.
func (r *Repo) claimINS(ctx context.Context, v *store.Version) error {
	for _, ins := range insOf(v.JSON) {
		if err := r.claimOne(ctx, "ins:"+ins, ins, v.ID); err != nil {
			return err
		}
	}
	return nil
}

func (r *Repo) claimOne(ctx context.Context, key, ins, id string) error {
	for attempt := 0; attempt < 10; attempt++ {
		mine := id + "|" + r.now().UTC().Format(time.RFC3339Nano)
		holder, err := r.st.Claim(ctx, key, mine)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return storeErr(err, "Patient", id)
		}
		if holder == "" {
			pendingOf(ctx).onUndo(func() { _ = r.st.Release(context.WithoutCancel(ctx), key, mine) })
			return nil
		}
		hid, at, _ := strings.Cut(holder, "|")
		if hid == id {
			return nil
		}
		hv, deleted, err := r.patientState(ctx, hid)
		if err != nil {
			return err
		}
		if hv != nil {
			for _, x := range insOf(hv.JSON) {
				if x == ins {
					return outcome.New(outcome.Conflict, "duplicate",
						"a record already exists for this INS: one Patient per INS (use a conditional create on the INS identifier)").
						WithExpression("Patient.identifier")
				}
			}
		} else if t, perr := time.Parse(time.RFC3339Nano, at); !deleted && perr == nil && r.now().Sub(t) < 30*time.Second {
			// Not stored yet (being created): only the first holds the INS.
			return outcome.New(outcome.Conflict, "duplicate",
				"another request is creating the record of this INS").WithExpression("Patient.identifier")
		}
		_ = r.st.Release(ctx, key, holder) // stale: take it over
	}
	return outcome.New(outcome.Conflict, "conflict", "too many concurrent writes on this INS")
}

// patientState reads Patient id (the plan first, then the store) in one
// read: the live version, or nil with deleted telling a deleted Patient
// from one not stored (yet).
func (r *Repo) patientState(ctx context.Context, id string) (*store.Version, bool, error) {
	if v := pendingOf(ctx).get("Patient", id); v != nil {
		if v.Deleted {
			return nil, true, nil
		}
		return v, false, nil
	}
	v, err := r.st.Read(ctx, "Patient", id)
	switch {
	case errors.Is(err, store.ErrGone):
		return nil, true, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, storeErr(err, "Patient", id)
	}
	return v, false, nil
}

// supersede returns the replaced documents of v, marked superseded.
func (r *Repo) supersede(ctx context.Context, req *access.Requester, v *store.Version) ([]*store.Version, error) {
	var doc struct {
		Status    string `json:"status"`
		RelatesTo []struct {
			Code   string `json:"code"`
			Target struct {
				Reference string `json:"reference"`
			} `json:"target"`
		} `json:"relatesTo"`
	}
	if err := json.Unmarshal(v.JSON, &doc); err != nil || len(doc.RelatesTo) == 0 {
		return nil, nil
	}
	sc, err := r.scope(ctx, req)
	if err != nil {
		return nil, err
	}
	var also []*store.Version
	for i, rel := range doc.RelatesTo {
		if rel.Code != "replaces" {
			continue
		}
		at := fmt.Sprintf("DocumentReference.relatesTo[%d].target", i)
		id, ok := strings.CutPrefix(rel.Target.Reference, "DocumentReference/")
		if !ok || !resource.ValidID(id) || id == v.ID {
			return nil, outcome.New(outcome.Unprocessable, "business-rule",
				"a replaced document must be another DocumentReference of this server").WithExpression(at)
		}
		if pendingOf(ctx).get("DocumentReference", id) != nil {
			return nil, outcome.New(outcome.Invalid, "business-rule",
				"DocumentReference/%s is written by this bundle and replaced by another of its entries", id).WithExpression(at)
		}
		old, err := r.lookup(ctx, "DocumentReference", id)
		if err != nil {
			return nil, err
		}
		if old == nil || !sc.Visible(old) {
			return nil, outcome.New(outcome.Unprocessable, "not-found",
				"the replaced document DocumentReference/%s is not known", id).WithExpression(at)
		}
		if old.Patient != v.Patient {
			return nil, outcome.New(outcome.Unprocessable, "business-rule",
				"the replaced document belongs to another record").WithExpression(at)
		}
		obj, err := resource.ParseObject(old.JSON)
		if err != nil {
			return nil, outcome.Wrap(err, outcome.Internal, "exception", "stored document unreadable")
		}
		if s, _ := obj.GetString("status"); s == "superseded" {
			continue
		}
		obj = obj.Set("status", json.RawMessage(`"superseded"`))
		nv, err := r.build(req, &resource.Parsed{Type: "DocumentReference", ID: id, Object: obj}, id, old.VersionID+1, "PUT", old)
		if err != nil {
			return nil, err
		}
		if nv.Hash == "" {
			nv.Hash, _ = resource.ContentHash(nv.JSON)
		}
		also = append(also, nv)
	}
	return also, nil
}

// ---- lifecycle: closing and reopening a record ----

// CloseRecord closes the record of Patient id: the Patient becomes
// inactive and carries the closure time and the end of retention; writes
// to the record are refused until it is reopened. Closing a closed record
// changes nothing.
func (r *Repo) CloseRecord(ctx context.Context, req *access.Requester, id string) (Result, error) {
	return r.lifecycleWrite(ctx, req, id, access.Close, func(obj resource.Object) (resource.Object, bool) {
		if closureOf(obj) != nil {
			return obj, false
		}
		now := r.now().UTC()
		ext, _ := json.Marshal(map[string]any{
			"url": ExtRecordClosure,
			"extension": []map[string]string{
				{"url": "closed", "valueDateTime": now.Format(time.RFC3339)},
				{"url": "retainUntil", "valueDateTime": now.AddDate(RetentionAfterClosure, 0, 0).Format(time.RFC3339)},
			},
		})
		var exts []json.RawMessage
		if raw, ok := obj.Get("extension"); ok {
			_ = json.Unmarshal(raw, &exts)
		}
		exts = append(exts, ext)
		b, _ := json.Marshal(exts)
		obj = obj.Set("extension", b)
		obj = obj.Set("active", json.RawMessage("false"))
		return obj, true
	})
}

// ReopenRecord reopens a closed record: the Patient is active again and
// loses the closure extension.
func (r *Repo) ReopenRecord(ctx context.Context, req *access.Requester, id string) (Result, error) {
	return r.lifecycleWrite(ctx, req, id, access.Reopen, func(obj resource.Object) (resource.Object, bool) {
		if closureOf(obj) == nil {
			return obj, false
		}
		var exts, keep []json.RawMessage
		raw, _ := obj.Get("extension")
		_ = json.Unmarshal(raw, &exts)
		for _, e := range exts {
			if !bytes.Contains(e, []byte(ExtRecordClosure)) {
				keep = append(keep, e)
			}
		}
		if len(keep) == 0 {
			obj = obj.Delete("extension")
		} else {
			b, _ := json.Marshal(keep)
			obj = obj.Set("extension", b)
		}
		obj = obj.Set("active", json.RawMessage("true"))
		return obj, true
	})
}

func (r *Repo) lifecycleWrite(ctx context.Context, req *access.Requester, id string, act access.Action,
	change func(resource.Object) (resource.Object, bool)) (Result, error) {
	if err := checkID("Patient", id); err != nil {
		return Result{}, err
	}
	if err := r.policy.Allow(req, act, "Patient"); err != nil {
		return Result{}, err
	}
	ctx = context.WithValue(ctx, lifecycleKey{}, true)
	defer r.forgetClosed(id)
	return r.write(ctx, req, "Patient", id, nil, "PUT", func(cur *store.Version) (*resource.Parsed, error) {
		if cur == nil || cur.Deleted {
			return nil, notFound("Patient", id)
		}
		obj, err := resource.ParseObject(cur.JSON)
		if err != nil {
			return nil, outcome.Wrap(err, outcome.Internal, "exception", "stored Patient unreadable")
		}
		obj, _ = change(obj)
		return &resource.Parsed{Type: "Patient", ID: id, Object: obj}, nil
	})
}

// ValidateDelete reports what would refuse deleting typ/id (for
// $validate mode=delete): 404 when the requester cannot see it.
func (r *Repo) ValidateDelete(ctx context.Context, req *access.Requester, typ, id string) ([]outcome.Issue, error) {
	if err := checkID(typ, id); err != nil {
		return nil, err
	}
	cur, err := r.lookup(ctx, typ, id)
	if err != nil {
		return nil, err
	}
	sc, err := r.scope(ctx, req)
	if err != nil {
		return nil, err
	}
	if ok, err := r.visible(ctx, sc, cur); err != nil {
		return nil, err
	} else if !ok {
		return nil, notFound(typ, id)
	}
	var issues []outcome.Issue
	if err := r.policy.Allow(req, access.Delete, typ); err != nil {
		return nil, err
	}
	if cur.Patient != "" {
		closed, err := r.closed(ctx, cur.Patient)
		if err != nil {
			return nil, err
		}
		if closed {
			issues = append(issues, outcome.Issue{Severity: "error", Code: "business-rule",
				Diagnostics: fmt.Sprintf("the record of Patient/%s is closed: nothing in it can be deleted", cur.Patient)})
		}
	}
	return issues, nil
}
