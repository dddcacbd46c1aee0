// Package bundle processes batch and transaction Bundles (POST /fhir).
//
// # Transaction
//
// All or nothing, on every engine. Entries are planned in the order the
// spec prescribes (DELETE, POST, PUT/PATCH, then GET/HEAD): each write
// becomes a store version built from a fresh read of its target, after
// every reference of the bundle has been rewritten (fullUrl `urn:uuid:`
// and relative or absolute fullUrls of created resources, and conditional
// references such as `Practitioner?identifier=sys|val`, which must match
// exactly one resource). The planned versions are then stored with one
// store.Commit: a MongoDB multi-document transaction on a replica set, or
// the store's crash-safe journal on the embedded engine (see package
// store/mongo). Any failing entry fails the whole bundle with that entry's
// status and OperationOutcome, and nothing is stored. A commit that loses
// a race with a concurrent write is planned again (unless an entry used
// If-Match, which then answers 412).
//
// # Batch
//
// Entries are independent: each is executed as the same interaction sent
// alone would be, with its own status and outcome; a failing entry does
// not fail the others. References from one batch entry to another entry's
// fullUrl are refused (the spec forbids them); conditional references are
// resolved.
//
// Responses carry status, location, etag and lastModified per entry, the
// resource when the client sends `Prefer: return=representation`, and an
// OperationOutcome for entries that failed.
package bundle

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/store"
)

// Config bounds bundles.
type Config struct {
	// MaxEntries is the largest number of entries accepted (413 above).
	MaxEntries int
}

// Processor runs bundles against a repo.
type Processor struct {
	repo *repo.Repo
	cfg  Config
}

// New builds a Processor.
func New(r *repo.Repo, cfg Config) *Processor {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 10000
	}
	return &Processor{repo: r, cfg: cfg}
}

// Options are per-request settings.
type Options struct {
	// Base is the server's FHIR base URL (for absolute fullUrls).
	Base string
	// Representation includes each written resource in the response.
	Representation bool
}

type inBundle struct {
	ResourceType string    `json:"resourceType"`
	Type         string    `json:"type"`
	Entry        []inEntry `json:"entry"`
}

type inEntry struct {
	FullURL  string          `json:"fullUrl"`
	Resource json.RawMessage `json:"resource"`
	Request  *inRequest      `json:"request"`
}

type inRequest struct {
	Method          string `json:"method"`
	URL             string `json:"url"`
	IfNoneMatch     string `json:"ifNoneMatch"`
	IfModifiedSince string `json:"ifModifiedSince"`
	IfMatch         string `json:"ifMatch"`
	IfNoneExist     string `json:"ifNoneExist"`
}

// Response types.
type outBundle struct {
	ResourceType string     `json:"resourceType"`
	ID           string     `json:"id"`
	Type         string     `json:"type"`
	Link         []outLink  `json:"link,omitempty"`
	Entry        []outEntry `json:"entry"`
}

type outLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

type outEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
	Response outResponse     `json:"response"`
}

type outResponse struct {
	Status       string          `json:"status"`
	Location     string          `json:"location,omitempty"`
	Etag         string          `json:"etag,omitempty"`
	LastModified string          `json:"lastModified,omitempty"`
	Outcome      json.RawMessage `json:"outcome,omitempty"`
}

// target is what an entry's request URL names.
type target struct {
	typ, id string
	vid     int64
	query   string // conditional criteria or search query ("" when none)
	history bool   // .../_history
}

// entry is one entry being processed.
type entry struct {
	i       int
	in      inEntry
	method  string
	tgt     target
	ifMatch *int64
	// results
	res     repo.Result
	status  int
	out     json.RawMessage // resource to return (GET)
	err     error
	skipped bool // transaction: planned as no write
}

var methodOrder = map[string]int{http.MethodDelete: 0, http.MethodPost: 1, http.MethodPut: 2, http.MethodPatch: 2, http.MethodGet: 3, http.MethodHead: 3}

