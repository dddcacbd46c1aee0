package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Write-once collections in plain SQLite tables, in their own file.
//
// FerretDB's insert path costs more CPU per document than the read it
// often goes with (BSON from the wire, validation, its JSON encoding, the
// expression indexes): an audit trace per read doubled a read's cost. A
// write-once collection (the store's Append: AuditEvents) is therefore
// kept in a table of this package, "dossier_raw_<collection>", with one
// column _ferretdb_sjson holding the same JSON document layout the store
// reads from FerretDB's tables, so Scan and Count (and the store's SQL
// translation of filters) serve it unchanged; its _id and owning patient
// are indexed on the expressions those queries use. Rows are inserted
// in one SQLite transaction per batch, straight from Go. FerretDB does not
// see these tables: on MongoDB the same collections are ordinary ones.
//
// The tables live in a file of their own, "<db>.raw.db" beside FerretDB's
// "<db>.sqlite" (FerretDB only opens *.sqlite files). A write to an SQLite
// file makes every other connection to it drop its page cache, so trace
// writes in FerretDB's file made every read that follows re-read its
// pages from the file (measured: a third of the cost a trace added to an
// audited read). In their own file they leave FerretDB's readers alone.
// Raw tables an earlier version kept in "<db>.sqlite" are moved to the raw
// file the first time it is opened.

// ErrDuplicate is returned by AppendRaw when a document's _id exists.
var ErrDuplicate = errors.New("embedded engine: duplicate _id")

func rawTable(coll string) string { return "dossier_raw_" + coll }

// rawFile is the file of db's write-once collections.
func (e *Engine) rawFile(db string) string { return filepath.Join(e.dir, db+".raw.db") }

// rawDB opens (creating it) the file of db's write-once collections.
func (e *Engine) rawDB(ctx context.Context, db string) (*sql.DB, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d, ok := e.raws[db]; ok {
		return d, nil
	}
	path := e.rawFile(db)
	d, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(10000)&_pragma=synchronous("+e.sync+")")
	if err != nil {
		return nil, fmt.Errorf("embedded engine: raw file: %w", err)
	}
	d.SetMaxOpenConns(4)
	if err := e.moveRaw(ctx, d, db); err != nil {
		_ = d.Close()
		return nil, err
	}
	e.raws[db] = d
	return d, nil
}

// moveRaw moves the raw tables an earlier version kept in FerretDB's file
// of db into the raw file: copy and drop in one transaction, which in WAL
// mode commits each file on its own, so a crash between the two leaves
// the rows in both; the next open copies again, keeping the rows already
// there (INSERT OR IGNORE on the unique _id), and drops.
func (e *Engine) moveRaw(ctx context.Context, d *sql.DB, db string) error {
	old := filepath.Join(e.dir, db+".sqlite")
	if !exists(old) {
		return nil
	}
	conn, err := d.Conn(ctx)
	if err != nil {
		return fmt.Errorf("embedded engine: raw file: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `ATTACH DATABASE ? AS old`, "file:"+old); err != nil {
		return fmt.Errorf("embedded engine: raw file: %w", err)
	}
	defer func() { _, _ = conn.ExecContext(context.Background(), `DETACH DATABASE old`) }()
	rows, err := conn.QueryContext(ctx, `SELECT name FROM old.sqlite_master WHERE type = 'table' AND name LIKE 'dossier\_raw\_%' ESCAPE '\'`)
	if err != nil {
		return fmt.Errorf("embedded engine: raw file: %w", err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return fmt.Errorf("embedded engine: raw file: %w", err)
		}
		tables = append(tables, t)
	}
	rows.Close()
	for _, t := range tables {
		qs := append(rawSchema(t),
			fmt.Sprintf(`INSERT OR IGNORE INTO main.%q (_ferretdb_sjson) SELECT _ferretdb_sjson FROM old.%q`, t, t),
			fmt.Sprintf(`DROP TABLE old.%q`, t))
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			return fmt.Errorf("embedded engine: moving %s: %w", t, err)
		}
		for _, q := range qs {
			if _, err := conn.ExecContext(ctx, q); err != nil {
				_, _ = conn.ExecContext(ctx, "ROLLBACK")
				return fmt.Errorf("embedded engine: moving %s: %w", t, err)
			}
		}
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			return fmt.Errorf("embedded engine: moving %s: %w", t, err)
		}
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// rawSchema creates raw table t and its indexes (idempotent).
func rawSchema(t string) []string {
	return []string{
		fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %q (_ferretdb_sjson TEXT NOT NULL)`, t),
		fmt.Sprintf(`CREATE UNIQUE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->>'$._id')`, t+"_id", t),
		fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->>'$.p')`, t+"_p", t),
	}
}

