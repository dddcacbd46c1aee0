package trail

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/fhir/search"
	"github.com/dossier-fhir/dossier/profiles"
	"github.com/dossier-fhir/dossier/store"
	"github.com/dossier-fhir/dossier/store/embedded"
	smongo "github.com/dossier-fhir/dossier/store/mongo"
)

// testRepo returns a store on a fresh embedded engine and a repo on it
// (whose indexer the trail uses).
func testRepo(tb testing.TB, db string) (*smongo.Store, *repo.Repo) {
	tb.Helper()
	ms := embedded.TestStore(tb, db)
	reg, err := search.LoadRegistry(profiles.FS, profiles.SearchParameterFiles...)
	if err != nil {
		tb.Fatal(err)
	}
	parser, err := resource.NewParser()
	if err != nil {
		tb.Fatal(err)
	}
	return ms, repo.New(ms, parser, reg, access.Interim{})
}

// indexTrail returns a trail on a fresh embedded engine, indexing with a
// repo on it, and that repo.
func indexTrail(tb testing.TB, db string) (*Trail, *repo.Repo) {
	tb.Helper()
	ms, rp := testRepo(tb, db)
	tr := New(ms, Options{Index: rp.Index})
	tb.Cleanup(tr.Close)
	return tr, rp
}

// TestIndexTemplate: the search fields an event gets from its shape's
// template are exactly those the indexer gives the event itself, for
// every kind of requester and touch, on the first event of a shape and
// on later ones, including ids equal to constants of the event, to each
// other, or to the requester's ids.
func TestIndexTemplate(t *testing.T) {
	tr, rp := indexTrail(t, "trailtpl")

	reqs := []*access.Requester{
		nil,
		{Role: access.RoleProfessional, RPPS: "10000000001", Profession: "10", Subject: "s1", Org: "org1"},
		{Role: access.RoleProfessional, RPPS: "10000000002", Mode: access.ModeBrisDeGlace, Subject: "s2"},
		{Role: access.RoleProfessional, RPPS: "10000000003", Profession: "60", Mode: access.ModeCentre15, Subject: "s3"},
		{Role: access.RolePatient, Patient: "p1", Subject: "ins-1"},
		{Role: access.RoleRepresentative, Patient: "1", Subject: "rep"},
		{Role: access.RoleIntegration, Org: "org1", Subject: "eai"},
		{Role: "admin", Subject: "root"},
	}
	label := "http://interopsante.org/CodeSystem/v3-ActCode|INVISIBLE_PATIENT"
	touches := []repo.Touch{
		{Interaction: "read", Type: "Observation", ID: "o1", Patient: "p1"},
		{Interaction: "read", Type: "Observation", ID: "o2", Patient: "p2"}, // same shape, other ids
		{Interaction: "read", Type: "Patient", ID: "p1", Patient: "p1"},
		{Interaction: "vread", Type: "Patient", ID: "p9", Patient: "p9"},
		{Interaction: "search-type", Type: "Observation", Patient: "p1"},
		{Interaction: "search-type", Type: "Observation", Patient: "org1"},
		{Interaction: "search-type", Type: "Organization"},
		{Interaction: "create", Type: "Observation", ID: "1", Patient: "1"},
		{Interaction: "create", Type: "Observation", ID: "2", Patient: "rest"},
		{Interaction: "update", Type: "Condition", ID: "R", Patient: "0"},
		{Interaction: "patch", Type: "Condition", ID: "a.b-c", Patient: "Patient"},
		{Interaction: "delete", Type: "DocumentReference", ID: "d1", Patient: "p1", Refused: 404},
		{Interaction: "read", Type: "DocumentReference", ID: "d2", Patient: "p1", Secret: label},
		{Interaction: "read", Type: "DocumentReference", ID: "d3", Patient: "p3", Secret: label, Refused: 403},
		{Interaction: "operation", Operation: "$everything", Type: "Patient", ID: "p1", Patient: "p1"},
		{Interaction: "read", Type: "Organization", ID: "org1"},
		{Interaction: "read", Type: "Observation", ID: "10000000001", Patient: "s1"},
		{Interaction: "read", Type: "Observation", ID: "a|b c", Patient: "p1", Refused: 404}, // not ids: indexed as they are
		{Interaction: "read", Type: "Observation", ID: "o3", Patient: "x/y", Refused: 404},
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for round := range 2 { // the second round finds every template made
		for _, req := range reqs {
			for i, tc := range touches {
				at := now.Add(time.Duration(round*len(touches)+i) * time.Second)
				got := &store.Version{Type: "AuditEvent", ID: "e", VersionID: 1, LastUpdated: at}
				want := &store.Version{Type: "AuditEvent", ID: "e", VersionID: 1, LastUpdated: at}
				if tc.Secret != "" {
					got.Security, want.Security = []string{tc.Secret}, []string{tc.Secret}
				}
				if err := tr.index(got, req, tc, at); err != nil {
					t.Fatal(err)
				}
				ev := event(req, tc, at, tr.source)
				meta := map[string]any{"versionId": "1", "lastUpdated": resource.Instant(at)}
				if tc.Secret != "" {
					sys, code := splitToken(tc.Secret)
					meta["security"] = []any{coding(sys, code)}
				}
				ev["resourceType"], ev["id"], ev["meta"] = "AuditEvent", "e", meta
				if err := rp.Index(want, ev); err != nil {
					t.Fatal(err)
				}
				for _, f := range []struct {
					name      string
					got, want any
				}{
					{"keys", got.Keys, want.Keys}, {"ranges", got.Ranges, want.Ranges},
					{"sortStr", got.SortStr, want.SortStr}, {"sortNum", got.SortNum, want.SortNum},
					{"patient", got.Patient, want.Patient},
				} {
					if !reflect.DeepEqual(f.got, f.want) {
						t.Errorf("round %d, %+v, %+v: %s\n got  %v\n want %v", round, req, tc, f.name, f.got, f.want)
					}
				}
			}
		}
	}
	if n := len(tr.tpl.m); n == 0 || n >= len(reqs)*len(touches) {
		t.Errorf("%d templates for %d events of fewer shapes", n, len(reqs)*len(touches))
	}
}

// BenchmarkIndex: the search fields of a read event, from its shape's
// template (what the trail does) and from the indexer (what it did), ids
// changing at every event.
func BenchmarkIndex(b *testing.B) {
	tr, _ := indexTrail(b, "trailtplbench")
	req := &access.Requester{Role: access.RoleProfessional, RPPS: "10000000001", Profession: "10", Subject: "s1", Org: "org1"}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for _, c := range []struct {
		name  string
		index func(*store.Version, *access.Requester, repo.Touch, time.Time) error
	}{{"template", tr.index}, {"indexer", tr.indexEvent}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := range b.N {
				id := strconv.Itoa(i)
				v := &store.Version{Type: "AuditEvent", ID: "e" + id, VersionID: 1, LastUpdated: now}
				if err := c.index(v, req, repo.Touch{Interaction: "read", Type: "Observation", ID: "o" + id, Patient: "p" + id}, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