// Process runs a batch or transaction Bundle and returns the response
// Bundle's JSON.
func (p *Processor) Process(ctx context.Context, req *access.Requester, body []byte, o Options) ([]byte, error) {
	var b inBundle
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, outcome.Wrap(err, outcome.Invalid, "structure", "the body is not a valid Bundle: %v", err)
	}
	if b.ResourceType != "Bundle" {
		return nil, outcome.New(outcome.Invalid, "invalid", "POST to the base needs a Bundle")
	}
	if b.Type != "batch" && b.Type != "transaction" {
		return nil, outcome.New(outcome.Invalid, "invalid", "Bundle.type must be batch or transaction (got %q)", b.Type)
	}
	if len(b.Entry) > p.cfg.MaxEntries {
		return nil, outcome.New(outcome.TooLarge, "too-costly", "the bundle has %d entries; the limit is %d", len(b.Entry), p.cfg.MaxEntries)
	}
	entries := make([]*entry, len(b.Entry))
	for i, in := range b.Entry {
		e := &entry{i: i, in: in}
		entries[i] = e
		if err := e.parseRequest(); err != nil {
			if b.Type == "transaction" {
				return nil, entryErr(i, err)
			}
			e.err = err
		}
	}
	order := make([]*entry, len(entries))
	copy(order, entries)
	sort.SliceStable(order, func(a, c int) bool { return methodOrder[order[a].method] < methodOrder[order[c].method] })

	if b.Type == "transaction" {
		if err := p.transaction(ctx, req, entries, order, o); err != nil {
			return nil, err
		}
	} else {
		p.batch(ctx, req, entries, order, o)
	}
	return p.response(b.Type+"-response", entries, o), nil
}

func entryErr(i int, err error) error {
	oe := toOutcome(err)
	issues := make([]outcome.Issue, len(oe.Issues))
	for k, is := range oe.Issues {
		is.Diagnostics = fmt.Sprintf("Bundle.entry[%d]: %s", i, is.Diagnostics)
		if len(is.Expression) == 0 {
			is.Expression = []string{fmt.Sprintf("Bundle.entry[%d]", i)}
		}
		issues[k] = is
	}
	return &outcome.Error{Kind: oe.Kind, Issues: issues, Err: err}
}

func toOutcome(err error) *outcome.Error {
	var oe *outcome.Error
	if errors.As(err, &oe) {
		return oe
	}
	return outcome.Wrap(err, outcome.Internal, "exception", "internal error")
}

// parseRequest checks the entry's request and parses its URL.
func (e *entry) parseRequest() error {
	if e.in.Request == nil {
		return outcome.New(outcome.Invalid, "required", "entry.request is missing")
	}
	e.method = strings.ToUpper(e.in.Request.Method)
	if _, ok := methodOrder[e.method]; !ok {
		return outcome.New(outcome.Invalid, "not-supported", "entry.request.method %q is not supported", e.in.Request.Method)
	}
	t, err := parseURL(e.in.Request.URL)
	if err != nil {
		return err
	}
	e.tgt = t
	if e.in.Request.IfMatch != "" {
		n, ok := parseETag(e.in.Request.IfMatch)
		if !ok {
			return outcome.New(outcome.Invalid, "invalid", "ifMatch must be a version ETag such as W/\"3\"")
		}
		e.ifMatch = &n
	}
	switch e.method {
	case http.MethodPost:
		if t.id != "" || t.query != "" {
			return outcome.New(outcome.Invalid, "invalid", "POST entries name a type only")
		}
		if len(e.in.Resource) == 0 {
			return outcome.New(outcome.Invalid, "required", "a POST entry needs a resource")
		}
	case http.MethodPut:
		if len(e.in.Resource) == 0 {
			return outcome.New(outcome.Invalid, "required", "a PUT entry needs a resource")
		}
		if t.id == "" && t.query == "" {
			return outcome.New(outcome.Invalid, "invalid", "a PUT entry names Type/id or Type?criteria")
		}
	case http.MethodPatch:
		if t.id == "" {
			return outcome.New(outcome.Invalid, "invalid", "a PATCH entry names Type/id")
		}
	case http.MethodDelete:
		if t.id == "" && t.query == "" {
			return outcome.New(outcome.Invalid, "invalid", "a DELETE entry names Type/id or Type?criteria")
		}
	}
	return nil
}

