package trail_test

// BenchmarkTrail: the trail alone (no HTTP), grouped or not, through
// Append or the journaled Commit, against a raw driver FindOne.

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/fhir/trail"
	"github.com/dossier-fhir/dossier/store"
)

// viaCommit writes the trail's batches with the journaled Commit instead of Append.
type viaCommit struct {
	store.Store
	writes atomic.Int64
}

func (c *viaCommit) Append(ctx context.Context, vs []*store.Version) error {
	c.writes.Add(1)
	return c.Store.Commit(ctx, vs)
}

func BenchmarkTrail(b *testing.B) {
	ctx := context.Background()
	ms, rp := testRepo(b, "bench")
	const docs = 2000
	ids := make([]string, docs)
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := range ids {
		ids[i] = fmt.Sprintf("p%05d", i)
		js := fmt.Sprintf(`{"resourceType":"Patient","id":%q,"meta":{"versionId":"1","lastUpdated":%q},"gender":"female"}`, ids[i], now.Format(time.RFC3339Nano))
		if err := ms.Put(ctx, &store.Version{Type: "Patient", ID: ids[i], VersionID: 1, LastUpdated: now, Method: "POST", JSON: []byte(js), Patient: ids[i]}); err != nil {
			b.Fatal(err)
		}
	}
	coll := ms.Database().Collection("r_Patient")
	req := &access.Requester{Role: access.RoleProfessional, RPPS: "10000000001", Profession: "10", Mode: access.ModeNormal, Subject: "s", Org: "o1"}
	par := 16 / max(1, runtime.GOMAXPROCS(0))

	b.Run("driver-findone", func(b *testing.B) {
		var n atomic.Int64
		b.SetParallelism(par)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				var raw bson.Raw
				if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: ids[int(n.Add(1)*7919)%docs]}}).Decode(&raw); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	run := func(name string, st interface {
		store.Store
	}, writes *atomic.Int64, maxBatch int) {
		b.Run(name, func(b *testing.B) {
			tr := trail.New(st, trail.Options{Index: rp.Index, MaxBatch: maxBatch})
			defer tr.Close()
			w0 := writes.Load()
			var n atomic.Int64
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					p := ids[int(n.Add(1)*7919)%docs]
					tc := repo.Touch{Interaction: "read", Type: "Patient", ID: p, Patient: p}
					if err := tr.Trace(ctx, req, []repo.Touch{tc}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(n.Load())/float64(max(1, writes.Load()-w0)), "events/write")
		})
	}
	ap := &countingWrites{Store: ms}
	cm := &viaCommit{Store: ms}
	run("trail-append-grouped", ap, &ap.writes, 0)
	run("trail-append-maxbatch1", ap, &ap.writes, 1)
	run("trail-commit-grouped", cm, &cm.writes, 0)
	run("trail-commit-maxbatch1", cm, &cm.writes, 1)
}
