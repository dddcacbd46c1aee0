package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/store"
)

// DutyQuery asks the doctors' duty report (L1111-14/15): for a
// practitioner (RPPS) or an organization and a period, the encounters
// where the doctor took part, and whether the doctor consulted or updated
// that patient's record within Window around the encounter's start.
type DutyQuery struct {
	RPPS         string // the practitioner, or
	Organization string // an Organization id (encounters it provided)
	Start, End   time.Time
	Window       time.Duration
}

// DutyEncounter is one encounter of the report.
type DutyEncounter struct {
	Encounter string // "Encounter/id"
	Patient   string
	Start     time.Time
	Done      bool // consulted or updated within the window
}

// DutyReport is the result.
type DutyReport struct {
	Query      DutyQuery
	Encounters []DutyEncounter
}

// consultOrUpdate are the traced interactions that count: reading the
// record (read, vread, searches, history, $everything) or writing in it.
var consultOrUpdate = []string{"read", "vread", "search-type", "search-system", "history-instance", "history-type",
	"operation", "create", "update", "patch"}

// Duty computes the report from the encounters and the traces. Only the
// doctor himself (his RPPS), the host admin, and for an organization its
// integration engine (the organization's own role) may run it.
func (r *Repo) Duty(ctx context.Context, req *access.Requester, q DutyQuery) (*DutyReport, error) {
	if req == nil {
		return nil, outcome.New(outcome.Unauthenticated, "login", "a bearer token is required")
	}
	sc, err := r.scope(ctx, req)
	if err != nil {
		return nil, err
	}
	if !sc.MayReport(q.RPPS, q.Organization) {
		return nil, outcome.New(outcome.Forbidden, "forbidden",
			"the duty report is run by the doctor himself, his organization, or the host's administrator")
	}
	if (q.RPPS == "") == (q.Organization == "") {
		return nil, outcome.New(outcome.Invalid, "required", "name either a practitioner (rpps) or an organization")
	}
	if !q.End.After(q.Start) {
		return nil, outcome.New(outcome.Invalid, "value", "the period is empty")
	}
	// The encounters of the period, by participant or service provider.
	params := url.Values{"date": {"ge" + q.Start.UTC().Format(time.RFC3339), "lt" + q.End.UTC().Format(time.RFC3339)}}
	var rpps []string // whose traces count, per encounter below
	if q.RPPS != "" {
		refs, err := r.practitionerRefs(ctx, []string{q.RPPS})
		if err != nil {
			return nil, err
		}
		if len(refs) == 0 {
			return &DutyReport{Query: q}, nil
		}
		params.Set("participant", strings.Join(refs, ","))
		rpps = []string{q.RPPS}
	} else {
		params.Set("service-provider", "Organization/"+q.Organization)
	}
	plan, err := r.reg.Compile(ctx, "Encounter", params, "", true, nil)
	if err != nil {
		return nil, err
	}
	encs, err := r.st.Find(ctx, store.Query{Type: "Encounter", Filter: plan.Filter})
	if err != nil {
		return nil, storeErr(err, "Encounter", "")
	}
	rep := &DutyReport{Query: q}
	for _, e := range encs {
		var enc struct {
			Period struct {
				Start string `json:"start"`
			} `json:"period"`
			Participant []struct {
				Individual struct {
					Reference string `json:"reference"`
				} `json:"individual"`
			} `json:"participant"`
		}
		if json.Unmarshal(e.JSON, &enc) != nil || e.Patient == "" {
			continue
		}
		start, err := parseFHIRTime(enc.Period.Start)
		if err != nil || start.Before(q.Start) || !start.Before(q.End) {
			continue // the period search also finds encounters still open since before
		}
		who := rpps
		if q.Organization != "" {
			// The organization's doctors: the encounter's participants.
			var refs []string
			for _, p := range enc.Participant {
				refs = append(refs, p.Individual.Reference)
			}
			if who, err = r.rppsOf(ctx, refs); err != nil {
				return nil, err
			}
		}
		done := false
		if len(who) > 0 {
			tp, err := r.reg.Compile(ctx, "AuditEvent", url.Values{
				"date":    {"ge" + start.Add(-q.Window).UTC().Format(time.RFC3339), "le" + start.Add(q.Window).UTC().Format(time.RFC3339)},
				"altid":   {strings.Join(who, ",")},
				"outcome": {"0"},
				"subtype": {strings.Join(consultOrUpdate, ",")},
			}, "", true, nil)
			if err != nil {
				return nil, err
			}
			found, err := r.st.Find(ctx, store.Query{Type: "AuditEvent",
				Filter: store.And(store.InPatient(e.Patient), tp.Filter), Limit: 1})
			if err != nil {
				return nil, storeErr(err, "AuditEvent", "")
			}
			done = len(found) > 0
		}
		rep.Encounters = append(rep.Encounters, DutyEncounter{Encounter: "Encounter/" + e.ID, Patient: e.Patient, Start: start, Done: done})
	}
	slices.SortFunc(rep.Encounters, func(a, b DutyEncounter) int { return a.Start.Compare(b.Start) })
	return rep, nil
}