// parseURL parses an entry's request.url (relative to the base).
func parseURL(raw string) (target, error) {
	bad := func() (target, error) {
		return target{}, outcome.New(outcome.Invalid, "invalid", "entry.request.url is not a URL this server handles")
	}
	if raw == "" {
		return bad()
	}
	path, query, _ := strings.Cut(raw, "?")
	if i := strings.Index(path, "/fhir/"); strings.Contains(path, "://") && i >= 0 {
		path = path[i+len("/fhir/"):]
	}
	path = strings.Trim(path, "/")
	parts := strings.Split(path, "/")
	t := target{typ: parts[0], query: query}
	if !resource.IsType(t.typ) {
		return target{}, outcome.New(outcome.NotFound, "not-supported", "unknown resource type %q", t.typ)
	}
	switch len(parts) {
	case 1:
	case 2:
		if parts[1] == "_history" {
			t.history = true
			break
		}
		t.id = parts[1]
	case 3:
		if parts[2] != "_history" {
			return bad()
		}
		t.id, t.history = parts[1], true
	case 4:
		if parts[2] != "_history" {
			return bad()
		}
		vid, err := strconv.ParseInt(parts[3], 10, 64)
		if err != nil || vid < 1 {
			return bad()
		}
		t.id, t.vid = parts[1], vid
	default:
		return bad()
	}
	if t.id != "" && !resource.ValidID(t.id) {
		return target{}, outcome.New(outcome.Invalid, "invalid", "entry.request.url has an invalid id")
	}
	return t, nil
}

