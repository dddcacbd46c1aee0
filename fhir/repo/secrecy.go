package repo

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/store"
)

// The repo's side of the access policy: every read path asks scope for
// the requester's view and either ANDs its Filter into the store query
// (searches, counts, chains, includes, $everything) or checks Visible on
// a version read by id (read, vread, history, the current version of a
// write). A Binary is seen through its document (visible below).

// scope resolves the requester's view for one operation.
func (r *Repo) scope(ctx context.Context, req *access.Requester) (access.Scope, error) {
	sc, err := r.policy.Scope(ctx, req)
	if err != nil {
		return nil, storeErr(err, "", "")
	}
	return sc, nil
}

// visible decides on one version read by id. A Binary, for requesters
// who see it through its document, is visible when the DocumentReference
// of its securityContext is.
func (r *Repo) visible(ctx context.Context, sc access.Scope, v *store.Version) (bool, error) {
	if v == nil {
		return false, nil
	}
	if v.Type != "Binary" || !sc.ThroughDocument() {
		return sc.Visible(v), nil
	}
	doc, err := r.securityContext(ctx, v)
	if err != nil || doc == nil {
		return false, err
	}
	return sc.Visible(doc), nil
}

// securityContext returns the current DocumentReference a Binary version
// belongs to (nil when it names none, or it is gone).
func (r *Repo) securityContext(ctx context.Context, v *store.Version) (*store.Version, error) {
	var b struct {
		SecurityContext struct {
			Reference string `json:"reference"`
		} `json:"securityContext"`
	}
	if v.Deleted || json.Unmarshal(v.JSON, &b) != nil {
		return nil, nil
	}
	id, ok := strings.CutPrefix(b.SecurityContext.Reference, "DocumentReference/")
	if !ok || !resource.ValidID(id) {
		return nil, nil
	}
	return r.lookup(ctx, "DocumentReference", id)
}

// visibleVersion decides on a version of a resource's history: it must
// be visible itself, and so must the current version (a label the patient
// or author adds later, such as MASQUE_PS, hides the earlier versions
// too). currents caches current versions by "Type/id" (may be nil).
func (r *Repo) visibleVersion(ctx context.Context, sc access.Scope, v *store.Version, currents map[string]*store.Version) (bool, error) {
	ok, err := r.visible(ctx, sc, v)
	if err != nil || !ok || sc.Everything() {
		return ok, err
	}
	k := v.Type + "/" + v.ID
	cur, cached := currents[k]
	if !cached {
		cur, err = r.st.Read(ctx, v.Type, v.ID)
		if err != nil && !errors.Is(err, store.ErrGone) && !errors.Is(err, store.ErrNotFound) {
			return false, storeErr(err, v.Type, v.ID)
		}
		if currents != nil {
			currents[k] = cur
		}
	}
	if cur == nil || cur.VersionID == v.VersionID {
		return true, nil
	}
	return r.visible(ctx, sc, cur)
}

// visibleVersions keeps the visible versions of a history listing (as
// shown to the requester).
func (r *Repo) visibleVersions(ctx context.Context, sc access.Scope, vs []*store.Version, currents map[string]*store.Version) ([]*store.Version, error) {
	out := vs[:0]
	for _, v := range vs {
		ok, err := r.visibleVersion(ctx, sc, v, currents)
		if err != nil {
			return nil, err
		}
		if ok {
			if w := sc.View(v); w != nil {
				out = append(out, w)
			}
		}
	}
	return out, nil
}

// shown is what the requester is shown of a version read by id: the
// scope's View of it when it is visible; nil when hidden (or when no view
// can be made: fail closed).
func (r *Repo) shown(ctx context.Context, sc access.Scope, v *store.Version) (*store.Version, error) {
	ok, err := r.visible(ctx, sc, v)
	if err != nil || !ok {
		return nil, err
	}
	return sc.View(v), nil
}

// views applies the scope's View to versions found with its filter (so
// already visible; a Binary search finds Binaries only for requesters
// whose filter lets them through, see access.Scope.ThroughDocument).
func (r *Repo) views(sc access.Scope, vs []*store.Version) []*store.Version {
	out := vs[:0]
	for _, v := range vs {
		if w := sc.View(v); w != nil {
			out = append(out, w)
		}
	}
	return out
}

// canWrite checks the policy's write rules (lifecycle operations are
// checked by Allow only).
func (r *Repo) canWrite(ctx context.Context, sc access.Scope, act access.Action, v, cur *store.Version) error {
	if lifecycle(ctx) {
		return nil
	}
	return sc.CanWrite(act, v, cur)
}

// setAccessKeys records, as search keys, what the policy filters on
// besides the index: the writing organization (access.OrgKey) and the
// secrecy labels (access.LabelKey: meta.security and a document's
// securityLabel as "system|code"), so one key answers a label condition.
func setAccessKeys(v *store.Version) {
	want := map[string][]string{}
	if v.Org != "" {
		want[access.OrgKey] = []string{v.Org}
	}
	if len(v.Security) > 0 {
		want[access.LabelKey] = v.Security
	}
	same := true
	for _, k := range []string{access.OrgKey, access.LabelKey} {
		if !slices.Equal(v.Keys[k], want[k]) {
			same = false
		}
	}
	if same {
		return
	}
	v.Keys = cloneKeys(v.Keys)
	for _, k := range []string{access.OrgKey, access.LabelKey} {
		if len(want[k]) == 0 {
			delete(v.Keys, k)
		} else {
			v.Keys[k] = want[k]
		}
	}
}

func cloneKeys(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// invalidator is implemented by policies that cache facts.
type invalidator interface{ Invalidate() }

// changed tells the policy that facts it caches may have changed.
func (r *Repo) changed(vs []*store.Version) {
	inv, ok := r.policy.(invalidator)
	if !ok {
		return
	}
	for _, v := range vs {
		if slices.Contains(access.FactTypes, v.Type) {
			inv.Invalidate()
			return
		}
	}
}
