// Package mongo implements store.Store with go.mongodb.org/mongo-driver/v2.
// It is the only package that knows bson and the driver.
//
// # Layout
//
// Each resource type has two collections:
//
//   - r_<Type>: the current version of each resource, _id = the logical id
//     (a read is exactly {_id: id}: the one filter the embedded FerretDB
//     engine pushes down to SQL);
//   - h_<Type>: every version, _id = "<id>/<12-digit version>".
//
// The history _id is also the write lock: a writer inserts version n+1
// into h_<Type> first; the insert fails with a duplicate key for every
// writer but one, and only the winner then replaces the current document.
// If a process dies between the two steps, the next writer that collides
// on that version rolls the current document forward from history (after
// a grace period, so it never races a writer that is still running).
//
// A claims collection holds small unique keys for create-once decisions.
//
// Documents carry: v (version), ts (lastUpdated in µs since the epoch),
// del, m (method), j (the served JSON, as a string: no float round trip),
// h (content hash), p (owning patient), s (security labels), o (org),
// a (author), k (search keys).
package mongo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dossier-fhir/dossier/store"
)

var _ store.Store = (*Store)(nil)

// RollForwardGrace is how old an orphaned history version must be before
// a colliding writer rolls the current document forward to it.
var RollForwardGrace = 10 * time.Second

// Options configure a Store.
type Options struct {
	// OnCollectionCreated, when set, is called once per collection this
	// process creates or first touches (the embedded engine uses it to add
	// an SQLite index).
	OnCollectionCreated func(ctx context.Context, name string) error
	// Indexes creates MongoDB secondary indexes (off for the embedded
	// engine, where they are not used for queries and slow down writes).
	Indexes bool
	// Scan, when set (the embedded engine), reads a collection's rows
	// directly from SQLite, those for which the SQL expression where holds
	// (see sqlWhere); Find then evaluates the filter exactly in memory.
	Scan func(ctx context.Context, coll, where string, args []any, fn func(doc []byte) error) error
	// Count, with Scan, counts rows in SQL; used when the translated
	// filter is exact (see sqlWhere).
	Count func(ctx context.Context, coll, where string, args []any) (int64, error)
	// ChunkSize is the size of blob chunks in bytes (DefaultChunkSize
	// when 0); a stream holds about one chunk in memory.
	ChunkSize int
	// AppendRaw, with Scan, keeps write-once collections (Append) outside
	// the engine's insert path: it inserts the documents' JSON in one
	// transaction (wrapping ErrDuplicateRaw for an existing _id); Scan and
	// Count then read them, RawCollection tells them apart, ReplaceRaw
	// re-indexes one.
	AppendRaw     func(ctx context.Context, coll string, docs [][]byte) error
	RawCollection func(ctx context.Context, coll string) bool
	ReplaceRaw    func(ctx context.Context, coll, id string, doc []byte) (bool, error)
}

// Store is a store.Store on a MongoDB database.
type Store struct {
	client *mongo.Client
	db     *mongo.Database
	opts   Options
	owned  bool

	mu    sync.Mutex
	ready map[string]bool

	transactions bool // the deployment runs multi-document transactions
	tx           txState
}

// Open connects to uri and uses database db.
func Open(ctx context.Context, uri, db string, o Options) (*Store, error) {
	co := options.Client().ApplyURI(uri).SetMaxPoolSize(64)
	client, err := mongo.Connect(co)
	if err != nil {
		return nil, store.E("open", store.ErrUnavailable, err)
	}
	s := New(client, db, o)
	s.owned = true
	if err := s.Ping(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	s.transactions = s.supportsTransactions(ctx)
	if o.Indexes {
		// Ensure the indexes of every existing collection at startup
		// (idempotent), not only when a write first touches it.
		names, err := s.db.ListCollectionNames(ctx, bson.D{})
		if err != nil {
			_ = client.Disconnect(context.Background())
			return nil, store.E("open", store.ErrUnavailable, err)
		}
		for _, n := range names {
			if _, err := s.coll(ctx, n); err != nil {
				_ = client.Disconnect(context.Background())
				return nil, err
			}
		}
	}
	if err := s.recoverJournal(ctx); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, err
	}
	return s, nil
}

// Transactions reports whether Commit uses engine transactions (true on a
// replica set or sharded cluster) or the journal.
func (s *Store) Transactions() bool { return s.transactions }

// New wraps a connected client.
func New(client *mongo.Client, db string, o Options) *Store {
	s := &Store{client: client, db: client.Database(db), opts: o, ready: map[string]bool{}}
	s.tx.init()
	return s
}

// Client returns the driver client (benchmarks compare against it).
func (s *Store) Client() *mongo.Client { return s.client }