func parseETag(s string) (int64, bool) {
	s = strings.Trim(strings.TrimPrefix(strings.TrimSpace(s), "W/"), `"`)
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// refResolver rewrites references of a bundle's resources.
type refResolver struct {
	p       *Processor
	ctx     context.Context
	req     *access.Requester
	byURL   map[string]string // fullUrl (and relative forms) → Type/id
	inBatch map[string]bool   // fullUrls of a batch's entries (references to them are refused)
	mu      sync.Mutex        // guards cond (entries are parsed in parallel)
	cond    map[string]string // conditional reference → Type/id
}

// resolveURL rewrites a url element naming an entry of the bundle by its
// fullUrl (a document's Attachment.url to a Binary of the bundle);
// any other url is kept.
func (r *refResolver) resolveURL(u string) (string, error) {
	if to, ok := r.byURL[u]; ok {
		return to, nil
	}
	if r.inBatch[u] {
		return "", outcome.New(outcome.Invalid, "invalid", "a batch entry may not reference another entry of the batch")
	}
	return u, nil
}

func (r *refResolver) resolve(ref string) (string, error) {
	if to, ok := r.byURL[ref]; ok {
		return to, nil
	}
	if r.inBatch[ref] {
		return "", outcome.New(outcome.Invalid, "invalid", "a batch entry may not reference another entry of the batch")
	}
	typ, q, ok := strings.Cut(ref, "?")
	if !ok || !resource.IsType(typ) {
		return ref, nil
	}
	r.mu.Lock()
	to, ok := r.cond[ref]
	r.mu.Unlock()
	if ok {
		return to, nil
	}
	found, err := r.p.matches(r.ctx, r.req, typ, q)
	if err != nil {
		return "", err
	}
	switch len(found) {
	case 0:
		return "", outcome.New(outcome.PreconditionFailed, "not-found", "the conditional reference %s matches no resource", typ+"?…")
	case 1:
		to := typ + "/" + found[0].ID
		r.mu.Lock()
		r.cond[ref] = to
		r.mu.Unlock()
		return to, nil
	}
	return "", outcome.New(outcome.PreconditionFailed, "multiple-matches", "the conditional reference %s matches several resources", typ+"?…")
}

// matches resolves conditional criteria (ifNoneExist, conditional
// entries, conditional references) to at most two visible resources.
func (p *Processor) matches(ctx context.Context, req *access.Requester, typ, query string) ([]*store.Version, error) {
	crit, err := p.repo.Criteria(ctx, req, typ, query)
	if err != nil {
		return nil, err
	}
	return p.repo.Find(ctx, req, crit, 2)
}

// fullURLForms lists the strings by which other entries may reference an
// entry with this fullUrl.
func fullURLForms(fullURL string) []string {
	forms := []string{fullURL}
	if strings.Contains(fullURL, "://") {
		parts := strings.Split(strings.TrimRight(fullURL, "/"), "/")
		if n := len(parts); n >= 2 && resource.IsType(parts[n-2]) {
			forms = append(forms, parts[n-2]+"/"+parts[n-1])
		}
	}
	return forms
}

// parseResource rewrites references of an entry's resource and parses it.
func (p *Processor) parseResource(e *entry, rr *refResolver) (*resource.Parsed, error) {
	raw, err := resource.RewriteLinks(e.in.Resource, rr.resolve, rr.resolveURL)
	if err != nil {
		var oe *outcome.Error
		if errors.As(err, &oe) {
			return nil, err
		}
		return nil, outcome.Wrap(err, outcome.Invalid, "structure", "entry.resource is not valid JSON")
	}
	parsed, err := p.repo.Validate(e.tgt.typ, raw)
	if err != nil {
		return nil, err
	}
	return parsed, nil
}

// patchBody extracts a JSON Patch from an entry's Binary resource.
func patchBody(e *entry) ([]byte, error) {
	var bin struct {
		ResourceType string `json:"resourceType"`
		ContentType  string `json:"contentType"`
		Data         string `json:"data"`
	}
	if err := json.Unmarshal(e.in.Resource, &bin); err != nil || bin.ResourceType != "Binary" ||
		!strings.HasPrefix(bin.ContentType, "application/json-patch+json") {
		return nil, outcome.New(outcome.Invalid, "not-supported",
			"a PATCH entry carries a Binary with contentType application/json-patch+json (FHIRPath Patch is not supported)")
	}
	patch, err := base64.StdEncoding.DecodeString(bin.Data)
	if err != nil {
		return nil, outcome.New(outcome.Invalid, "invalid", "the patch Binary's data is not base64")
	}
	return patch, nil
}

type parseResult struct {
	p   *resource.Parsed
	err error
}

// parseAll parses the resources of POST and PUT entries on all cores.
func (p *Processor) parseAll(order []*entry, rr *refResolver) map[int]parseResult {
	var todo []*entry
	for _, e := range order {
		if !e.skipped && (e.method == http.MethodPost || e.method == http.MethodPut) {
			todo = append(todo, e)
		}
	}
	out := make(map[int]parseResult, len(todo))
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan *entry)
	for range min(runtime.GOMAXPROCS(0), max(1, len(todo))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range next {
				pr, err := p.parseResource(e, rr)
				mu.Lock()
				out[e.i] = parseResult{p: pr, err: err}
				mu.Unlock()
			}
		}()
	}
	for _, e := range todo {
		next <- e
	}
	close(next)
	wg.Wait()
	return out
}

// transaction plans every write, commits them together, then runs reads.
func (p *Processor) transaction(ctx context.Context, req *access.Requester, entries, order []*entry, o Options) error {
	for attempt := 0; ; attempt++ {
		err := p.planAndCommit(ctx, req, entries, order)
		if err == nil {
			break
		}
		retry := errors.Is(err, errRetryCommit) && attempt < 30
		if !retry {
			if errors.Is(err, errRetryCommit) {
				return outcome.New(outcome.Conflict, "conflict", "the transaction kept colliding with concurrent writes")
			}
			return err
		}
		for _, e := range entries {
			e.res, e.status, e.skipped = repo.Result{}, 0, false
		}
		// Back off a little, with jitter, before planning again.
		time.Sleep(time.Duration(1+rand.IntN(5*(attempt+1))) * time.Millisecond)
	}
	for _, e := range order {
		if e.method == http.MethodGet || e.method == http.MethodHead {
			p.read(ctx, req, e)
			if e.err != nil {
				return entryErr(e.i, e.err)
			}
		}
	}
	return nil
}

var errRetryCommit = errors.New("commit lost a race")

