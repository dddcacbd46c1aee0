// Package access decides who may do what: the requester model built from
// a verified bearer token (token.go) and the policy every read and write
// path of the FHIR layer calls.
//
// A Policy answers two questions:
//   - Allow, before touching the store: may this requester attempt this
//     interaction on this type at all (role, SMART scopes: scopes.go)?
//   - Scope, per request: the requester's view. Scope.Filter(type) is a
//     store.Filter that searches AND into the store query (so hidden
//     resources never match, count, sort or decide a chain), and
//     Scope.Visible(v) evaluates that same filter in memory after a read by
//     id. One definition, two forms; TestPolicyFormsAgree checks that the
//     engine's translation and the in-memory evaluation select the same
//     resources. Scope.CanWrite adds the write rules, Scope.View the
//     minimal Patient view of campaign tools.
//
// DMP (dmp.go) is the medical secrecy policy of the personal record (the
// README's "Medical secrecy" section is its specification); the access
// matrix (matrix.go) is data in profiles/access-matrix.json. Interim is the
// foundation's role-only rule, kept for tests of the layers below secrecy.
package access

import (
	"context"

	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/store"
)

// Action is a FHIR interaction.
type Action string

// Interactions.
const (
	Read    Action = "read"
	VRead   Action = "vread"
	Search  Action = "search-type"
	History Action = "history"
	Create  Action = "create"
	Update  Action = "update"
	Patch   Action = "patch"
	Delete  Action = "delete"
	// Close and Reopen are the record's lifecycle operations on a Patient.
	Close  Action = "close"
	Reopen Action = "reopen"
)

// Policy decides what a requester may see and do.
type Policy interface {
	// Allow reports whether r may attempt act on resources of type typ
	// ("" for system-level interactions) at all: role and SMART scopes,
	// before touching the store; the error is an *outcome.Error.
	Allow(r *Requester, act Action, typ string) error
	// Scope resolves what r may see and write for one request.
	Scope(ctx context.Context, r *Requester) (Scope, error)
}

// Scope is one requester's view of the record, for one request.
type Scope interface {
	// Filter selects what the requester may see of typ: ANDed into every
	// store query (search, count, include, chain, _has, $everything).
	Filter(typ string) store.Filter
	// Visible is Filter(v.Type).Match(v): the same decision after a read
	// by id.
	Visible(v *store.Version) bool
	// ThroughDocument reports whether a Binary is seen only through the
	// DocumentReference of its securityContext (read by id; a Binary
	// search finds nothing).
	ThroughDocument() bool
	// Everything reports that the filter lets everything through (totals
	// of history can be counted by the store).
	Everything() bool
	// View is what the requester is shown of a visible version (a
	// minimal view of a Patient for campaign tools); nil hides it.
	View(v *store.Version) *store.Version
	// CanWrite checks a write of v (cur is the current version, nil for
	// a create) beyond visibility; the error is an *outcome.Error (403).
	CanWrite(act Action, v, cur *store.Version) error
	// MayReport reports whether the requester may run the doctors' duty
	// report on the practitioner rpps or the organization org (one of
	// them is ""). The report reads the encounters and traces it needs
	// itself: it shows encounter references and counts, no content.
	MayReport(rpps, org string) bool
}

// Interim is the foundation's rule: integration and admin do everything,
// other roles nothing. Tests of layers below the secrecy rules use it.
type Interim struct{}

var _ Policy = Interim{}

// Allow implements Policy.
func (Interim) Allow(r *Requester, act Action, typ string) error {
	if r == nil {
		return outcome.New(outcome.Unauthenticated, "login", "a bearer token is required")
	}
	switch r.Role {
	case RoleIntegration, RoleAdmin:
		return nil
	}
	return outcome.New(outcome.Forbidden, "forbidden", "this role may not use this interaction")
}

// Scope implements Policy.
func (Interim) Scope(_ context.Context, r *Requester) (Scope, error) {
	return interimScope{ok: r != nil && (r.Role == RoleIntegration || r.Role == RoleAdmin)}, nil
}

type interimScope struct{ ok bool }

func (s interimScope) Filter(string) store.Filter {
	if s.ok {
		return store.All()
	}
	return store.Or()
}
func (s interimScope) Visible(v *store.Version) bool                         { return s.ok && v != nil }
func (s interimScope) ThroughDocument() bool                                 { return false }
func (s interimScope) Everything() bool                                      { return s.ok }
func (s interimScope) View(v *store.Version) *store.Version                  { return v }
func (s interimScope) CanWrite(Action, *store.Version, *store.Version) error { return nil }
func (s interimScope) MayReport(string, string) bool                         { return s.ok }
