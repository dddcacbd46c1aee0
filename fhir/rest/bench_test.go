package rest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// benchDocs is how many Patients the read benchmarks load.
const benchDocs = 2000

// loadPatients PUTs n Patients through the API and returns their ids.
func loadPatients(b *testing.B, e *env, n int) []string {
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("bench-%05d", i)
		body := fmt.Sprintf(`{"resourceType":"Patient","id":"%s","gender":"female","birthDate":"1970-01-01",`+
			`"identifier":[{"system":"urn:oid:1.2.250.1.213.1.4.10","value":"%015d"}],`+
			`"name":[{"family":"Martin","given":["Claire"]}]}`, ids[i], i)
		if r := e.Do("PUT", "/Patient/"+ids[i], body); r.Status != http.StatusCreated {
			b.Fatalf("load: %d %s", r.Status, r.Body)
		}
	}
	return ids
}

// BenchmarkRead compares, on the same embedded engine and the same data,
// 16 concurrent clients doing:
//   - fhir-read: GET /fhir/Patient/{id} over HTTP (JWT check, access
//     hook, store read, response), and
//   - driver-findone: a raw mongo-driver FindOne({_id}) on the collection
//     behind it.
//
// BENCHMARKS.md reports fhir-read as a ratio of driver-findone.
func BenchmarkRead(b *testing.B) {
	e := newEnv(b)
	ids := loadPatients(b, e, benchDocs)
	coll := e.Store.Database().Collection("r_Patient")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	auth := "Bearer " + e.token

	b.Run("driver-findone", func(b *testing.B) {
		var n atomic.Int64
		b.SetParallelism(16 / max(1, runtimeProcs()))
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				id := ids[int(n.Add(1)*7919)%len(ids)]
				var raw bson.Raw
				if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&raw); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("fhir-read", func(b *testing.B) {
		var n atomic.Int64
		b.SetParallelism(16 / max(1, runtimeProcs()))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := ids[int(n.Add(1)*7919)%len(ids)]
				req, _ := http.NewRequest("GET", e.URL+"/Patient/"+id, nil)
				req.Header.Set("Authorization", auth)
				res, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK || !strings.Contains(string(body), id) {
					b.Errorf("read: %d", res.StatusCode)
					return
				}
			}
		})
	})
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }
