package rest_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/profiles"
	"github.com/dossier-fhir/dossier/store"
)

// dmpPolicy builds the secrecy policy for a test server.
func dmpPolicy(tb testing.TB) func(st store.Store) access.Policy {
	m, err := access.LoadMatrix(profiles.FS, "access-matrix.json")
	if err != nil {
		tb.Fatal(err)
	}
	return func(st store.Store) access.Policy {
		return access.NewDMP(st, m, func(t string) bool { return t != "Patient" && len(registry.OwnerParam(t)) > 0 })
	}
}

// BenchmarkPolicy measures what medical secrecy costs: two servers over
// the same data on the same embedded engine, one with the DMP policy
// (an authorised médecin: a Consent permit, the access matrix, the label
// rules, all in the store filter or checked on the read version), one
// with the interim superuser rule (no filter). 16 concurrent clients:
//   - read: GET /fhir/Observation/{id} of the record;
//   - search: GET /fhir/Observation?patient={id}&_count=20 (the
//     patient-scoped everyday question).
//
// BENCHMARKS.md reports policy/superuser as a ratio per path.
func BenchmarkPolicy(b *testing.B) {
	db := fmt.Sprintf("bench-policy-%d", dbSeq.Add(1))
	sec := newEnvWith(b, setup{db: db, policy: dmpPolicy(b)})
	sup := newEnvWith(b, setup{db: db})
	batches, txs := readSample(b)
	for _, bt := range append(batches, txs[0]) {
		if r := sup.Do("POST", "", string(bt)); r.Status != http.StatusOK {
			b.Fatalf("load: %d %s", r.Status, r.Body)
		}
	}
	var pid string
	var obs []string
	for _, typ := range []string{"Patient", "Observation"} {
		var bd struct {
			Entry []struct {
				Resource struct{ ID string } `json:"resource"`
			} `json:"entry"`
		}
		r := sup.Do("GET", "/"+typ+"?_count=1000&_elements=id", "")
		if err := json.Unmarshal(r.Body, &bd); err != nil || len(bd.Entry) == 0 {
			b.Fatalf("%s: %d %s", typ, r.Status, r.Body)
		}
		for _, en := range bd.Entry {
			if typ == "Patient" {
				pid = en.Resource.ID
			} else {
				obs = append(obs, en.Resource.ID)
			}
		}
	}
	// The médecin, authorised by the patient.
	r := sup.Do("PUT", "/Practitioner/bench-doc", `{"resourceType":"Practitioner","id":"bench-doc",`+
		`"identifier":[{"system":"https://rpps.esante.gouv.fr","value":"10101010101"}]}`)
	if r.Status >= 300 {
		b.Fatal(r.Body)
	}
	r = sup.Do("POST", "/Consent", `{"resourceType":"Consent","status":"active",`+
		`"scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},`+
		`"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],`+
		`"patient":{"reference":"Patient/`+pid+`"},`+
		`"provision":{"type":"permit","actor":[{"role":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ParticipationType","code":"PRCP"}]},"reference":{"reference":"Practitioner/bench-doc"}}]}}`)
	if r.Status != http.StatusCreated {
		b.Fatal(r.Body)
	}
	doc := "Bearer " + sec.Token(access.Claims{Role: "professional", RPPS: "10101010101", Profession: "10", Subject: "doc"})
	root := "Bearer " + sup.token
	// Both see the same record.
	a := sec.Do("GET", "/Observation?patient="+pid+"&_summary=count", "", "Authorization", doc)
	c := sup.Do("GET", "/Observation?patient="+pid+"&_summary=count", "", "Authorization", root)
	var ta, tc struct{ Total int }
	_ = json.Unmarshal(a.Body, &ta)
	_ = json.Unmarshal(c.Body, &tc)
	if ta.Total == 0 || ta.Total != tc.Total {
		b.Fatalf("the benchmark's requesters must see the same record: %s / %s", a.Body, c.Body)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	get := func(b *testing.B, url, auth string) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", auth)
		res, err := client.Do(req)
		if err != nil {
			b.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Errorf("%s: %d", url, res.StatusCode)
		}
	}
	for _, path := range []string{"read", "search"} {
		for _, who := range []string{"superuser", "policy"} {
			e, auth := sup, root
			if who == "policy" {
				e, auth = sec, doc
			}
			b.Run(path+"/"+who, func(b *testing.B) {
				var n atomic.Int64
				b.SetParallelism(16 / max(1, runtimeProcs()))
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := int(n.Add(1) * 7919)
						if path == "read" {
							get(b, e.URL+"/Observation/"+obs[i%len(obs)], auth)
						} else {
							get(b, e.URL+"/Observation?patient="+pid+"&_count=20", auth)
						}
					}
				})
			})
		}
	}
}