// practitionerRefs returns "Practitioner/<id>" of the Practitioners
// carrying these RPPS.
func (r *Repo) practitionerRefs(ctx context.Context, rpps []string) ([]string, error) {
	vs, err := r.st.Find(ctx, store.Query{Type: "Practitioner", Filter: store.Eq("identifier", access.RPPSIdentifiers(rpps...)...)})
	if err != nil {
		return nil, storeErr(err, "Practitioner", "")
	}
	var out []string
	for _, v := range vs {
		out = append(out, "Practitioner/"+v.ID)
	}
	return out, nil
}

// rppsOf returns the RPPS numbers of the Practitioners refs name.
func (r *Repo) rppsOf(ctx context.Context, refs []string) ([]string, error) {
	var out []string
	for _, ref := range refs {
		id, ok := strings.CutPrefix(ref, "Practitioner/")
		if !ok {
			continue
		}
		v, err := r.lookup(ctx, "Practitioner", id)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		var p struct {
			Identifier []struct{ System, Value string } `json:"identifier"`
		}
		if json.Unmarshal(v.JSON, &p) != nil {
			continue
		}
		for _, i := range p.Identifier {
			switch i.System {
			case access.SysRPPS:
				out = append(out, i.Value)
			case access.SysPSNational:
				out = append(out, strings.TrimPrefix(i.Value, "8"))
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func parseFHIRTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not a FHIR date")
}

// MeasureReport renders the report as a FHIR MeasureReport: the ratio of
// encounters with a consultation or update as measureScore, the
// encounters (initial population) and those with one (numerator), and
// the encounters without one as a contained List named by the
// "not-consulted" population's subjectResults.
func (d *DutyReport) MeasureReport(now time.Time) ([]byte, error) {
	var missing []map[string]any
	done := 0
	for _, e := range d.Encounters {
		if e.Done {
			done++
		} else {
			missing = append(missing, map[string]any{"item": map[string]string{"reference": e.Encounter}})
		}
	}
	score := 1.0
	if len(d.Encounters) > 0 {
		score = float64(done) / float64(len(d.Encounters))
	}
	subject := map[string]any{"identifier": map[string]string{"system": access.SysRPPS, "value": d.Query.RPPS}}
	if d.Query.Organization != "" {
		subject = map[string]any{"reference": "Organization/" + d.Query.Organization}
	}
	pop := func(code string, n int) map[string]any {
		return map[string]any{"code": map[string]any{"coding": []any{map[string]string{
			"system": "http://terminology.hl7.org/CodeSystem/measure-population", "code": code}}}, "count": n}
	}
	notDone := map[string]any{"code": map[string]any{"coding": []any{map[string]string{
		"system": CanonicalBase + "/CodeSystem/duty-population", "code": "not-consulted"}},
		"text": "encounters without a consultation or update of the record within the window"},
		"count": len(missing), "subjectResults": map[string]string{"reference": "#not-consulted"}}
	list := map[string]any{"resourceType": "List", "id": "not-consulted", "status": "current", "mode": "snapshot",
		"title": "Encounters without a consultation or update of the record"}
	if len(missing) > 0 {
		list["entry"] = missing
	}
	mr := map[string]any{
		"resourceType": "MeasureReport",
		"contained":    []any{list},
		"status":       "complete",
		"type":         "summary",
		"measure":      CanonicalBase + "/Measure/dmp-duty",
		"subject":      subject,
		"date":         now.UTC().Format(time.RFC3339),
		"period":       map[string]string{"start": d.Query.Start.UTC().Format(time.RFC3339), "end": d.Query.End.UTC().Format(time.RFC3339)},
		"extension": []any{map[string]any{"url": CanonicalBase + "/StructureDefinition/duty-window",
			"valueDuration": map[string]any{"value": d.Query.Window.Hours() / 24, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}}},
		"group": []any{map[string]any{
			"population":   []any{pop("initial-population", len(d.Encounters)), pop("numerator", done), notDone},
			"measureScore": map[string]any{"value": json.Number(fmt.Sprintf("%.4f", score))},
		}},
	}
	return json.Marshal(mr)
}
