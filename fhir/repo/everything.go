package repo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/store"
)

// EverythingQuery is a page of Patient/{id}/$everything.
type EverythingQuery struct {
	Patient string
	Since   time.Time // zero: everything
	Types   []string  // nil: every type
	Count   int
	Cursor  string // "" for the first page, else EverythingPage.Next
}

// EverythingPage is one page of the record.
type EverythingPage struct {
	// Matches are the Patient (first page) and the resources of its
	// compartment, type by type (Patient first, then by type name), by id.
	Matches []*store.Version
	// Included are resources outside the compartment that the page's
	// matches refer to (practitioners, organizations, locations,
	// medications, the Binary of a document...), once per page.
	Included []*store.Version
	// Next is the cursor of the next page; "" on the last.
	Next string
}

// recordTypes are the types of the record in $everything order: Patient,
// then every type of the Patient compartment by name.
func (r *Repo) recordTypes() []string {
	var out []string
	for _, t := range r.reg.Types() {
		if t != "Patient" && len(r.reg.OwnerParam(t)) > 0 {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return append([]string{"Patient"}, out...)
}

// Everything returns one page of the record of q.Patient: the Patient,
// every resource it owns (the store's per-patient layout: each stored
// version carries its owning patient, so this costs what the record does),
// and what they refer to outside the record. Every resource goes through
// the access policy; a hidden one is absent.
func (r *Repo) Everything(ctx context.Context, req *access.Requester, q EverythingQuery) (EverythingPage, error) {
	var page EverythingPage
	if err := checkID("Patient", q.Patient); err != nil {
		return page, err
	}
	if err := r.policy.Allow(req, access.Search, "Patient"); err != nil {
		return page, err
	}
	sc, err := r.scope(ctx, req)
	if err != nil {
		return page, err
	}
	// The Patient must exist and be visible, else 404 like a read.
	pat, err := r.lookup(ctx, "Patient", q.Patient)
	if err != nil {
		return page, err
	}
	if pat == nil || !sc.Visible(pat) {
		touchRefused(ctx, "operation", pat, 404)
		return page, notFound("Patient", q.Patient)
	}
	types := r.recordTypes()
	if q.Types != nil {
		types = slices.DeleteFunc(types, func(t string) bool { return !slices.Contains(q.Types, t) })
	}
	start, after, err := decodeEverythingCursor(q.Cursor, len(types))
	if err != nil {
		return page, err
	}
	count := q.Count
	for i := start; i < len(types) && page.Next == ""; i++ {
		typ := types[i]
		f := store.InPatient(q.Patient)
		if typ == "Patient" {
			f = store.Eq("_id", q.Patient)
		}
		if !q.Since.IsZero() {
			plan, err := r.reg.Compile(ctx, typ, url.Values{"_lastUpdated": {"ge" + q.Since.UTC().Format(time.RFC3339Nano)}}, "", true, r.finder(req))
			if err != nil {
				return page, err
			}
			f = store.And(f, plan.Filter)
		}
		f = store.Restrict(f, sc.Filter(typ))
		last := ""
		if i == start {
			last = after
		}
		room := count - len(page.Matches)
		sq := store.Query{Type: typ, Filter: f, Limit: room + 1}
		if last != "" {
			sq.After = &store.Position{ID: last}
		}
		vs, err := r.st.Find(ctx, sq)
		if err != nil {
			return page, storeErr(err, typ, "")
		}
		for j, v := range vs {
			if j == room {
				// One more result exists: the next page starts after the
				// last one looked at (kept or hidden).
				page.Next = encodeEverythingCursor(i, last)
				break
			}
			last = v.ID
			if w := sc.View(v); w != nil {
				page.Matches = append(page.Matches, w)
			}
		}
	}
	page.Included, err = r.referencedOutside(ctx, sc, page.Matches)
	touch(ctx, Touch{Interaction: "operation", Operation: "$everything", Type: "Patient", ID: q.Patient, Patient: q.Patient})
	return page, err
}

func encodeEverythingCursor(typeIndex int, lastID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(typeIndex) + "." + lastID))
}

func decodeEverythingCursor(c string, ntypes int) (int, string, error) {
	if c == "" {
		return 0, "", nil
	}
	bad := outcome.New(outcome.Invalid, "invalid", "_cursor is not a page this server issued").WithExpression("_cursor")
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", bad
	}
	i, id, ok := strings.Cut(string(raw), ".")
	n, err := strconv.Atoi(i)
	if !ok || err != nil || n < 0 || n >= ntypes || (id != "" && !resource.ValidID(id)) {
		return 0, "", bad
	}
	return n, id, nil
}

// referencedOutside reads the resources outside the Patient compartment
// that vs refer to (references, and a document's attachment.url naming a
// Binary), each once, visible ones only.
func (r *Repo) referencedOutside(ctx context.Context, sc access.Scope, vs []*store.Version) ([]*store.Version, error) {
	seen := map[string]bool{}
	var refs []string
	add := func(ref string) {
		typ, id, ok := strings.Cut(ref, "/")
		if !ok || strings.Contains(id, "/") || !resource.IsType(typ) || !resource.ValidID(id) ||
			typ == "Patient" || len(r.reg.OwnerParam(typ)) > 0 || seen[ref] {
			return
		}
		seen[ref] = true
		refs = append(refs, ref)
	}
	for _, v := range vs {
		_, _ = resource.RewriteReferences(v.JSON, func(ref string) (string, error) {
			add(ref)
			return ref, nil
		})
		if v.Type == "DocumentReference" {
			var doc struct {
				Content []struct {
					Attachment struct {
						URL string `json:"url"`
					} `json:"attachment"`
				} `json:"content"`
			}
			if json.Unmarshal(v.JSON, &doc) == nil {
				for _, c := range doc.Content {
					add(c.Attachment.URL)
				}
			}
		}
	}
	var out []*store.Version
	for _, ref := range refs {
		typ, id, _ := strings.Cut(ref, "/")
		v, err := r.lookup(ctx, typ, id)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		w, err := r.shown(ctx, sc, v)
		if err != nil {
			return nil, err
		}
		if w != nil {
			out = append(out, w)
		}
	}
	return out, nil
}
