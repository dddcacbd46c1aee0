package rest_test

import (
	"compress/bzip2"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/store/embedded"
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
	readVsFindOne(b, newEnv(b), "fhir-read")
}

// readOps loads the read benchmarks' Patients into e and returns their
// ids and the two operations compared: a raw mongo-driver FindOne({_id})
// on the collection behind them, and GET /fhir/Patient/{id} over HTTP.
// Both run with the spare P that `dossier serve` gives the embedded
// engine's fsyncs (embedded.SpareProc).
func readOps(b *testing.B, e *env) (ids []string, findOne, read func(string) error) {
	b.Cleanup(embedded.SpareProc())
	ids = loadPatients(b, e, benchDocs)
	coll := e.Store.Database().Collection("r_Patient")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	auth := "Bearer " + e.token
	findOne = func(id string) error {
		var raw bson.Raw
		return coll.FindOne(context.Background(), bson.D{{Key: "_id", Value: id}}).Decode(&raw)
	}
	read = func(id string) error {
		req, _ := http.NewRequest("GET", e.URL+"/Patient/"+id, nil)
		req.Header.Set("Authorization", auth)
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), id) {
			return fmt.Errorf("read: %d", res.StatusCode)
		}
		return nil
	}
	return ids, findOne, read
}

// readVsFindOne runs the two sub-benchmarks of the read figures on e:
// driver-findone, and name: GET /fhir/Patient/{id} over HTTP.
func readVsFindOne(b *testing.B, e *env, name string) {
	ids, findOne, read := readOps(b, e)
	run := func(op func(string) error) func(*testing.B) {
		return func(b *testing.B) {
			var n atomic.Int64
			b.SetParallelism(16 / max(1, runtimeProcs()))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := op(ids[int(n.Add(1)*7919)%len(ids)]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
	}
	b.Run("driver-findone", run(findOne))
	b.Run(name, run(read))
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// readSample returns the bundles of testdata/synthea, batch files first.
func readSample(b *testing.B) (batches, transactions [][]byte) {
	files, _ := filepath.Glob("../../testdata/synthea/*.json.bz2")
	sort.Strings(files)
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			b.Fatal(err)
		}
		data, err := io.ReadAll(bzip2.NewReader(fh))
		fh.Close()
		if err != nil {
			b.Fatal(err)
		}
		if strings.HasPrefix(filepath.Base(f), "0-") {
			batches = append(batches, data)
		} else {
			transactions = append(transactions, data)
		}
	}
	return batches, transactions
}

// BenchmarkIngest compares, per resource, a Synthea patient transaction
// bundle POSTed over HTTP (validation, reference resolution, the atomic
// journal commit) with a raw driver InsertMany of the same resources as
// {_id, j} documents, on the same engine in the same run. Reported as
// ns/op per resource; BENCHMARKS.md gives the ratio.
func BenchmarkIngest(b *testing.B) {
	batches, txs := readSample(b)
	e := newEnv(b)
	for _, bt := range batches {
		if r := e.Do("POST", "", string(bt)); r.Status != 200 {
			b.Fatalf("batch: %d", r.Status)
		}
	}
	var entries [][]json.RawMessage
	total := 0
	for _, tx := range txs {
		var bd struct {
			Entry []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		_ = json.Unmarshal(tx, &bd)
		var rs []json.RawMessage
		for _, en := range bd.Entry {
			rs = append(rs, en.Resource)
		}
		entries = append(entries, rs)
		total += len(rs)
	}
	b.Run("raw-insertmany", func(b *testing.B) {
		db := e.Store.Database()
		ctx := context.Background()
		for b.Loop() {
			for _, rs := range entries {
				byType := map[string][]any{}
				for _, r := range rs {
					var h struct{ ResourceType string }
					_ = json.Unmarshal(r, &h)
					byType[h.ResourceType] = append(byType[h.ResourceType], bson.D{{Key: "_id", Value: repo.NewID()}, {Key: "j", Value: string(r)}})
				}
				for typ, docs := range byType {
					if _, err := db.Collection("raw_"+typ).InsertMany(ctx, docs); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*total), "ns/resource")
	})
	b.Run("transaction", func(b *testing.B) {
		for b.Loop() {
			for _, tx := range txs {
				if r := e.Do("POST", "", string(tx), "Prefer", "return=minimal"); r.Status != 200 {
					b.Fatalf("transaction: %d %s", r.Status, r.Body)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*total), "ns/resource")
	})
}

// BenchmarkAuditedRead is BenchmarkRead with the audit trail on (and the
// DMP policy): every GET /fhir/Patient/{id} stores its AuditEvent before
// the response leaves, grouped with the concurrent requests' (group
// commit). BENCHMARKS.md reports fhir-read-audited as a ratio of
// driver-findone.
func BenchmarkAuditedRead(b *testing.B) {
	readVsFindOne(b, tracedEnv(b, nil), "fhir-read-audited")
}

// BenchmarkAuditedReadAlternating measures the same two things as
// BenchmarkAuditedRead, alternately in rounds of 1,000 operations each
// (16 clients), so that what else the machine does weighs on both alike;
// each b.N is one round of each, after one round of warm-up. It reports
// the mean ns per operation of each and their ratio (findone / audited,
// the figure of issue 7). Run it with -benchtime Nx.
func BenchmarkAuditedReadAlternating(b *testing.B) {
	ids, findOne, read := readOps(b, tracedEnv(b, nil))
	const per, clients = 1000, 16
	var seq atomic.Int64
	var cpuF, cpuA time.Duration
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	round := func(op func(string) error, spent *time.Duration) time.Duration {
		c0 := cpu()
		defer func() { *spent += cpu() - c0 }()
		var left atomic.Int64
		left.Store(per)
		var wg sync.WaitGroup
		start := time.Now()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					if err := op(ids[int(seq.Add(1)*7919)%len(ids)]); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	round(findOne, &cpuF)
	round(read, &cpuA)
	cpuF, cpuA = 0, 0
	b.ResetTimer()
	var tf, ta time.Duration
	for range b.N {
		tf += round(findOne, &cpuF)
		ta += round(read, &cpuA)
	}
	ops := float64(b.N * per)
	b.ReportMetric(float64(tf.Nanoseconds())/ops, "findone-ns/op")
	b.ReportMetric(float64(ta.Nanoseconds())/ops, "audited-ns/op")
	b.ReportMetric(100*float64(tf)/float64(ta), "ratio-%")
	// CPU of the whole process (clients, server, engine) per operation:
	// when the machine is busy the ratio follows cpu-findone/cpu-audited;
	// below it, the audited side also waits (fsync, convoys).
	b.ReportMetric(float64(cpuF.Nanoseconds())/ops, "findone-cpu-ns/op")
	b.ReportMetric(float64(cpuA.Nanoseconds())/ops, "audited-cpu-ns/op")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "procs")
}