// hasRaw reports whether coll of db is a raw table (cached once seen).
func (e *Engine) hasRaw(ctx context.Context, db, coll string) bool {
	if !exists(e.rawFile(db)) && !exists(filepath.Join(e.dir, db+".sqlite")) {
		return false // a read does not create the files of a database that has none
	}
	sdb, err := e.rawDB(ctx, db)
	if err != nil {
		return false
	}
	var n int
	err = sdb.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, rawTable(coll)).Scan(&n)
	if err != nil || n == 0 {
		return false
	}
	e.mu.Lock()
	e.tables[db+"."+coll] = rawTable(coll)
	e.mu.Unlock()
	return true
}

// AppendRaw inserts JSON documents into the write-once collection coll of
// db, in one transaction: all or none. ErrDuplicate when an _id exists.
func (e *Engine) AppendRaw(ctx context.Context, db, coll string, docs [][]byte) error {
	sdb, err := e.rawDB(ctx, db)
	if err != nil {
		return err
	}
	t := rawTable(coll)
	e.mu.Lock()
	known := e.tables[db+"."+coll] == t
	e.mu.Unlock()
	if !known {
		for _, q := range rawSchema(t) {
			if _, err := sdb.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("embedded engine: raw table: %w", err)
			}
		}
		e.mu.Lock()
		e.tables[db+"."+coll] = t
		e.mu.Unlock()
	}
	tx, err := sdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("embedded engine: append: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	ins, err := e.insertStmt(ctx, sdb, db, t)
	if err != nil {
		return fmt.Errorf("embedded engine: append: %w", err)
	}
	st := tx.StmtContext(ctx, ins) // prepared once per connection, not per batch
	defer st.Close()
	for _, d := range docs {
		if _, err := st.ExecContext(ctx, string(d)); err != nil {
			if strings.Contains(err.Error(), "UNIQUE") {
				return ErrDuplicate
			}
			return fmt.Errorf("embedded engine: append: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("embedded engine: append: %w", err)
	}
	return nil
}

// insertStmt returns the INSERT statement of raw table t of db, prepared
// once (database/sql keeps it prepared on each connection it runs on).
func (e *Engine) insertStmt(ctx context.Context, sdb *sql.DB, db, t string) (*sql.Stmt, error) {
	key := db + "." + t
	e.mu.Lock()
	st := e.inserts[key]
	e.mu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := sdb.PrepareContext(ctx, fmt.Sprintf(`INSERT INTO %q (_ferretdb_sjson) VALUES (?)`, t))
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if prev := e.inserts[key]; prev != nil {
		_ = st.Close()
		return prev, nil
	}
	e.inserts[key] = st
	return st, nil
}

// ReplaceRaw replaces the document with _id id of a write-once collection
// (re-indexing); false when there is none.
func (e *Engine) ReplaceRaw(ctx context.Context, db, coll, id string, doc []byte) (bool, error) {
	if !e.IsRaw(ctx, db, coll) {
		return false, nil
	}
	sdb, err := e.rawDB(ctx, db)
	if err != nil {
		return false, err
	}
	res, err := sdb.ExecContext(ctx, fmt.Sprintf(`UPDATE %q SET _ferretdb_sjson = ? WHERE _ferretdb_sjson->>'$._id' = ?`, rawTable(coll)), string(doc), id)
	if err != nil {
		return false, fmt.Errorf("embedded engine: replace: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// IsRaw reports whether coll of db is a write-once collection kept in a
// raw table. The answer is cached with the collection's table.
func (e *Engine) IsRaw(ctx context.Context, db, coll string) bool {
	e.mu.Lock()
	t, ok := e.tables[db+"."+coll]
	e.mu.Unlock()
	if ok {
		return t == rawTable(coll)
	}
	if e.hasRaw(ctx, db, coll) {
		return true
	}
	sdb, err := e.sqlite(db)
	if err != nil {
		return false
	}
	if err := sdb.QueryRowContext(ctx, `SELECT table_name FROM "_ferretdb_collections" WHERE name = ?`, coll).Scan(&t); err == nil {
		e.mu.Lock()
		e.tables[db+"."+coll] = t
		e.mu.Unlock()
	}
	return false
}