func (p *Processor) planAndCommit(ctx context.Context, req *access.Requester, entries, order []*entry) (err error) {
	ctx, pend := repo.WithPending(ctx)
	defer func() {
		if err != nil {
			pend.Undo() // nothing was committed: give back the plan's claims
		}
	}()
	rr := &refResolver{p: p, ctx: ctx, req: req, byURL: map[string]string{}, cond: map[string]string{}}
	pol := p.repo.Policy()
	// Pass 1: who is written where.
	targets := map[string]int{}
	for _, e := range order {
		var act access.Action
		switch e.method {
		case http.MethodGet, http.MethodHead:
			continue
		case http.MethodPost:
			act = access.Create
			if ine := e.in.Request.IfNoneExist; ine != "" {
				found, err := p.matches(ctx, req, e.tgt.typ, ine)
				if err != nil {
					return entryErr(e.i, err)
				}
				if len(found) > 1 {
					return entryErr(e.i, outcome.New(outcome.PreconditionFailed, "multiple-matches",
						"ifNoneExist matches more than one resource"))
				}
				if len(found) == 1 {
					e.skipped = true
					e.res = repo.Result{Version: found[0], NoOp: true}
					e.status = http.StatusOK
					e.tgt.id = found[0].ID
				}
			}
			if e.tgt.id == "" {
				e.tgt.id = repo.NewID()
			}
		case http.MethodPut:
			act = access.Update
			if e.tgt.query != "" {
				found, err := p.matches(ctx, req, e.tgt.typ, e.tgt.query)
				if err != nil {
					return entryErr(e.i, err)
				}
				switch len(found) {
				case 0:
					var body struct {
						ID string `json:"id"`
					}
					_ = json.Unmarshal(e.in.Resource, &body)
					e.tgt.id = body.ID
					if e.tgt.id == "" || !resource.ValidID(e.tgt.id) {
						e.tgt.id = repo.NewID()
					}
				case 1:
					e.tgt.id = found[0].ID
				default:
					return entryErr(e.i, outcome.New(outcome.PreconditionFailed, "multiple-matches",
						"the conditional update criteria match more than one resource"))
				}
			}
		case http.MethodPatch:
			act = access.Patch
		case http.MethodDelete:
			act = access.Delete
			if e.tgt.query != "" {
				found, err := p.matches(ctx, req, e.tgt.typ, e.tgt.query)
				if err != nil {
					return entryErr(e.i, err)
				}
				switch len(found) {
				case 0:
					e.skipped = true
					e.status = http.StatusNoContent
					continue
				case 1:
					e.tgt.id = found[0].ID
				default:
					return entryErr(e.i, outcome.New(outcome.PreconditionFailed, "multiple-matches",
						"the conditional delete criteria match more than one resource"))
				}
			}
		}
		if err := pol.Allow(req, act, e.tgt.typ); err != nil {
			return entryErr(e.i, err)
		}
		k := e.tgt.typ + "/" + e.tgt.id
		if !e.skipped { // a conditional create that matched writes nothing
			if prev, dup := targets[k]; dup {
				return entryErr(e.i, outcome.New(outcome.Invalid, "duplicate",
					"entries %d and %d both write %s", prev, e.i, e.tgt.typ))
			}
			targets[k] = e.i
		}
		if e.in.FullURL != "" {
			for _, f := range fullURLForms(e.in.FullURL) {
				rr.byURL[f] = k
			}
		}
	}
	// Pass 2: rewrite references and validate the resources, in parallel
	// (validation is most of a write's CPU).
	parsed := p.parseAll(order, rr)
	// Pass 3: plan every write; Binary entries first among the creates and
	// updates, so that a document naming a Binary of the bundle finds it.
	planOrder := slices.Clone(order)
	slices.SortStableFunc(planOrder, func(a, b *entry) int {
		if ra, rb := binaryRank(a), binaryRank(b); ra != rb {
			return ra - rb
		}
		return methodOrder[a.method] - methodOrder[b.method]
	})
	var versions []*store.Version
	for _, e := range planOrder {
		if e.skipped {
			continue
		}
		var res repo.Result
		var err error
		switch e.method {
		case http.MethodGet, http.MethodHead:
			continue
		case http.MethodPost:
			pr := parsed[e.i]
			if err = pr.err; err == nil {
				res, err = p.repo.PlanCreate(ctx, req, pr.p, e.tgt.id)
			}
		case http.MethodPut:
			pr := parsed[e.i]
			if err = pr.err; err == nil {
				parsed := pr.p
				if parsed.ID != "" && parsed.ID != e.tgt.id {
					err = outcome.New(outcome.Invalid, "invalid", "the resource id does not match the request URL")
				} else {
					res, err = p.repo.PlanWrite(ctx, req, e.tgt.typ, e.tgt.id, e.ifMatch, http.MethodPut,
						func(*store.Version) (*resource.Parsed, error) { return parsed, nil })
				}
			}
		case http.MethodPatch:
			var patch []byte
			if patch, err = patchBody(e); err == nil {
				res, err = p.repo.PlanWrite(ctx, req, e.tgt.typ, e.tgt.id, e.ifMatch, http.MethodPatch,
					p.repo.PatchContent(e.tgt.typ, e.tgt.id, patch))
			}
		case http.MethodDelete:
			res, err = p.repo.PlanDelete(ctx, req, e.tgt.typ, e.tgt.id, e.ifMatch)
		}
		if err != nil {
			return entryErr(e.i, err)
		}
		e.res = res
		e.status = writeStatus(e.method, res)
		versions = append(versions, res.Versions()...)
	}
	if err := p.repo.Commit(ctx, versions); err != nil {
		if outcome.KindOf(err) == outcome.Conflict {
			for _, e := range entries {
				if e.ifMatch != nil {
					return outcome.New(outcome.PreconditionFailed, "conflict",
						"a resource of entry %d was changed by another request", e.i)
				}
			}
			return errRetryCommit
		}
		return err
	}
	return nil
}

