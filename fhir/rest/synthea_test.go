package rest_test

import (
	"bytes"
	"compress/bzip2"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dossier-fhir/dossier/cmd/dossier/load"
	"github.com/dossier-fhir/dossier/fhir/repo"
	"github.com/dossier-fhir/dossier/store"
)

// syntheaDir is the Synthea data set, named by DOSSIER_SYNTHEA (the
// README's second test command sets it to ../shared/data/synthea).
func syntheaDir(t testing.TB) string {
	dir := os.Getenv("DOSSIER_SYNTHEA")
	if dir == "" {
		t.Skip("DOSSIER_SYNTHEA not set (see README: the Synthea load test)")
	}
	if !filepath.IsAbs(dir) {
		// relative to the repository root, as in the README
		dir = filepath.Join("..", "..", dir)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("DOSSIER_SYNTHEA: %v", err)
	}
	return dir
}

// loadSynthea loads the data set with `dossier load` through real HTTP.
func loadSynthea(t testing.TB, e *env, dir string, concurrency int) time.Duration {
	start := time.Now()
	var out bytes.Buffer
	err := load.Run(context.Background(), load.Options{URL: e.URL, Token: e.token, Concurrency: concurrency}, []string{dir}, &out, io.Discard)
	if err != nil {
		t.Fatalf("load: %v\n%s", err, out.String())
	}
	return time.Since(start)
}

