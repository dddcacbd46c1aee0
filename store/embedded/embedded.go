// Package embedded runs FerretDB v1.24 in-process on its SQLite handler,
// so that Dossier needs no database server to start.
//
// FerretDB speaks the MongoDB wire protocol on a loopback port; the same
// store/mongo code then talks to it through the real driver.
//
// # The _id index
//
// FerretDB pushes a filter that is exactly {_id: "x"} down to SQL as
// `WHERE _ferretdb_sjson->'$._id' = ?`, but the unique index it creates is
// on `_ferretdb_sjson->"_id"`; SQLite matches expression indexes by their
// text, so every lookup scans the table (about 1.8 ms per lookup at 5,000
// documents, linear in the collection size). [Engine.IndexCollection] adds
// an index on the exact expression FerretDB queries with, directly in the
// SQLite file, which turns a read by id into an index lookup. The index is
// invisible to FerretDB's metadata and is dropped with the table.
package embedded

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"

	smongo "github.com/dossier-fhir/dossier/store/mongo"
	_ "modernc.org/sqlite" // the driver FerretDB itself uses
)

// Engine is a running embedded FerretDB.
type Engine struct {
	dir    string
	uri    string
	cancel context.CancelFunc
	done   chan struct{}

	sync string // SQLite synchronous setting of the engine's files

	mu     sync.Mutex
	dbs    map[string]*sql.DB
	tables map[string]string  // "db.collection" → SQLite table
	raws   map[string]*sql.DB // the files of write-once collections (raw.go)
	// inserts are the prepared INSERTs of raw tables ("db.table").
	inserts map[string]*sql.Stmt
}

// Start starts FerretDB with its SQLite files under dir, with full
// durability (see Config.Synchronous).
func Start(ctx context.Context, dir string, logger *slog.Logger) (*Engine, error) {
	return StartWith(ctx, Config{Dir: dir, Logger: logger})
}

// Config configures the embedded engine.
type Config struct {
	Dir    string
	Logger *slog.Logger
	// Synchronous is SQLite's synchronous setting in WAL mode: "full"
	// (the default: every commit is on disk when it returns, safe against
	// power loss) or "normal" (commits are safe against a process crash
	// such as kill -9, but the last ones may be lost on a power failure or
	// OS crash; the database stays consistent; several times faster for
	// write-heavy loads).
	Synchronous string
}

