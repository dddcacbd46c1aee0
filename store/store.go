// Package store defines how Dossier keeps FHIR resources: a small,
// backend-neutral interface (no bson, no driver types), the records it
// stores, and the sentinel errors every implementation returns.
//
// # Model
//
// A resource is a chain of versions 1, 2, 3… Each version is a [Version]:
// the JSON exactly as it is served (meta.versionId and meta.lastUpdated
// already filled in, decimals as written by the client), plus the fields
// that later layers need without parsing that JSON again: the owning
// patient of a compartment resource, security labels, the organization
// whose engine wrote it, and search keys.
//
// Writing is optimistic: the caller reads the current version n, builds
// version n+1 and calls [Store.Put]. Exactly one writer can create a given
// version number of a given resource; a loser gets [ErrConflict] and may
// read again and retry (or answer 412 when the client sent If-Match).
// That one rule gives If-Match, lost-update freedom and create-once
// semantics on every engine, including the embedded one which has no
// multi-document transactions.
//
// Claims ([Store.Claim]) are small unique keys used to make "create if
// absent" decisions atomic (conditional create on an identifier).
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Implementations wrap them in *Error; callers test
// them with errors.Is.
var (
	ErrNotFound           = errors.New("not found")
	ErrGone               = errors.New("gone")
	ErrConflict           = errors.New("conflict")
	ErrPreconditionFailed = errors.New("precondition failed")
	ErrUnavailable        = errors.New("store unavailable")
	ErrInvalid            = errors.New("invalid request to store")
)

// Error carries the operation that failed and the kind of failure (one of
// the sentinels above), plus the underlying cause when there is one.
// Messages never contain resource content.
type Error struct {
	Op   string
	Kind error
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("store %s: %v: %v", e.Op, e.Kind, e.Err)
	}
	return fmt.Sprintf("store %s: %v", e.Op, e.Kind)
}

// Is reports whether the kind matches target.
func (e *Error) Is(target error) bool { return e.Kind == target }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// E builds an *Error.
func E(op string, kind error, cause error) error {
	return &Error{Op: op, Kind: kind, Err: cause}
}

// Version is one stored version of a resource.
type Version struct {
	Type        string
	ID          string
	VersionID   int64
	LastUpdated time.Time // UTC, microsecond precision
	Deleted     bool      // a delete marker; JSON is nil
	// Method is the interaction that made this version: "POST", "PUT",
	// "PATCH" or "DELETE" (history's request.method).
	Method string
	// JSON is the resource exactly as served.
	JSON []byte
	// Hash is a digest of the content without server-owned meta, used to
	// skip no-op updates.
	Hash string
	// Patient is the id of the Patient whose compartment holds this
	// resource ("" when none). For a Patient it is its own id.
	Patient string
	// Security holds meta.security (and for documents securityLabel) as
	// "system|code".
	Security []string
	// Org is the Organization id of the integration engine that wrote it.
	Org string
	// Author is the token subject that wrote it.
	Author string
	// Keys are exact-match search keys by index name, e.g.
	// "identifier" → {"sys|val", "val"} (conventions: package search).
	Keys map[string][]string
	// Ranges are numeric search intervals by index name (dates in µs).
	Ranges map[string][]Range
	// SortStr and SortNum are the values _sort orders by, per parameter:
	// a string, or the [lowest lo, highest hi] of the parameter's ranges.
	SortStr map[string]string
	SortNum map[string][2]float64
	// Blob, when set, holds the content of this version outside its JSON
	// (a Binary uploaded raw: its JSON has no data element).
	Blob *BlobRef
}

// Cursor is a position in a newest-first history listing.
type Cursor struct {
	LastUpdated time.Time
	Type        string
	ID          string
	VersionID   int64
}

// HistoryQuery selects versions, newest first.
type HistoryQuery struct {
	Type  string // "" for system history
	ID    string // "" for type or system history
	Since time.Time
	// Before, when set, returns only versions strictly older than it
	// (keyset paging: later pages are stable while writes continue).
	Before *Cursor
	Limit  int
}