// binaryRank plans Binary writes (deletes aside) before the rest: they
// are distinct resources, and a document of the bundle naming a Binary
// of the bundle reads it from the plan.
func binaryRank(e *entry) int {
	if e.tgt.typ == "Binary" && e.method != http.MethodDelete {
		return 0
	}
	return 1
}

// batch runs each entry on its own.
func (p *Processor) batch(ctx context.Context, req *access.Requester, entries, order []*entry, o Options) {
	rr := &refResolver{p: p, ctx: ctx, req: req, byURL: map[string]string{}, inBatch: map[string]bool{}, cond: map[string]string{}}
	for _, e := range entries {
		if e.in.FullURL != "" {
			for _, f := range fullURLForms(e.in.FullURL) {
				rr.inBatch[f] = true
			}
		}
	}
	for _, e := range order {
		if e.err != nil {
			continue
		}
		// A batch entry may reference itself by its own fullUrl only in
		// the trivial PUT case; references are checked per entry.
		var err error
		switch e.method {
		case http.MethodGet, http.MethodHead:
			p.read(ctx, req, e)
			continue
		case http.MethodPost:
			var raw []byte
			if raw, err = resource.RewriteLinks(e.in.Resource, rr.resolve, rr.resolveURL); err == nil {
				e.res, err = p.repo.Create(ctx, req, e.tgt.typ, raw, e.in.Request.IfNoneExist)
			}
		case http.MethodPut:
			var raw []byte
			if raw, err = resource.RewriteLinks(e.in.Resource, rr.resolve, rr.resolveURL); err == nil {
				if e.tgt.query != "" {
					e.res, err = p.repo.ConditionalUpdate(ctx, req, e.tgt.typ, e.tgt.query, raw, e.ifMatch)
				} else {
					e.res, err = p.repo.Update(ctx, req, e.tgt.typ, e.tgt.id, raw, e.ifMatch)
				}
			}
		case http.MethodPatch:
			var patch []byte
			if patch, err = patchBody(e); err == nil {
				e.res, err = p.repo.Patch(ctx, req, e.tgt.typ, e.tgt.id, patch, e.ifMatch)
			}
		case http.MethodDelete:
			if e.tgt.query != "" {
				e.res, err = p.repo.ConditionalDelete(ctx, req, e.tgt.typ, e.tgt.query)
			} else {
				e.res, err = p.repo.Delete(ctx, req, e.tgt.typ, e.tgt.id, e.ifMatch)
			}
		}
		if err != nil {
			var oe *outcome.Error
			if !errors.As(err, &oe) {
				err = outcome.Wrap(err, outcome.Invalid, "structure", "entry.resource is not valid JSON")
			}
			e.err = err
			continue
		}
		e.status = writeStatus(e.method, e.res)
	}
}