// StartWith starts FerretDB with cfg.
func StartWith(ctx context.Context, cfg Config) (*Engine, error) {
	dir, logger := cfg.Dir, cfg.Logger
	sync := "full"
	switch cfg.Synchronous {
	case "", "full":
	case "normal":
		sync = "normal"
	default:
		return nil, fmt.Errorf("embedded engine: synchronous must be full or normal")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("embedded engine: data folder: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	// FerretDB logs at info level per connection; keep only its errors (it warns on every driver endSessions).
	fl := slog.New(levelFilter{h: logger.Handler(), min: slog.LevelError})
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: fmt.Sprintf("127.0.0.1:%d", port)},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/?_pragma=synchronous(" + sync + ")",
		Logger:    fl,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded engine: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	e := &Engine{dir: abs, sync: sync, cancel: cancel, done: make(chan struct{}), dbs: map[string]*sql.DB{}, tables: map[string]string{}, inserts: map[string]*sql.Stmt{}, raws: map[string]*sql.DB{}}
	go func() {
		defer close(e.done)
		_ = f.Run(rctx)
	}()
	e.uri = fmt.Sprintf("mongodb://127.0.0.1:%d/", port)
	// Wait until it accepts connections.
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			e.Close()
			return nil, fmt.Errorf("embedded engine did not start: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URI is the MongoDB connection string of the engine.
func (e *Engine) URI() string { return e.uri }

// Dir is the folder of the SQLite files.
func (e *Engine) Dir() string { return e.dir }

// IndexCollection adds the _id lookup index to the SQLite table behind
// collection coll of database db (idempotent). The collection must exist.
func (e *Engine) IndexCollection(ctx context.Context, db, coll string) error {
	sdb, err := e.sqlite(db)
	if err != nil {
		return err
	}
	var table string
	err = sdb.QueryRowContext(ctx,
		`SELECT table_name FROM "_ferretdb_collections" WHERE name = ?`, coll).Scan(&table)
	if err != nil {
		return fmt.Errorf("embedded engine: table of collection: %w", err)
	}
	qs := []string{fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, table+"_dossier_id", table)}
	for _, f := range indexedFields {
		qs = append(qs, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->>'$.%s')`, table+"_dossier_"+f, table, f))
	}
	for _, q := range qs {
		for i := 0; ; i++ {
			_, err = sdb.ExecContext(ctx, q)
			if err == nil || i == 20 || !strings.Contains(err.Error(), "locked") {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			return fmt.Errorf("embedded engine: create index: %w", err)
		}
	}
	e.mu.Lock()
	e.tables[db+"."+coll] = table
	e.mu.Unlock()
	return nil
}

// indexedFields are the top-level document fields Scan can select by
// through an index: "p", the owning patient of a stored resource.
var indexedFields = []string{"p"}

// Doc is the SQL expression of a stored document in Scan's where clause
// (FerretDB keeps each document as JSON text in this column).
const Doc = "_ferretdb_sjson"

// Scan reads the documents of collection coll of database db directly
// from SQLite, bypassing FerretDB's Go-side filtering: the rows for which
// the SQL boolean expression where holds ("" for all rows), with args as
// its parameters. where refers to the document as Doc (a JSON text); an
// equality on Doc->>'$.p' (the owning patient) uses an index. fn gets
// each document as FerretDB stores it: a JSON object (plus its "$s"
// schema member, which callers ignore). Reads see committed writes (WAL).
func (e *Engine) Scan(ctx context.Context, db, coll, where string, args []any, fn func(doc []byte) error, count ...*int64) error {
	e.mu.Lock()
	table, ok := e.tables[db+"."+coll]
	e.mu.Unlock()
	if !ok && e.hasRaw(ctx, db, coll) {
		table, ok = rawTable(coll), true
	}
	var sdb *sql.DB
	var err error
	if ok && table == rawTable(coll) {
		sdb, err = e.rawDB(ctx, db)
	} else {
		sdb, err = e.sqlite(db)
	}
	if err != nil {
		return nil // no database file yet: no documents
	}
	if !ok {
		err := sdb.QueryRowContext(ctx, `SELECT table_name FROM "_ferretdb_collections" WHERE name = ?`, coll).Scan(&table)
		if errors.Is(err, sql.ErrNoRows) || (err != nil && strings.Contains(err.Error(), "no such table")) {
			return nil // no such collection (or the database is being created)
		}
		if err != nil {
			return fmt.Errorf("embedded engine: table of collection: %w", err)
		}
	}
	q := fmt.Sprintf(`SELECT %s FROM %q`, Doc, table)
	if len(count) > 0 {
		q = fmt.Sprintf(`SELECT count(*) FROM %q`, table)
	}
	if where != "" {
		q += " WHERE " + where
	}
	if len(count) > 0 {
		err := sdb.QueryRowContext(ctx, q, args...).Scan(count[0])
		if err != nil && strings.Contains(err.Error(), "no such table") {
			*count[0] = 0
			return nil
		}
		if err != nil {
			return fmt.Errorf("embedded engine: count: %w", err)
		}
		return nil
	}
	rows, err := sdb.QueryContext(ctx, q, args...)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") { // dropped
			e.mu.Lock()
			delete(e.tables, db+"."+coll)
			e.mu.Unlock()
			return nil
		}
		return fmt.Errorf("embedded engine: scan: %w", err)
	}
	defer rows.Close()
	var buf []byte
	for rows.Next() {
		buf = buf[:0]
		if err := rows.Scan(&buf); err != nil {
			return fmt.Errorf("embedded engine: scan: %w", err)
		}
		if err := fn(buf); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (e *Engine) sqlite(db string) (*sql.DB, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d, ok := e.dbs[db]; ok {
		return d, nil
	}
	path := filepath.Join(e.dir, db+".sqlite")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("embedded engine: database file: %w", err)
	}
	d, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=synchronous("+e.sync+")")
	if err != nil {
		return nil, err
	}
	d.SetMaxOpenConns(4)
	e.dbs[db] = d
	return d, nil
}

// Close stops the engine and waits for it to flush.
func (e *Engine) Close() error {
	e.mu.Lock()
	var errs []error
	for _, st := range e.inserts {
		errs = append(errs, st.Close())
	}
	e.inserts = map[string]*sql.Stmt{}
	for _, d := range e.raws {
		errs = append(errs, d.Close())
	}
	e.raws = map[string]*sql.DB{}
	for _, d := range e.dbs {
		errs = append(errs, d.Close())
	}
	e.dbs = map[string]*sql.DB{}
	e.mu.Unlock()
	e.cancel()
	select {
	case <-e.done:
	case <-time.After(30 * time.Second):
		errs = append(errs, errors.New("embedded engine: shutdown timed out"))
	}
	return errors.Join(errs...)
}

// levelFilter passes FerretDB's records at or above min to h, without
// their attributes: FerretDB attaches SQL statements and their arguments
// (documents, hence patient data) to its loggers, which must not reach
// our logs. WithAttrs and WithGroup are no-ops, which also spares the
// cost of pre-formatting attributes that are never printed.
type levelFilter struct {
	h   slog.Handler
	min slog.Level
}

func (l levelFilter) Enabled(ctx context.Context, lv slog.Level) bool {
	return lv >= l.min && l.h.Enabled(ctx, lv)
}

func (l levelFilter) Handle(ctx context.Context, r slog.Record) error {
	clean := slog.NewRecord(r.Time, r.Level, "embedded engine: "+r.Message, r.PC)
	return l.h.Handle(ctx, clean)
}

func (l levelFilter) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l levelFilter) WithGroup(string) slog.Handler      { return l }

// Count counts the rows of collection coll of database db for which the
// SQL expression where holds (see Scan), without reading them out.
func (e *Engine) Count(ctx context.Context, db, coll, where string, args []any) (int64, error) {
	var n int64
	err := e.Scan(ctx, db, coll, where, args, nil, &n)
	return n, err
}

// Options returns the store/mongo options that let a store on database db
// use this engine's accelerations: the _id index on every collection it
// creates, and direct SQLite reads for searches.
func (e *Engine) Options(db string) smongo.Options {
	return smongo.Options{
		OnCollectionCreated: func(ctx context.Context, coll string) error { return e.IndexCollection(ctx, db, coll) },
		Scan: func(ctx context.Context, coll, where string, args []any, fn func([]byte) error) error {
			return e.Scan(ctx, db, coll, where, args, fn)
		},
		Count: func(ctx context.Context, coll, where string, args []any) (int64, error) {
			return e.Count(ctx, db, coll, where, args)
		},
		AppendRaw: func(ctx context.Context, coll string, docs [][]byte) error {
			err := e.AppendRaw(ctx, db, coll, docs)
			if errors.Is(err, ErrDuplicate) {
				err = fmt.Errorf("%w: %w", smongo.ErrDuplicateRaw, err)
			}
			return err
		},
		RawCollection: func(ctx context.Context, coll string) bool { return e.IsRaw(ctx, db, coll) },
		ReplaceRaw: func(ctx context.Context, coll, id string, doc []byte) (bool, error) {
			return e.ReplaceRaw(ctx, db, coll, id, doc)
		},
	}
}