// Database returns the database name.
func (s *Store) Database() *mongo.Database { return s.db }

func curName(typ string) string  { return "r_" + typ }
func histName(typ string) string { return "h_" + typ }

const claimsName = "claims"

func histID(id string, vid int64) string { return fmt.Sprintf("%s/%012d", id, vid) }

// coll returns a collection, creating it (and its indexes) once per process.
func (s *Store) coll(ctx context.Context, name string) (*mongo.Collection, error) {
	s.mu.Lock()
	ok := s.ready[name]
	s.mu.Unlock()
	c := s.db.Collection(name)
	if ok {
		return c, nil
	}
	err := s.db.CreateCollection(ctx, name)
	if err != nil && !isNamespaceExists(err) {
		return nil, store.E("create collection", store.ErrUnavailable, err)
	}
	if s.opts.Indexes {
		if err := s.createIndexes(ctx, name, c); err != nil {
			return nil, store.E("create indexes", store.ErrUnavailable, err)
		}
	}
	if s.opts.OnCollectionCreated != nil {
		if err := s.opts.OnCollectionCreated(ctx, name); err != nil {
			return nil, store.E("prepare collection", store.ErrUnavailable, err)
		}
	}
	s.mu.Lock()
	s.ready[name] = true
	s.mu.Unlock()
	return c, nil
}

func (s *Store) createIndexes(ctx context.Context, name string, c *mongo.Collection) error {
	var models []mongo.IndexModel
	switch {
	case strings.HasPrefix(name, "h_"):
		models = []mongo.IndexModel{
			{Keys: bson.D{{Key: "id", Value: 1}, {Key: "ts", Value: -1}}},
			{Keys: bson.D{{Key: "ts", Value: -1}, {Key: "_id", Value: -1}}},
		}
	case strings.HasPrefix(name, "r_"):
		models = []mongo.IndexModel{
			{Keys: bson.D{{Key: "p", Value: 1}}},
			{Keys: bson.D{{Key: "k.$**", Value: 1}}},
			{Keys: bson.D{{Key: "r.$**", Value: 1}}},
		}
	}
	if len(models) == 0 {
		return nil
	}
	_, err := c.Indexes().CreateMany(ctx, models)
	return err
}

func isNamespaceExists(err error) bool {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		return ce.Code == 48 || ce.Name == "NamespaceExists"
	}
	return strings.Contains(err.Error(), "already exists")
}

// doc is the stored shape of a version. The json tags let the embedded
// engine's rows (read straight from SQLite) decode into it too.
type doc struct {
	ID      string                `bson:"_id" json:"_id"`
	RID     string                `bson:"id,omitempty" json:"id,omitempty"` // history only
	Type    string                `bson:"t" json:"t"`
	V       int64                 `bson:"v" json:"v"`
	TS      int64                 `bson:"ts" json:"ts"`
	Del     bool                  `bson:"del" json:"del"`
	Method  string                `bson:"m" json:"m"`
	JSON    string                `bson:"j" json:"j"`
	Hash    string                `bson:"h" json:"h"`
	Patient string                `bson:"p,omitempty" json:"p,omitempty"`
	Sec     []string              `bson:"s,omitempty" json:"s,omitempty"`
	Org     string                `bson:"o,omitempty" json:"o,omitempty"`
	Author  string                `bson:"a,omitempty" json:"a,omitempty"`
	Keys    map[string][]string   `bson:"k,omitempty" json:"k,omitempty"`
	Ranges  map[string][]rangeDoc `bson:"r,omitempty" json:"r,omitempty"`
	SortStr map[string]string     `bson:"os,omitempty" json:"os,omitempty"`
	SortNum map[string][]float64  `bson:"on,omitempty" json:"on,omitempty"`
	Tx      string                `bson:"tx,omitempty" json:"tx,omitempty"` // history: the journal commit that wrote it
	Blob    *blobRefDoc           `bson:"b,omitempty" json:"b,omitempty"`   // the content of a raw Binary (blob.go)
}

// blobRefDoc is a store.BlobRef as stored with a version.
type blobRefDoc struct {
	Key  string `bson:"k" json:"k"`
	Size int64  `bson:"n" json:"n"`
	SHA1 string `bson:"s" json:"s"` // hex
}

type rangeDoc struct {
	Lo float64 `bson:"lo" json:"lo"`
	Hi float64 `bson:"hi" json:"hi"`
}

// Index names become field names: "." and "$" may not appear in them.
var (
	fieldEsc   = strings.NewReplacer("%", "%25", ".", "%2E", "$", "%24")
	fieldUnesc = strings.NewReplacer("%2E", ".", "%24", "$", "%25", "%")
)

