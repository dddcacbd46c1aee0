package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/fhir/resource"
)

// NotifyEmergency tells the patient and the médecin traitant that a
// professional opened the record in an emergency access mode (R1111-48):
// a Communication (category notification) in the patient's record, with
// the patient and the médecin traitant as recipients. It is sent once per
// emergency session — the token (its jti, else its subject and issue
// time) and the patient — however many requests the session makes; a
// claim in the store makes that hold across requests and instances.
// The patient and the médecin traitant list them with
// Communication?patient=…&category=notification.
func (r *Repo) NotifyEmergency(ctx context.Context, req *access.Requester, patient string) error {
	if req == nil || req.Role != access.RoleProfessional ||
		(req.Mode != access.ModeBrisDeGlace && req.Mode != access.ModeCentre15) || !resource.ValidID(patient) {
		return nil
	}
	session := req.TokenID
	if session == "" {
		session = req.Subject + "@" + req.IssuedAt.UTC().Format(time.RFC3339)
	}
	key := "emergency:" + req.RPPS + ":" + patient + ":" + session
	id := NewID()
	holder, err := r.st.Claim(ctx, key, id)
	if err != nil {
		return storeErr(err, "Communication", "")
	}
	if holder != "" {
		return nil // this session's notification exists
	}
	recipients := []map[string]string{{"reference": "Patient/" + patient}}
	if pv, err := r.lookup(ctx, "Patient", patient); err == nil && pv != nil {
		var p struct {
			GeneralPractitioner []struct {
				Reference string `json:"reference"`
			} `json:"generalPractitioner"`
		}
		if json.Unmarshal(pv.JSON, &p) == nil {
			for _, gp := range p.GeneralPractitioner {
				if strings.HasPrefix(gp.Reference, "Practitioner/") {
					recipients = append(recipients, map[string]string{"reference": gp.Reference})
				}
			}
		}
	}
	mode := map[string]string{access.ModeBrisDeGlace: "bris de glace", access.ModeCentre15: "centre 15 (SAMU)"}[req.Mode]
	now := r.now().UTC()
	text := fmt.Sprintf("Accès en urgence (%s) à votre dossier le %s par le professionnel de santé RPPS %s (profession %s).",
		mode, now.Format("02/01/2006 à 15:04 UTC"), req.RPPS, req.Profession)
	body, _ := json.Marshal(map[string]any{
		"resourceType": "Communication",
		"status":       "completed",
		"category": []any{map[string]any{"coding": []any{map[string]string{
			"system": "http://terminology.hl7.org/CodeSystem/communication-category", "code": "notification"}}}},
		"reasonCode": []any{map[string]any{"coding": []any{map[string]string{
			"system": access.SysActReason, "code": map[string]string{access.ModeBrisDeGlace: "BTG", access.ModeCentre15: "ETREAT"}[req.Mode]}}}},
		"subject":   map[string]string{"reference": "Patient/" + patient},
		"recipient": recipients,
		"sent":      now.Format(time.RFC3339),
		"payload":   []any{map[string]string{"contentString": text}},
	})
	p, err := r.parser.Parse(body)
	if err != nil {
		return outcome.Wrap(err, outcome.Internal, "exception", "emergency notification invalid")
	}
	// Written by the server itself: no requester, no write rules.
	v, err := r.build(nil, p, id, 1, "POST", nil)
	if err != nil {
		return err
	}
	if err := r.st.Put(ctx, v); err != nil {
		_ = r.st.Release(context.WithoutCancel(ctx), key, id)
		return storeErr(err, "Communication", id)
	}
	return nil
}