// writeStatus is the entry status of a successful write.
func writeStatus(method string, res repo.Result) int {
	switch {
	case method == http.MethodDelete:
		return http.StatusNoContent
	case res.Created:
		return http.StatusCreated
	}
	return http.StatusOK
}

// read runs a GET/HEAD entry: read, vread or search.
func (p *Processor) read(ctx context.Context, req *access.Requester, e *entry) {
	t := e.tgt
	var v *store.Version
	var err error
	switch {
	case t.id != "" && t.vid > 0:
		v, err = p.repo.VRead(ctx, req, t.typ, t.id, t.vid)
	case t.id != "" && !t.history:
		v, err = p.repo.Read(ctx, req, t.typ, t.id)
	case t.id == "" && !t.history:
		var crit repo.Criteria
		crit.Type = t.typ
		if t.query != "" {
			if crit, err = p.repo.Criteria(ctx, req, t.typ, t.query); err != nil {
				break
			}
		}
		var found []*store.Version
		if found, err = p.repo.Search(ctx, req, t.typ, crit, 0); err == nil {
			e.status = http.StatusOK
			e.out = searchBundle(found)
			return
		}
	default:
		err = outcome.New(outcome.Invalid, "not-supported", "history inside a bundle is not supported")
	}
	if err != nil {
		e.err = err
		return
	}
	e.res = repo.Result{Version: v}
	e.status = http.StatusOK
	if n, ok := parseETag(e.in.Request.IfNoneMatch); ok && n == v.VersionID {
		e.status = http.StatusNotModified
		return
	}
	if ims := e.in.Request.IfModifiedSince; ims != "" {
		if since, perr := time.Parse(time.RFC3339Nano, ims); perr == nil && !v.LastUpdated.After(since) {
			e.status = http.StatusNotModified
			return
		}
	}
	if e.method == http.MethodGet {
		e.out = v.JSON
	}
}

func searchBundle(found []*store.Version) json.RawMessage {
	type se struct {
		Resource json.RawMessage `json:"resource"`
	}
	b := struct {
		ResourceType string `json:"resourceType"`
		Type         string `json:"type"`
		Total        int    `json:"total"`
		Entry        []se   `json:"entry,omitempty"`
	}{ResourceType: "Bundle", Type: "searchset", Total: len(found)}
	for _, v := range found {
		b.Entry = append(b.Entry, se{Resource: v.JSON})
	}
	out, _ := json.Marshal(b)
	return out
}

func (p *Processor) response(typ string, entries []*entry, o Options) []byte {
	b := outBundle{ResourceType: "Bundle", ID: repo.NewID(), Type: typ}
	for _, e := range entries {
		var oe outEntry
		if e.err != nil {
			x := toOutcome(e.err)
			oe.Response.Status = statusLine(x.Kind.HTTPStatus())
			oe.Response.Outcome = outcome.JSON(x.Issues)
			b.Entry = append(b.Entry, oe)
			continue
		}
		oe.Response.Status = statusLine(e.status)
		if v := e.res.Version; v != nil {
			oe.FullURL = fmt.Sprintf("%s/%s/%s", o.Base, v.Type, v.ID)
			oe.Response.Etag = fmt.Sprintf(`W/"%d"`, v.VersionID)
			oe.Response.LastModified = resource.Instant(v.LastUpdated)
			if e.method != http.MethodGet && e.method != http.MethodHead && !v.Deleted {
				oe.Response.Location = fmt.Sprintf("%s/%s/_history/%d", v.Type, v.ID, v.VersionID)
				if o.Representation {
					oe.Resource = v.JSON
				}
			}
		}
		if e.out != nil {
			oe.Resource = e.out
		}
		b.Entry = append(b.Entry, oe)
	}
	out, _ := json.Marshal(b)
	return out
}

func statusLine(code int) string {
	return fmt.Sprintf("%d %s", code, http.StatusText(code))
}