func escMap[V any](m map[string]V) map[string]V {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[fieldEsc.Replace(k)] = v
	}
	return out
}

func unescMap[V any](m map[string]V) map[string]V {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]V, len(m))
	for k, v := range m {
		out[fieldUnesc.Replace(k)] = v
	}
	return out
}

func toDoc(v *store.Version, history bool) *doc {
	d := &doc{
		ID: v.ID, Type: v.Type, V: v.VersionID, TS: v.LastUpdated.UnixMicro(), Del: v.Deleted,
		Method: v.Method, JSON: string(v.JSON), Hash: v.Hash, Patient: v.Patient, Sec: v.Security,
		Org: v.Org, Author: v.Author, Keys: escMap(v.Keys), SortStr: escMap(v.SortStr),
	}
	if len(v.Ranges) > 0 {
		d.Ranges = map[string][]rangeDoc{}
		for k, rs := range v.Ranges {
			out := make([]rangeDoc, len(rs))
			for i, r := range rs {
				out[i] = rangeDoc{Lo: r.Lo, Hi: r.Hi}
			}
			d.Ranges[fieldEsc.Replace(k)] = out
		}
	}
	if len(v.SortNum) > 0 {
		d.SortNum = map[string][]float64{}
		for k, n := range v.SortNum {
			d.SortNum[fieldEsc.Replace(k)] = []float64{n[0], n[1]}
		}
	}
	if v.Blob != nil {
		d.Blob = &blobRefDoc{Key: v.Blob.Key, Size: v.Blob.Size, SHA1: hex.EncodeToString(v.Blob.SHA1)}
	}
	if history {
		d.ID = histID(v.ID, v.VersionID)
		d.RID = v.ID
	}
	return d
}

func (d *doc) version() *store.Version {
	id := d.ID
	if d.RID != "" {
		id = d.RID
	}
	v := &store.Version{
		Type: d.Type, ID: id, VersionID: d.V, LastUpdated: time.UnixMicro(d.TS).UTC(), Deleted: d.Del,
		Method: d.Method, Hash: d.Hash, Patient: d.Patient, Security: d.Sec, Org: d.Org,
		Author: d.Author, Keys: unescMap(d.Keys), SortStr: unescMap(d.SortStr),
	}
	if len(d.Ranges) > 0 {
		v.Ranges = map[string][]store.Range{}
		for k, rs := range d.Ranges {
			out := make([]store.Range, len(rs))
			for i, r := range rs {
				out[i] = store.Range{Lo: r.Lo, Hi: r.Hi}
			}
			v.Ranges[fieldUnesc.Replace(k)] = out
		}
	}
	if len(d.SortNum) > 0 {
		v.SortNum = map[string][2]float64{}
		for k, n := range d.SortNum {
			if len(n) == 2 {
				v.SortNum[fieldUnesc.Replace(k)] = [2]float64{n[0], n[1]}
			}
		}
	}
	if !d.Del {
		v.JSON = []byte(d.JSON)
	}
	if d.Blob != nil {
		sum, _ := hex.DecodeString(d.Blob.SHA1)
		v.Blob = &store.BlobRef{Key: d.Blob.Key, Size: d.Blob.Size, SHA1: sum}
	}
	return v
}

// findDoc reads the document with _id id of c into d, decoded by
// doc.UnmarshalBSON straight from the reply (the driver's Decode would
// first build a reader and look up a codec). mongo.ErrNoDocuments when
// there is none.
func findDoc(ctx context.Context, c *mongo.Collection, id string, d *doc) error {
	raw, err := c.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
	if err != nil {
		return err
	}
	return d.UnmarshalBSON(raw)
}

// Read implements store.Store. The filter is exactly {_id: id}.
func (s *Store) Read(ctx context.Context, typ, id string) (*store.Version, error) {
	if v := s.tx.overlaid(typ, id); v != nil {
		if v.Deleted {
			return v, store.E("read", store.ErrGone, nil)
		}
		return v, nil
	}
	if s.opts.RawCollection != nil && s.opts.RawCollection(ctx, curName(typ)) {
		return s.readRaw(ctx, typ, id)
	}
	var d doc
	err := findDoc(ctx, s.db.Collection(curName(typ)), id, &d)
	if err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, store.E("read", store.ErrNotFound, nil)
		}
		return nil, store.E("read", store.ErrUnavailable, err)
	}
	v := d.version()
	if v.Deleted {
		return v, store.E("read", store.ErrGone, nil)
	}
	return v, nil
}

