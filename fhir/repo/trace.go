package repo

import (
	"context"
	"sync"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/store"
)

// Touch is one access to a record's data, for the audit trail: the repo
// notes one on every path that returns, writes or refuses patient data;
// the REST layer turns them into AuditEvents and stores them before the
// response leaves (package audit). It holds no content: the interaction,
// the resource, the patient and the outcome.
type Touch struct {
	// Interaction is the REST interaction: read, vread, search-type,
	// history-instance, history-type, history-system, create, update,
	// patch, delete, or operation (with Operation: $everything, $close…).
	Interaction string
	Operation   string
	Type, ID    string // the resource ("" ID for a search of Type)
	Patient     string // the record touched
	// Refused is the status of a refused attempt (403, 404, 422…); 0 on
	// success.
	Refused int
	// Secret is the invisibility label of the touched data
	// (INVISIBLE_PATIENT or INVISIBLE_REPRESENTANTS_LEGAUX, as
	// "system|code"; "" for none): the trace carries it, so that it is
	// hidden from whoever the data is hidden from.
	Secret string
}

// Touches collects the touches of one request.
type Touches struct {
	mu   sync.Mutex
	list []Touch
	seen map[Touch]bool
}

type touchesKey struct{}

// WithTouches returns a context whose repo calls note their touches in
// the returned collector.
func WithTouches(ctx context.Context) (context.Context, *Touches) {
	t := &Touches{seen: map[Touch]bool{}}
	return context.WithValue(ctx, touchesKey{}, t), t
}

// Take returns the touches noted so far and forgets them.
func (t *Touches) Take() []Touch {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.list
	t.list = nil
	return out
}

// touch notes t (once per request) when the context collects touches.
func touch(ctx context.Context, t Touch) {
	c, _ := ctx.Value(touchesKey{}).(*Touches)
	if c == nil || t.Patient == "" || t.Type == "AuditEvent" {
		return // no trail, no record touched, or reading the traces themselves
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[t] {
		return
	}
	c.seen[t] = true
	c.list = append(c.list, t)
}

// touchVersions notes an access to each record of vs: reads note the
// resource, searches one touch per record whose data was returned.
func touchVersions(ctx context.Context, interaction, op string, vs []*store.Version, perResource bool) {
	for _, v := range vs {
		t := Touch{Interaction: interaction, Operation: op, Type: v.Type, Patient: v.Patient, Secret: secretOf(v)}
		if perResource {
			t.ID = v.ID
		}
		if v.Type == "Patient" && t.Patient == "" {
			t.Patient = v.ID
		}
		touch(ctx, t)
	}
}

// touchWrites notes the stored versions of a write.
func touchWrites(ctx context.Context, vs []*store.Version) {
	for _, v := range vs {
		in := map[string]string{"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[v.Method]
		switch {
		case v.Deleted:
			in = "delete"
		case v.VersionID == 1:
			in = "create" // an update that creates
		}
		if in == "" {
			in = "update"
		}
		touchVersions(ctx, in, "", []*store.Version{v}, true)
	}
}

// touchRefused notes a refused attempt on a record.
func touchRefused(ctx context.Context, interaction string, v *store.Version, status int) {
	if v == nil {
		return
	}
	p := v.Patient
	if v.Type == "Patient" && p == "" {
		p = v.ID
	}
	touch(ctx, Touch{Interaction: interaction, Type: v.Type, ID: v.ID, Patient: p, Refused: status, Secret: secretOf(v)})
}

// secretOf returns the strongest invisibility label of v.
func secretOf(v *store.Version) string {
	secret := ""
	for _, l := range v.Security {
		switch l {
		case access.LabelInvisiblePatient:
			return l
		case access.LabelInvisibleReps:
			secret = l
		}
	}
	return secret
}