// Condition is one search condition: the key must hold one of Values.
// Conditions of a query are ANDed.
type Condition struct {
	Key    string // "_id" or a key of Version.Keys
	Values []string
}

// Query selects current, non-deleted versions of one type.
type Query struct {
	Type string
	// Filter selects; Conditions (equalities) are ANDed with it.
	Filter     Filter
	Conditions []Condition
	// Sort orders the results; the logical id always breaks ties, so
	// the order is total.
	Sort []SortKey
	// After, when set, returns only results strictly after this position
	// in the Sort order (keyset paging). Before returns the Limit results
	// that come just before it (the previous page), in Sort order.
	After  *Position
	Before *Position
	Limit  int
}

// Position is a place in a sorted result: the sort values of a result
// and its id, as returned by PositionOf.
type Position struct {
	Values []string // one per sort key, encoded by SortValue
	ID     string
}

// Where returns the query's whole filter (Filter AND Conditions).
func (q Query) Where() Filter {
	if len(q.Conditions) == 0 {
		return q.Filter
	}
	fs := []Filter{q.Filter}
	for _, c := range q.Conditions {
		fs = append(fs, Eq(c.Key, c.Values...))
	}
	return And(fs...)
}

// Store keeps resources. All methods are safe for concurrent use.
type Store interface {
	// Read returns the current version. ErrNotFound when the resource
	// never existed; when its current version is a delete marker it
	// returns that marker and an error of kind ErrGone.
	Read(ctx context.Context, typ, id string) (*Version, error)
	// VRead returns one version; ErrNotFound when there is no such version.
	VRead(ctx context.Context, typ, id string, vid int64) (*Version, error)
	// Put stores v as the new current version. v.VersionID must be the
	// current version + 1 (1 for a new resource); when another writer got
	// there first it returns ErrConflict and stores nothing.
	Put(ctx context.Context, v *Version) error
	// Commit stores several versions atomically: either all of them
	// become current or none does, for readers and across a crash. Each
	// version follows the rule of Put (VersionID = current + 1), and a
	// resource appears at most once. ErrConflict when any loses a race.
	Commit(ctx context.Context, vs []*Version) error
	// Append stores write-once resources in bulk: each version is version
	// 1 of an id never used before and never written again (AuditEvents).
	// One insert for all of them: each is stored whole or not at all, the
	// group is not atomic. They are read, vread (version 1) and searched
	// like any resource, but have no history entries (an immutable record's
	// history says nothing). ErrConflict when an id exists.
	Append(ctx context.Context, vs []*Version) error
	// Reindex replaces the search fields (Keys, Ranges, SortStr,
	// SortNum, Patient) of the current version v.Type/v.ID if it is still
	// version v.VersionID; it makes no new version. ErrConflict when the
	// resource moved on.
	Reindex(ctx context.Context, v *Version) error
	// History lists versions newest first.
	History(ctx context.Context, q HistoryQuery) ([]*Version, error)
	// Count counts versions matching the history query (ignoring Before/Limit).
	CountHistory(ctx context.Context, q HistoryQuery) (int64, error)
	// Find returns current, non-deleted versions matching q, in q.Sort
	// order (then by id), at most q.Limit.
	Find(ctx context.Context, q Query) ([]*Version, error)
	// Count counts current, non-deleted versions matching q (ignoring
	// Sort, After and Limit).
	Count(ctx context.Context, q Query) (int64, error)
	// Search is Find and Count in one pass: the page q selects and the
	// number of all matches.
	Search(ctx context.Context, q Query) ([]*Version, int64, error)
	// Claim atomically records key → value if key is free and returns
	// ("", nil). If key is taken it returns the value it holds.
	Claim(ctx context.Context, key, value string) (holder string, err error)
	// Release removes key if it still holds value.
	Release(ctx context.Context, key, value string) error
	// Blobs keep large contents in chunks (see blob.go).
	Blobs
	// Ping checks the engine is reachable.
	Ping(ctx context.Context) error
	// Close releases resources.
	Close(ctx context.Context) error
}