// VRead implements store.Store. The filter is exactly {_id: "<id>/<vid>"}.
func (s *Store) VRead(ctx context.Context, typ, id string, vid int64) (*store.Version, error) {
	var d doc
	err := findDoc(ctx, s.db.Collection(histName(typ)), histID(id, vid), &d)
	if err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			if vid == 1 {
				// A write-once resource (Append) has no history document.
				if cur, err := s.Read(ctx, typ, id); err == nil && cur.VersionID == 1 {
					return cur, nil
				}
			}
			return nil, store.E("vread", store.ErrNotFound, nil)
		}
		return nil, store.E("vread", store.ErrUnavailable, err)
	}
	if !s.txVisible(ctx, d.Tx) {
		return nil, store.E("vread", store.ErrNotFound, nil)
	}
	return d.version(), nil
}

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, v *store.Version) error {
	if v.Type == "" || v.ID == "" || v.VersionID < 1 {
		return store.E("put", store.ErrInvalid, nil)
	}
	hc, err := s.coll(ctx, histName(v.Type))
	if err != nil {
		return err
	}
	cc, err := s.coll(ctx, curName(v.Type))
	if err != nil {
		return err
	}
	unlock, err := s.lockKeys(ctx, []string{key(v.Type, v.ID)})
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := hc.InsertOne(ctx, toDoc(v, true)); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			s.repair(ctx, v.Type, v.ID, v.VersionID)
			return store.E("put", store.ErrConflict, nil)
		}
		return store.E("put", store.ErrUnavailable, err)
	}
	cur := toDoc(v, false)
	if v.VersionID == 1 {
		_, err = cc.InsertOne(ctx, cur)
		if mongo.IsDuplicateKeyError(err) {
			// A current document exists without version 1 in history:
			// only possible after a manual repair; replace it.
			_, err = cc.ReplaceOne(ctx, bson.D{{Key: "_id", Value: v.ID}}, cur)
		}
	} else {
		_, err = cc.ReplaceOne(ctx, bson.D{{Key: "_id", Value: v.ID}}, cur, options.Replace().SetUpsert(true))
	}
	if err != nil {
		return store.E("put", store.ErrUnavailable, err)
	}
	return nil
}

// readRaw reads a document of a write-once collection kept outside the
// engine (Options.AppendRaw) by its _id.
func (s *Store) readRaw(ctx context.Context, typ, id string) (*store.Version, error) {
	var v *store.Version
	err := s.opts.Scan(ctx, curName(typ), sqlDoc+"->>'$._id' = ?", []any{id}, func(raw []byte) error {
		var d doc
		if err := json.Unmarshal(raw, &d); err != nil {
			return err
		}
		v = d.version()
		return nil
	})
	if err != nil {
		return nil, store.E("read", store.ErrUnavailable, err)
	}
	if v == nil {
		return nil, store.E("read", store.ErrNotFound, nil)
	}
	return v, nil
}

// Append implements store.Store: per type, one insert of the current
// documents (no history documents: see store.Store.Append; VRead of
// version 1 falls back to the current document). On the embedded engine
// the documents go to a plain SQLite table in one transaction
// (Options.AppendRaw), outside FerretDB's per-document insert path.
func (s *Store) Append(ctx context.Context, vs []*store.Version) error {
	byType := map[string][]*store.Version{}
	var types []string
	for _, v := range vs {
		if v.Type == "" || v.ID == "" || v.VersionID != 1 {
			return store.E("append", store.ErrInvalid, nil)
		}
		if _, ok := byType[v.Type]; !ok {
			types = append(types, v.Type)
		}
		byType[v.Type] = append(byType[v.Type], v)
	}
	if s.opts.AppendRaw != nil {
		// The engine's database file must exist: it does once any
		// collection does (the claims collection is always there).
		if _, err := s.coll(ctx, claimsName); err != nil {
			return err
		}
	}
	for _, typ := range types {
		var err error
		if s.opts.AppendRaw != nil {
			docs := make([][]byte, 0, len(byType[typ]))
			for _, v := range byType[typ] {
				b, merr := json.Marshal(toDoc(v, false))
				if merr != nil {
					return store.E("append", store.ErrInvalid, merr)
				}
				docs = append(docs, b)
			}
			err = s.opts.AppendRaw(ctx, curName(typ), docs)
		} else {
			cc, cerr := s.coll(ctx, curName(typ))
			if cerr != nil {
				return cerr
			}
			docs := make([]any, 0, len(byType[typ]))
			for _, v := range byType[typ] {
				docs = append(docs, toDoc(v, false))
			}
			_, err = cc.InsertMany(ctx, docs)
		}
		if err != nil {
			if errors.Is(err, ErrDuplicateRaw) || mongo.IsDuplicateKeyError(err) {
				return store.E("append", store.ErrConflict, err)
			}
			return store.E("append", store.ErrUnavailable, err)
		}
	}
	return nil
}

