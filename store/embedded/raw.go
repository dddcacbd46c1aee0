package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Write-once collections in plain SQLite tables.
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

// ErrDuplicate is returned by AppendRaw when a document's _id exists.
var ErrDuplicate = errors.New("embedded engine: duplicate _id")

func rawTable(coll string) string { return "dossier_raw_" + coll }

// hasRaw reports whether coll of db is a raw table (cached once seen).
func (e *Engine) hasRaw(ctx context.Context, sdb *sql.DB, db, coll string) bool {
	var n int
	err := sdb.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, rawTable(coll)).Scan(&n)
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
// The database must exist (a collection of it was created through
// FerretDB).
func (e *Engine) AppendRaw(ctx context.Context, db, coll string, docs [][]byte) error {
	sdb, err := e.sqlite(db)
	if err != nil {
		return err
	}
	t := rawTable(coll)
	e.mu.Lock()
	known := e.tables[db+"."+coll] == t
	e.mu.Unlock()
	if !known {
		for _, q := range []string{
			fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %q (_ferretdb_sjson TEXT NOT NULL)`, t),
			fmt.Sprintf(`CREATE UNIQUE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->>'$._id')`, t+"_id", t),
			fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->>'$.p')`, t+"_p", t),
		} {
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
	st, err := tx.PrepareContext(ctx, fmt.Sprintf(`INSERT INTO %q (_ferretdb_sjson) VALUES (?)`, t))
	if err != nil {
		return fmt.Errorf("embedded engine: append: %w", err)
	}
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

// ReplaceRaw replaces the document with _id id of a write-once collection
// (re-indexing); false when there is none.
func (e *Engine) ReplaceRaw(ctx context.Context, db, coll, id string, doc []byte) (bool, error) {
	sdb, err := e.sqlite(db)
	if err != nil || !e.hasRaw(ctx, sdb, db, coll) {
		return false, nil
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
	sdb, err := e.sqlite(db)
	if err != nil {
		return false
	}
	if e.hasRaw(ctx, sdb, db, coll) {
		return true
	}
	if err := sdb.QueryRowContext(ctx, `SELECT table_name FROM "_ferretdb_collections" WHERE name = ?`, coll).Scan(&t); err == nil {
		e.mu.Lock()
		e.tables[db+"."+coll] = t
		e.mu.Unlock()
	}
	return false
}