// storedTypes lists the resource types with a collection.
func storedTypes(t testing.TB, e *env) []string {
	types, err := e.Store.Types(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return types
}

var conditionalRef = regexp.MustCompile(`"reference":"[A-Za-z]+\?`)

// TestSyntheaLoad loads the 122 Synthea bundles (batch files first) and
// checks the totals of the data set's README, and that no stored
// reference is still a conditional one.
func TestSyntheaLoad(t *testing.T) {
	dir := syntheaDir(t)
	e := newEnv(t)
	took := loadSynthea(t, e, dir, 2)
	ctx := context.Background()
	counts := map[string]int{}
	total := 0
	for _, typ := range storedTypes(t, e) {
		vs, err := e.Store.Find(ctx, store.Query{Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		counts[typ] = len(vs)
		total += len(vs)
		for _, v := range vs {
			if conditionalRef.Match(v.JSON) {
				t.Errorf("%s/%s still holds a conditional reference", typ, v.ID)
			}
		}
	}
	t.Logf("loaded %d resources in %v (%.0f resources/s)", total, took.Round(time.Millisecond), float64(total)/took.Seconds())
	want := map[string]int{"Patient": 120, "Encounter": 4769, "DocumentReference": 4769, "CarePlan": 540, "Observation": 42929}
	for typ, n := range want {
		if counts[typ] != n {
			t.Errorf("%s: %d, want %d", typ, counts[typ], n)
		}
	}
	if total != 92114 {
		t.Errorf("total %d, want 92114", total)
	}
	checkSyntheaSearches(t, e)
}

// checkSyntheaSearches runs the search issue's checks on the loaded data.
func checkSyntheaSearches(t *testing.T, e *env) {
	counts := []struct {
		query string
		want  int
	}{
		{"/Patient?gender=male&_summary=count", 56},
		{"/Patient?gender=female&_summary=count", 64},
		{"/Observation?patient.gender=male&_summary=count", 20466},
	}
	for _, c := range counts {
		start := time.Now()
		_, total, r := e.searchIDs(c.query)
		if total != c.want {
			t.Errorf("%s: total %d, want %d (%d)", c.query, total, c.want, r.Status)
		}
		t.Logf("%s → %d in %v", c.query, total, time.Since(start).Round(time.Millisecond))
	}
	// DocumentReference?patient=X&_sort=-date: checked against the
	// documents of each patient read independently from the store.
	ctx := context.Background()
	docs, err := e.Store.Find(ctx, store.Query{Type: "DocumentReference"})
	if err != nil {
		t.Fatal(err)
	}
	byPatient := map[string][]string{} // patient → dates
	for _, d := range docs {
		var dr struct {
			Subject struct{ Reference string } `json:"subject"`
			Date    string                     `json:"date"`
		}
		_ = json.Unmarshal(d.JSON, &dr)
		byPatient[strings.TrimPrefix(dr.Subject.Reference, "Patient/")] = append(byPatient[strings.TrimPrefix(dr.Subject.Reference, "Patient/")], dr.Date)
	}
	checked := 0
	for pid, dates := range byPatient {
		if checked == 3 {
			break
		}
		checked++
		sort.Sort(sort.Reverse(sort.StringSlice(dates))) // same zone in Synthea: text order is time order
		start := time.Now()
		r := e.Do("GET", "/DocumentReference?patient="+pid+"&_sort=-date&_count=1000", "")
		took := time.Since(start)
		var b struct {
			Total int `json:"total"`
			Entry []struct {
				Resource struct {
					Date    string                     `json:"date"`
					Subject struct{ Reference string } `json:"subject"`
				} `json:"resource"`
			} `json:"entry"`
		}
		_ = json.Unmarshal(r.Body, &b)
		var got []string
		for _, en := range b.Entry {
			if en.Resource.Subject.Reference != "Patient/"+pid {
				t.Errorf("DocumentReference of another patient returned")
			}
			got = append(got, en.Resource.Date)
		}
		if b.Total != len(dates) || fmt.Sprint(got) != fmt.Sprint(dates) {
			t.Errorf("DocumentReference?patient=%s&_sort=-date: %d results %v, want %d %v", pid, b.Total, got, len(dates), dates)
		}
		t.Logf("DocumentReference?patient=…&_sort=-date → %d in %v", b.Total, took.Round(time.Millisecond))
	}
}

// syntheaEntries reads every entry resource of the data set, per bundle.
func syntheaEntries(t testing.TB, dir string) [][]json.RawMessage {
	files, _ := filepath.Glob(filepath.Join(dir, "*.json.bz2"))
	sort.Slice(files, func(i, j int) bool { // batch files first, like dossier load
		bi, bj := strings.HasPrefix(filepath.Base(files[i]), "0-"), strings.HasPrefix(filepath.Base(files[j]), "0-")
		if bi != bj {
			return bi
		}
		return files[i] < files[j]
	})
	var out [][]json.RawMessage
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		var b struct {
			Entry []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		err = json.NewDecoder(bzip2.NewReader(fh)).Decode(&b)
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		var rs []json.RawMessage
		for _, en := range b.Entry {
			rs = append(rs, en.Resource)
		}
		out = append(out, rs)
	}
	return out
}

// TestSyntheaIngestRatio measures ingest: `dossier load` at several
// concurrencies against a raw driver InsertMany of the same resources on
// the same engine, in one run. Set DOSSIER_SYNTHEA_BENCH=1 (minutes).
func TestSyntheaIngestRatio(t *testing.T) {
	dir := syntheaDir(t)
	if os.Getenv("DOSSIER_SYNTHEA_BENCH") == "" {
		t.Skip("DOSSIER_SYNTHEA_BENCH not set")
	}
	bundles := syntheaEntries(t, dir)
	n := 0
	for _, b := range bundles {
		n += len(b)
	}
	// Raw: one InsertMany per bundle (per type inside it) of {_id, j}.
	raw := newEnv(t)
	db := raw.Store.Database()
	ctx := context.Background()
	start := time.Now()
	for _, b := range bundles {
		byType := map[string][]any{}
		for _, r := range b {
			var h struct{ ResourceType string }
			_ = json.Unmarshal(r, &h)
			byType[h.ResourceType] = append(byType[h.ResourceType], bson.D{{Key: "_id", Value: repo.NewID()}, {Key: "j", Value: string(r)}})
		}
		for typ, docs := range byType {
			if _, err := db.Collection("raw_"+typ).InsertMany(ctx, docs); err != nil {
				t.Fatal(err)
			}
		}
	}
	rawRate := float64(n) / time.Since(start).Seconds()
	t.Logf("raw InsertMany: %d resources, %.0f resources/s", n, rawRate)
	for _, c := range []int{1, 2, 4} {
		e := newEnv(t)
		took := loadSynthea(t, e, dir, c)
		rate := float64(n) / took.Seconds()
		t.Logf("dossier load --concurrency %d: %v, %.0f resources/s, %.0f%% of raw InsertMany", c, took.Round(time.Millisecond), rate, 100*rate/rawRate)
	}
}

// TestSyntheaSearchLatency loads the data set DOSSIER_SYNTHEA_SCALE times
// (default 1; the patients' transactions create new resources each time,
// the organizations are conditional creates) and reports p50/p95 of the
// search issue's queries. Set DOSSIER_SYNTHEA_BENCH=1 (minutes).
func TestSyntheaSearchLatency(t *testing.T) {
	dir := syntheaDir(t)
	if os.Getenv("DOSSIER_SYNTHEA_BENCH") == "" {
		t.Skip("DOSSIER_SYNTHEA_BENCH not set")
	}
	scale := 1
	fmt.Sscan(os.Getenv("DOSSIER_SYNTHEA_SCALE"), &scale)
	e := newEnv(t)
	for i := 0; i < scale; i++ {
		took := loadSynthea(t, e, dir, 2)
		t.Logf("load %d/%d: %v", i+1, scale, took.Round(time.Second))
	}
	ctx := context.Background()
	pats, err := e.Store.Find(ctx, store.Query{Type: "Patient", Limit: 20})
	if err != nil || len(pats) == 0 {
		t.Fatal(err)
	}
	n, _ := e.Store.Count(ctx, store.Query{Type: "Observation"})
	t.Logf("scale %d: %d Observations", scale, n)
	measure := func(name string, paths func(i int) string, runs int) {
		var ds []time.Duration
		for i := 0; i < runs; i++ {
			start := time.Now()
			r := e.Do("GET", paths(i), "")
			ds = append(ds, time.Since(start))
			if r.Status != 200 {
				t.Fatalf("%s: %d %s", name, r.Status, r.Body)
			}
		}
		sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
		t.Logf("%-62s p50 %8v  p95 %8v", name, ds[len(ds)/2].Round(10*time.Microsecond), ds[len(ds)*95/100].Round(10*time.Microsecond))
	}
	pid := func(i int) string { return pats[i%len(pats)].ID }
	measure("DocumentReference?patient=X", func(i int) string { return "/DocumentReference?patient=" + pid(i) }, 100)
	measure("DocumentReference?patient=X&_sort=-date", func(i int) string { return "/DocumentReference?patient=" + pid(i) + "&_sort=-date" }, 100)
	measure("Observation?patient=X&code=http://loinc.org|8867-4", func(i int) string {
		return "/Observation?patient=" + pid(i) + "&code=http://loinc.org|8867-4"
	}, 100)
	measure("Observation?code=http://loinc.org|8867-4&_count=50", func(int) string { return "/Observation?code=http://loinc.org|8867-4&_count=50" }, 7)
	measure("Observation?date=ge2019-01-01&date=lt2019-02-01&_count=50", func(int) string {
		return "/Observation?date=ge2019-01-01&date=lt2019-02-01&_count=50"
	}, 7)
	measure("Patient?gender=male", func(int) string { return "/Patient?gender=male" }, 20)
}