// ErrDuplicateRaw is what an Options.AppendRaw error wraps when a
// document's _id exists.
var ErrDuplicateRaw = errors.New("duplicate _id")

// repair rolls the current document forward when history holds a version
// newer than it that is older than the grace period (a writer died between
// its two steps).
func (s *Store) repair(ctx context.Context, typ, id string, vid int64) {
	var hd doc
	if err := s.db.Collection(histName(typ)).FindOne(ctx, bson.D{{Key: "_id", Value: histID(id, vid)}}).Decode(&hd); err != nil {
		return
	}
	if hd.Tx != "" {
		return // a journal commit's version: recovery owns it
	}
	h := hd.version()
	if time.Since(h.LastUpdated) < RollForwardGrace {
		return
	}
	cur, err := s.Read(ctx, typ, id)
	if err != nil && !errors.Is(err, store.ErrGone) && !errors.Is(err, store.ErrNotFound) {
		return
	}
	if cur != nil && cur.VersionID >= vid {
		return
	}
	// Roll forward to the newest orphaned version.
	for {
		next, err := s.VRead(ctx, typ, id, h.VersionID+1)
		if err != nil {
			break
		}
		h = next
	}
	filter := bson.D{{Key: "_id", Value: id}, {Key: "v", Value: bson.D{{Key: "$lt", Value: h.VersionID}}}}
	if cur == nil {
		_, _ = s.db.Collection(curName(typ)).InsertOne(ctx, toDoc(h, false))
		return
	}
	_, _ = s.db.Collection(curName(typ)).ReplaceOne(ctx, filter, toDoc(h, false))
}

// History implements store.Store.
func (s *Store) History(ctx context.Context, q store.HistoryQuery) ([]*store.Version, error) {
	types := []string{q.Type}
	if q.Type == "" {
		var err error
		if types, err = s.historyTypes(ctx); err != nil {
			return nil, err
		}
	}
	var all []*store.Version
	for _, t := range types {
		vs, err := s.historyOf(ctx, t, q)
		if err != nil {
			return nil, err
		}
		all = append(all, vs...)
	}
	sort.Slice(all, func(i, j int) bool { return newer(all[i], all[j]) })
	if q.Limit > 0 && len(all) > q.Limit {
		all = all[:q.Limit]
	}
	return all, nil
}

// newer orders versions newest first: lastUpdated, then type, id, version.
func newer(a, b *store.Version) bool {
	return cursorLess(cursorOf(b), cursorOf(a))
}

func cursorOf(v *store.Version) store.Cursor {
	return store.Cursor{LastUpdated: v.LastUpdated, Type: v.Type, ID: v.ID, VersionID: v.VersionID}
}

// cursorLess reports whether a sorts before b in ascending order.
func cursorLess(a, b store.Cursor) bool {
	if !a.LastUpdated.Equal(b.LastUpdated) {
		return a.LastUpdated.Before(b.LastUpdated)
	}
	if a.Type != b.Type {
		return a.Type < b.Type
	}
	if a.ID != b.ID {
		return a.ID < b.ID
	}
	return a.VersionID < b.VersionID
}

func (s *Store) historyFilter(typ string, q store.HistoryQuery) bson.D {
	f := bson.D{}
	if q.ID != "" {
		f = append(f, bson.E{Key: "id", Value: q.ID})
	}
	ts := bson.D{}
	if !q.Since.IsZero() {
		ts = append(ts, bson.E{Key: "$gte", Value: q.Since.UnixMicro()})
	}
	if q.Before != nil {
		// Versions at the cursor's instant are filtered exactly in Go.
		ts = append(ts, bson.E{Key: "$lte", Value: q.Before.LastUpdated.UnixMicro()})
	}
	if len(ts) > 0 {
		f = append(f, bson.E{Key: "ts", Value: ts})
	}
	return f
}

func (s *Store) historyOf(ctx context.Context, typ string, q store.HistoryQuery) ([]*store.Version, error) {
	limit := int64(0)
	if q.Limit > 0 {
		// Extra rows cover versions sharing the cursor's instant.
		limit = int64(q.Limit) + 16
	}
	var out []*store.Version
	for {
		fo := options.Find().SetSort(bson.D{{Key: "ts", Value: -1}, {Key: "_id", Value: -1}})
		if limit > 0 {
			fo.SetLimit(limit)
		}
		cur, err := s.db.Collection(histName(typ)).Find(ctx, s.historyFilter(typ, q), fo)
		if err != nil {
			return nil, store.E("history", store.ErrUnavailable, err)
		}
		var docs []doc
		if err := cur.All(ctx, &docs); err != nil {
			return nil, store.E("history", store.ErrUnavailable, err)
		}
		out = out[:0]
		for i := range docs {
			if !s.txVisible(ctx, docs[i].Tx) {
				continue
			}
			v := docs[i].version()
			if q.Before != nil && !cursorLess(cursorOf(v), *q.Before) {
				continue
			}
			out = append(out, v)
		}
		if limit == 0 || len(out) >= q.Limit || int64(len(docs)) < limit {
			return out, nil
		}
		// Many versions at the cursor's instant: fetch without limit.
		limit = 0
	}
}

