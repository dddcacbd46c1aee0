// Package access decides who may do what: the requester model built from
// a verified bearer token (token.go) and the policy every read and write
// path of the FHIR layer calls (this file).
//
// The policy has one hook per question:
//   - Allow, before touching the store: may this requester perform this
//     interaction on this type at all?
//   - Visible, after a read by id (the engine's fast path): may this
//     requester see this stored version? A hidden version is reported as
//     absent (404), never as forbidden, so its existence does not leak.
//
// Until the secrecy rules land, the policy is the interim rule of the
// foundation: integration and admin tokens may do everything, every other
// role nothing (403).
package access

import (
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
)

// Policy decides what a requester may see and do.
type Policy interface {
	// Allow reports whether r may perform act on resources of type typ
	// ("" for system-level interactions); the error is an *outcome.Error.
	Allow(r *Requester, act Action, typ string) error
	// Visible reports whether r may see version v.
	Visible(r *Requester, v *store.Version) bool
}

// Interim is the foundation's rule: integration and admin do everything,
// other roles nothing.
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

// Visible implements Policy.
func (Interim) Visible(r *Requester, v *store.Version) bool {
	return r != nil && (r.Role == RoleIntegration || r.Role == RoleAdmin)
}
