package embedded_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dossier-fhir/dossier/store/embedded"
)

// TestRawFile: write-once collections live in "<db>.raw.db", outside
// FerretDB's file, and are read back through Scan; raw tables an earlier
// version kept in "<db>.sqlite" are moved there, rows intact.
func TestRawFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// An engine on dir: FerretDB creates "d.sqlite" with one collection.
	eng, err := embedded.Start(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := eng.Options("d")
	cl := connect(t, eng.URI())
	if _, err := cl.Database("d").Collection("claims").InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.AppendRaw(ctx, "r_AuditEvent", [][]byte{[]byte(`{"_id":"a1","p":"p1"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "d.raw.db")); err != nil {
		t.Fatalf("no raw file: %v", err)
	}
	if n, err := st.Count(ctx, "r_AuditEvent", "", nil); err != nil || n != 1 {
		t.Fatalf("count %d %v", n, err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}

	// An earlier version's layout: the raw table inside d.sqlite.
	if err := os.Remove(filepath.Join(dir, "d.raw.db")); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(filepath.Join(dir, "d.raw.db-wal"))
	_ = os.Remove(filepath.Join(dir, "d.raw.db-shm"))
	oldRawTable(t, dir)

	eng, err = embedded.Start(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	st = eng.Options("d")
	var ids []string
	err = st.Scan(ctx, "r_AuditEvent", embedded.Doc+"->>'$.p' = ?", []any{"p2"}, func(doc []byte) error {
		ids = append(ids, string(doc))
		return nil
	})
	if err != nil || len(ids) != 1 || ids[0] != `{"_id":"o2","p":"p2"}` {
		t.Fatalf("after the move: %v %v", ids, err)
	}
	if err := st.AppendRaw(ctx, "r_AuditEvent", [][]byte{[]byte(`{"_id":"o1"}`)}); err == nil {
		t.Fatal("duplicate _id accepted after the move")
	}
	old, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "d.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	var n int
	if err := old.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'dossier_raw_r_AuditEvent'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("old raw table still in d.sqlite: %d %v", n, err)
	}
	// FerretDB still serves its own collection of the file.
	cl = connect(t, eng.URI())
	if err := cl.Database("d").Collection("claims").FindOne(ctx, bson.D{{Key: "_id", Value: "x"}}).Err(); err != nil {
		t.Fatal(err)
	}
}

// oldRawTable writes an earlier version's layout: the raw table of
// r_AuditEvent inside d.sqlite, with o1 (p1) and o2 (p2).
func oldRawTable(t *testing.T, dir string) {
	t.Helper()
	old, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "d.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	for _, q := range []string{
		`CREATE TABLE dossier_raw_r_AuditEvent (_ferretdb_sjson TEXT NOT NULL)`,
		`INSERT INTO dossier_raw_r_AuditEvent VALUES ('{"_id":"o1","p":"p1"}'), ('{"_id":"o2","p":"p2"}')`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRawFileInterruptedMove: a move cut short between its two files (rows
// copied into "<db>.raw.db", not yet dropped from "<db>.sqlite") is
// finished at the next open, each row once.
func TestRawFileInterruptedMove(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	eng, err := embedded.Start(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := eng.Options("d")
	if _, err := connect(t, eng.URI()).Database("d").Collection("claims").InsertOne(ctx, bson.D{{Key: "_id", Value: "x"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.AppendRaw(ctx, "r_AuditEvent", [][]byte{[]byte(`{"_id":"o1","p":"p1"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		t.Fatal(err)
	}
	oldRawTable(t, dir)

	eng, err = embedded.Start(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if n, err := eng.Options("d").Count(ctx, "r_AuditEvent", "", nil); err != nil || n != 2 {
		t.Fatalf("after the second move: %d rows (%v), want 2", n, err)
	}
}

func connect(tb testing.TB, uri string) *mongo.Client {
	tb.Helper()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	return c
}