func (s *Store) historyTypes(ctx context.Context) ([]string, error) {
	return s.typesWith(ctx, "h_")
}

// typesWith lists the resource types of the collections named prefix+Type.
func (s *Store) typesWith(ctx context.Context, prefix string) ([]string, error) {
	names, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, store.E("list collections", store.ErrUnavailable, err)
	}
	var types []string
	for _, n := range names {
		if t, ok := strings.CutPrefix(n, prefix); ok {
			types = append(types, t)
		}
	}
	sort.Strings(types)
	return types, nil
}

// CountHistory implements store.Store.
func (s *Store) CountHistory(ctx context.Context, q store.HistoryQuery) (int64, error) {
	types := []string{q.Type}
	if q.Type == "" {
		var err error
		if types, err = s.historyTypes(ctx); err != nil {
			return 0, err
		}
	}
	q.Before = nil
	var n int64
	for _, t := range types {
		c, err := s.db.Collection(histName(t)).CountDocuments(ctx, s.historyFilter(t, q))
		if err != nil {
			return 0, store.E("count history", store.ErrUnavailable, err)
		}
		n += c
	}
	return n, nil
}

// Find implements store.Store.
func (s *Store) Find(ctx context.Context, q store.Query) ([]*store.Version, error) {
	if vs, ok, err := s.sqlPage(ctx, q); ok || err != nil {
		return vs, err
	}
	vs, err := s.match(ctx, q)
	if err != nil {
		return nil, err
	}
	return store.SortPage(vs, q), nil
}

// sqlPage serves a page in id order on the embedded engine when the
// filter translates exactly to SQL: SQLite orders, applies the keyset
// bound and the limit, so only the page's rows are read out and decoded
// (a patient-scoped search no longer decodes the whole record). ok is
// false when the query does not qualify.
func (s *Store) sqlPage(ctx context.Context, q store.Query) ([]*store.Version, bool, error) {
	if s.opts.Scan == nil || len(q.Sort) > 0 || q.Limit <= 0 {
		return nil, false, nil
	}
	where := q.Where()
	if _, byID := idsOf(where); byID {
		return nil, false, nil
	}
	w, args, exact := sqlWhereExact(where)
	if !exact {
		return nil, false, nil
	}
	order := "ASC"
	switch {
	case q.After != nil:
		w += " AND " + sqlDoc + "->>'$._id' > ?"
		args = append(args, q.After.ID)
	case q.Before != nil:
		w += " AND " + sqlDoc + "->>'$._id' < ?"
		args = append(args, q.Before.ID)
		order = "DESC"
	}
	w += " ORDER BY " + sqlDoc + "->>'$._id' " + order + " LIMIT " + strconv.Itoa(q.Limit)
	var out []*store.Version
	err := s.opts.Scan(ctx, curName(q.Type), w, args, func(raw []byte) error {
		var d doc
		if err := json.Unmarshal(raw, &d); err != nil {
			return err
		}
		if v := d.version(); !v.Deleted && where.Match(v) {
			out = append(out, v)
		}
		return nil
	})
	if err != nil {
		return nil, true, store.E("find", store.ErrUnavailable, err)
	}
	// A journal commit being applied: its versions replace or join the
	// page, which is then put back in order and trimmed.
	return store.SortPage(s.withOverlay(q.Type, where, out), q), true, nil
}

// Reindex implements store.Store.
func (s *Store) Reindex(ctx context.Context, v *store.Version) error {
	unlock, err := s.lockKeys(ctx, []string{key(v.Type, v.ID)})
	if err != nil {
		return err
	}
	defer unlock()
	cur, err := s.Read(ctx, v.Type, v.ID)
	if err != nil {
		return err
	}
	if cur.VersionID != v.VersionID {
		return store.E("reindex", store.ErrConflict, nil)
	}
	cur.Keys, cur.Ranges, cur.SortStr, cur.SortNum, cur.Patient = v.Keys, v.Ranges, v.SortStr, v.SortNum, v.Patient
	if s.opts.ReplaceRaw != nil && s.opts.RawCollection(ctx, curName(v.Type)) {
		b, err := json.Marshal(toDoc(cur, false))
		if err == nil {
			_, err = s.opts.ReplaceRaw(ctx, curName(v.Type), v.ID, b)
		}
		if err != nil {
			return store.E("reindex", store.ErrUnavailable, err)
		}
		return nil
	}
	if _, err := s.db.Collection(curName(v.Type)).ReplaceOne(ctx, bson.D{{Key: "_id", Value: v.ID}}, toDoc(cur, false)); err != nil {
		return store.E("reindex", store.ErrUnavailable, err)
	}
	return nil
}

// Types lists the resource types that have a collection of current
// versions.
func (s *Store) Types(ctx context.Context) ([]string, error) {
	return s.typesWith(ctx, "r_")
}

// Search implements store.Store.
func (s *Store) Search(ctx context.Context, q store.Query) ([]*store.Version, int64, error) {
	if vs, ok, err := s.sqlPage(ctx, q); ok || err != nil {
		if err != nil {
			return nil, 0, err
		}
		n, err := s.Count(ctx, q)
		return vs, n, err
	}
	vs, err := s.match(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	return store.SortPage(vs, q), int64(len(vs)), nil
}

// Count implements store.Store. On the embedded engine, when the filter
// translates exactly to SQL and no journal commit is being applied, the
// rows are counted by SQLite without being read out.
func (s *Store) Count(ctx context.Context, q store.Query) (int64, error) {
	if s.opts.Count != nil {
		where := q.Where()
		if _, byID := idsOf(where); !byID {
			w, args, exact := sqlWhereExact(where)
			s.tx.mu.RLock()
			applying := len(s.tx.overlay) > 0
			s.tx.mu.RUnlock()
			if exact && !applying {
				n, err := s.opts.Count(ctx, curName(q.Type), w, args)
				if err != nil {
					return 0, store.E("count", store.ErrUnavailable, err)
				}
				return n, nil
			}
		}
	}
	vs, err := s.match(ctx, q)
	return int64(len(vs)), err
}

// maxIDFetch is the largest _id list fetched one read at a time.
const maxIDFetch = 100

// match returns every current, non-deleted version matching q, unsorted.
//
// A query on a few ids reads each by {_id} (the engine's fast path). On
// the embedded engine the other queries read rows straight from SQLite
// (all rows of the type, or those of the queried patients through an
// index on the owning patient) and evaluate the filter in memory; on
// MongoDB the filter is translated to a query its indexes serve, and
// evaluated again in memory (the same semantics either way).
func (s *Store) match(ctx context.Context, q store.Query) ([]*store.Version, error) {
	where := q.Where()
	var out []*store.Version
	keep := func(v *store.Version) {
		if !v.Deleted && where.Match(v) {
			out = append(out, v)
		}
	}
	switch ids, byID := idsOf(where); {
	case byID && len(ids) <= maxIDFetch:
		// One read per id: when a journal commit reaches its commit point
		// in between, read them all again, so that the result never holds
		// half of a commit.
		for attempt := 0; ; attempt++ {
			out = out[:0]
			gen := s.tx.commits.Load()
			for _, id := range ids {
				v, err := s.Read(ctx, q.Type, id)
				switch {
				case err == nil:
					keep(v)
				case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrGone):
				default:
					return nil, err
				}
			}
			if len(ids) < 2 || s.tx.commits.Load() == gen || attempt == 20 {
				return out, nil // Read already consulted the overlay
			}
		}
	case s.opts.Scan != nil:
		w, args := sqlWhere(where)
		err := s.opts.Scan(ctx, curName(q.Type), w, args, func(raw []byte) error {
			var d doc
			if err := json.Unmarshal(raw, &d); err != nil {
				return err
			}
			keep(d.version())
			return nil
		})
		if err != nil {
			return nil, store.E("find", store.ErrUnavailable, err)
		}
	default:
		f := toBSON(where)
		f = append(f, bson.E{Key: "del", Value: false})
		cur, err := s.db.Collection(curName(q.Type)).Find(ctx, f)
		if err != nil {
			return nil, store.E("find", store.ErrUnavailable, err)
		}
		var docs []doc
		if err := cur.All(ctx, &docs); err != nil {
			return nil, store.E("find", store.ErrUnavailable, err)
		}
		for i := range docs {
			keep(docs[i].version())
		}
	}
	return s.withOverlay(q.Type, where, out), nil
}

// idsOf returns the ids an _id equality at the top of f restricts to.
func idsOf(f store.Filter) ([]string, bool) {
	switch f.Op {
	case store.OpEq:
		if f.Key == "_id" {
			return f.Values, true
		}
	case store.OpAnd:
		for _, c := range f.Children {
			if ids, ok := idsOf(c); ok {
				return ids, true
			}
		}
	}
	return nil, false
}

// toBSON translates a filter for MongoDB.
func toBSON(f store.Filter) bson.D {
	switch f.Op {
	case store.OpAll:
		return bson.D{}
	case store.OpAnd, store.OpOr:
		parts := bson.A{}
		for _, c := range f.Children {
			parts = append(parts, toBSON(c))
		}
		if len(parts) == 0 {
			if f.Op == store.OpAnd {
				return bson.D{}
			}
			return bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{}}}}}
		}
		op := "$and"
		if f.Op == store.OpOr {
			op = "$or"
		}
		return bson.D{{Key: op, Value: parts}}
	case store.OpNot:
		return bson.D{{Key: "$nor", Value: bson.A{toBSON(f.Children[0])}}}
	case store.OpEq:
		field := "k." + fieldEsc.Replace(f.Key)
		if f.Key == "_id" {
			field = "_id"
		}
		return bson.D{{Key: field, Value: bson.D{{Key: "$in", Value: f.Values}}}}
	case store.OpPrefix, store.OpContains:
		ors := bson.A{}
		for _, v := range f.Values {
			re := regexp.QuoteMeta(v)
			if f.Op == store.OpPrefix {
				re = "^" + re
			}
			ors = append(ors, bson.D{{Key: "k." + fieldEsc.Replace(f.Key), Value: bson.D{{Key: "$regex", Value: re}}}})
		}
		return bson.D{{Key: "$or", Value: ors}}
	case store.OpRange:
		em := bson.D{}
		for _, b := range f.Bounds {
			em = append(em, bson.E{Key: b.Field, Value: bson.D{{Key: "$" + map[string]string{"lt": "lt", "le": "lte", "gt": "gt", "ge": "gte"}[b.Cmp], Value: b.V}}})
		}
		return bson.D{{Key: "r." + fieldEsc.Replace(f.Key), Value: bson.D{{Key: "$elemMatch", Value: em}}}}
	case store.OpExists:
		k := fieldEsc.Replace(f.Key)
		return bson.D{{Key: "$or", Value: bson.A{
			bson.D{{Key: "k." + k + ".0", Value: bson.D{{Key: "$exists", Value: true}}}},
			bson.D{{Key: "r." + k + ".0", Value: bson.D{{Key: "$exists", Value: true}}}},
		}}}
	case store.OpPatient:
		return bson.D{{Key: "p", Value: bson.D{{Key: "$in", Value: f.Values}}}}
	}
	return bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{}}}}}
}

// withOverlay makes a Find consistent with commits being applied: their
// versions replace what the engine returned, and new matches are added.
func (s *Store) withOverlay(typ string, where store.Filter, found []*store.Version) []*store.Version {
	s.tx.mu.RLock()
	defer s.tx.mu.RUnlock()
	if len(s.tx.overlay) == 0 {
		return found
	}
	out := found[:0]
	seen := map[string]bool{}
	for _, v := range found {
		k := key(v.Type, v.ID)
		seen[k] = true
		if p := s.tx.overlay[k]; p != nil {
			v = p.v
			if v.Deleted || !where.Match(v) {
				continue
			}
		}
		out = append(out, v)
	}
	for k, p := range s.tx.overlay {
		if !seen[k] && p.v.Type == typ && !p.v.Deleted && where.Match(p.v) {
			out = append(out, p.v)
		}
	}
	return out
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Claim implements store.Store.
func (s *Store) Claim(ctx context.Context, key, value string) (string, error) {
	c, err := s.coll(ctx, claimsName)
	if err != nil {
		return "", err
	}
	for range 3 {
		_, err = c.InsertOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "v", Value: value}})
		if err == nil {
			return "", nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return "", store.E("claim", store.ErrUnavailable, err)
		}
		var held struct {
			V string `bson:"v"`
		}
		err = c.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&held)
		if err == nil {
			return held.V, nil
		}
		if !errors.Is(err, mongo.ErrNoDocuments) {
			return "", store.E("claim", store.ErrUnavailable, err)
		}
		// released in between: try again
	}
	return "", store.E("claim", store.ErrConflict, nil)
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, key, value string) error {
	_, err := s.db.Collection(claimsName).DeleteOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "v", Value: value}})
	if err != nil {
		return store.E("release", store.ErrUnavailable, err)
	}
	return nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		return store.E("ping", store.ErrUnavailable, err)
	}
	return nil
}

// Close implements store.Store.
func (s *Store) Close(ctx context.Context) error {
	if !s.owned {
		return nil
	}
	return s.client.Disconnect(ctx)
}
