package mongo

// Atomic multi-resource commits.
//
// On a MongoDB replica set or sharded cluster, Commit runs in a
// multi-document transaction.
//
// Elsewhere (the embedded FerretDB engine, which rejects startTransaction,
// or a standalone mongod) Commit uses a journal:
//
//  1. insert a txlog document {_id: tx, state: "pending", items};
//  2. insert every version into history, tagged with tx (this claims the
//     version numbers exactly as Put does; a duplicate means a concurrent
//     writer won: delete what was inserted, drop the txlog, ErrConflict);
//  3. set the txlog state to "committed": the commit point;
//  4. replace the current documents;
//  5. delete the txlog document.
//
// Readers of this process never see a half-applied commit: between 3 and
// 5 the committed versions sit in an in-memory overlay that Read and Find
// consult first, and writers of those resources wait for step 5. History
// and vread hide versions of transactions that are not committed.
//
// After a crash, Open recovers before serving: a "committed" txlog is
// applied again (idempotent), a "pending" one is rolled back (its history
// versions are deleted). So after kill -9 at any point, a restart shows
// either the whole commit or none of it.
//
// Reader atomicity across several processes sharing one standalone mongod
// is not provided (the overlay is per process): run MongoDB as a replica
// set in production (docker-compose.yml does).

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/dossier-fhir/dossier/store"
)

const txlogName = "txlog"

// pendingApply is a committed version not yet written as current.
type pendingApply struct {
	v    *store.Version
	done chan struct{}
}

// txState is the per-process state of journal commits.
type txState struct {
	mu        sync.RWMutex
	overlay   map[string]*pendingApply // "Type/id" → committed, being applied
	pending   map[string]bool          // tx ids not yet committed
	finished  map[string]bool          // tx ids known committed (cache)
	ownWrites map[string]chan struct{} // keys a Put or Commit of this process is writing
	// commits counts commit points: a reader made of several reads
	// retries when it changed in between (no half of a commit).
	commits atomic.Uint64
}

func key(typ, id string) string { return typ + "/" + id }

func (t *txState) init() {
	t.overlay = map[string]*pendingApply{}
	t.pending = map[string]bool{}
	t.finished = map[string]bool{}
	t.ownWrites = map[string]chan struct{}{}
}

// overlaid returns the committed version of typ/id being applied, if any.
func (t *txState) overlaid(typ, id string) *store.Version {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if p := t.overlay[key(typ, id)]; p != nil {
		return p.v
	}
	return nil
}

// waitApplied blocks while any of keys is in the overlay.
func (t *txState) waitApplied(ctx context.Context, keys []string) error {
	for _, k := range keys {
		for {
			t.mu.RLock()
			p := t.overlay[k]
			t.mu.RUnlock()
			if p == nil {
				break
			}
			select {
			case <-p.done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

func newTxID() string {
	return fmt.Sprintf("tx-%d-%s", time.Now().UnixNano(), randHex(6))
}

// supportsTransactions asks the deployment whether it is a replica set or
// a sharded cluster.
func (s *Store) supportsTransactions(ctx context.Context) bool {
	var hello bson.M
	if err := s.db.RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return false
	}
	if _, ok := hello["setName"]; ok {
		return true
	}
	return hello["msg"] == "isdbgrid"
}

// Commit implements store.Store.
func (s *Store) Commit(ctx context.Context, vs []*store.Version) error {
	if len(vs) == 0 {
		return nil
	}
	seen := map[string]bool{}
	for _, v := range vs {
		if v.Type == "" || v.ID == "" || v.VersionID < 1 || seen[key(v.Type, v.ID)] {
			return store.E("commit", store.ErrInvalid, nil)
		}
		seen[key(v.Type, v.ID)] = true
		if _, err := s.coll(ctx, histName(v.Type)); err != nil {
			return err
		}
		if _, err := s.coll(ctx, curName(v.Type)); err != nil {
			return err
		}
	}
	if s.transactions {
		return s.commitTransaction(ctx, vs)
	}
	return s.commitJournal(ctx, vs)
}

func (s *Store) commitTransaction(ctx context.Context, vs []*store.Version) error {
	sess, err := s.client.StartSession()
	if err != nil {
		return store.E("commit", store.ErrUnavailable, err)
	}
	defer sess.EndSession(context.WithoutCancel(ctx))
	_, err = sess.WithTransaction(ctx, func(sc context.Context) (any, error) {
		for _, v := range vs {
			if _, err := s.db.Collection(histName(v.Type)).InsertOne(sc, toDoc(v, true)); err != nil {
				if mongo.IsDuplicateKeyError(err) {
					return nil, store.E("commit", store.ErrConflict, nil)
				}
				return nil, err
			}
			if _, err := s.db.Collection(curName(v.Type)).ReplaceOne(sc, bson.D{{Key: "_id", Value: v.ID}},
				toDoc(v, false), options.Replace().SetUpsert(true)); err != nil {
				return nil, err
			}
		}
		return nil, nil
	})
	if err == nil {
		return nil
	}
	if errors.Is(err, store.ErrConflict) || mongo.IsDuplicateKeyError(err) {
		return store.E("commit", store.ErrConflict, nil)
	}
	return store.E("commit", store.ErrUnavailable, err)
}

type txItem struct {
	Type string `bson:"t"`
	ID   string `bson:"id"`
	V    int64  `bson:"v"`
}

type txDoc struct {
	ID    string   `bson:"_id"`
	State string   `bson:"state"`
	TS    int64    `bson:"ts"`
	Items []txItem `bson:"items"`
}

// lockKeys waits until no other Put/Commit of this process writes one of
// keys, then marks them as being written. The returned func releases them.
func (s *Store) lockKeys(ctx context.Context, keys []string) (func(), error) {
	t := &s.tx
	for {
		t.mu.Lock()
		var wait chan struct{}
		for _, k := range keys {
			if ch := t.ownWrites[k]; ch != nil {
				wait = ch
				break
			}
			if p := t.overlay[k]; p != nil {
				wait = p.done
				break
			}
		}
		if wait == nil {
			ch := make(chan struct{})
			for _, k := range keys {
				t.ownWrites[k] = ch
			}
			t.mu.Unlock()
			return func() {
				t.mu.Lock()
				for _, k := range keys {
					if t.ownWrites[k] == ch {
						delete(t.ownWrites, k)
					}
				}
				t.mu.Unlock()
				close(ch)
			}, nil
		}
		t.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, store.E("lock", store.ErrUnavailable, ctx.Err())
		}
	}
}

// Hook, when set (tests only), is called at each step of a journal commit
// with the step's name and the index of the version concerned.
var Hook func(step string, i int)

func hook(step string, i int) {
	if Hook != nil {
		Hook(step, i)
	}
}

func (s *Store) commitJournal(ctx context.Context, vs []*store.Version) error {
	keys := make([]string, len(vs))
	for i, v := range vs {
		keys[i] = key(v.Type, v.ID)
	}
	unlock, err := s.lockKeys(ctx, keys)
	if err != nil {
		return err
	}
	defer unlock()

	tx := newTxID()
	s.tx.mu.Lock()
	s.tx.pending[tx] = true
	s.tx.mu.Unlock()
	defer func() {
		s.tx.mu.Lock()
		delete(s.tx.pending, tx)
		s.tx.mu.Unlock()
	}()
	logc, err := s.coll(ctx, txlogName)
	if err != nil {
		return err
	}
	td := txDoc{ID: tx, State: "pending", TS: time.Now().UnixMicro()}
	for _, v := range vs {
		td.Items = append(td.Items, txItem{Type: v.Type, ID: v.ID, V: v.VersionID})
	}
	if _, err := logc.InsertOne(ctx, td); err != nil {
		return store.E("commit", store.ErrUnavailable, err)
	}
	hook("txlog", -1)
	// Rollback uses a context that outlives a cancelled request.
	bg := context.WithoutCancel(ctx)
	// History inserts, one ordered InsertMany per type.
	for _, g := range groupByType(vs) {
		docs := make([]any, len(g))
		for i, v := range g {
			d := toDoc(v, true)
			d.Tx = tx
			docs[i] = d
		}
		if _, err := s.db.Collection(histName(g[0].Type)).InsertMany(ctx, docs); err != nil {
			s.rollbackHistory(bg, tx, vs)
			_, _ = logc.DeleteOne(bg, bson.D{{Key: "_id", Value: tx}})
			if mongo.IsDuplicateKeyError(err) {
				return store.E("commit", store.ErrConflict, nil)
			}
			return store.E("commit", store.ErrUnavailable, err)
		}
		hook("history", len(g)-1)
	}
	// The commit point.
	if _, err := logc.UpdateOne(bg, bson.D{{Key: "_id", Value: tx}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: "committed"}}}}); err != nil {
		s.rollbackHistory(bg, tx, vs)
		_, _ = logc.DeleteOne(bg, bson.D{{Key: "_id", Value: tx}})
		return store.E("commit", store.ErrUnavailable, err)
	}
	hook("committed", -1)
	done := make(chan struct{})
	s.tx.mu.Lock()
	delete(s.tx.pending, tx)
	s.tx.finished[tx] = true
	for _, v := range vs {
		s.tx.overlay[key(v.Type, v.ID)] = &pendingApply{v: v, done: done}
	}
	s.tx.commits.Add(1)
	s.tx.mu.Unlock()
	// Apply. Failures here leave the txlog committed: the next start
	// applies it; meanwhile this process serves the overlay.
	var applyErr error
	for _, g := range groupByType(vs) {
		if err := s.applyCurrents(bg, g); err != nil {
			applyErr = err
			break
		}
		hook("applied", len(g)-1)
	}
	if applyErr != nil {
		return store.E("commit", store.ErrUnavailable, applyErr)
	}
	s.tx.mu.Lock()
	for _, v := range vs {
		delete(s.tx.overlay, key(v.Type, v.ID))
	}
	s.tx.mu.Unlock()
	close(done)
	_, _ = logc.DeleteOne(bg, bson.D{{Key: "_id", Value: tx}})
	hook("done", -1)
	return nil
}

// applyCurrent writes v as the current document, retrying briefly.
func (s *Store) applyCurrent(ctx context.Context, v *store.Version) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		_, err = s.db.Collection(curName(v.Type)).ReplaceOne(ctx, bson.D{{Key: "_id", Value: v.ID}},
			toDoc(v, false), options.Replace().SetUpsert(true))
		if err == nil {
			return nil
		}
		time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
	}
	return err
}

// txVisible reports whether a history version written by transaction tx
// may be shown: only once the transaction is committed.
func (s *Store) txVisible(ctx context.Context, tx string) bool {
	if tx == "" {
		return true
	}
	s.tx.mu.RLock()
	pending, finished := s.tx.pending[tx], s.tx.finished[tx]
	s.tx.mu.RUnlock()
	if pending {
		return false
	}
	if finished {
		return true
	}
	var td txDoc
	err := s.db.Collection(txlogName).FindOne(ctx, bson.D{{Key: "_id", Value: tx}}).Decode(&td)
	if err == nil && td.State != "committed" {
		return false
	}
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return false
	}
	s.tx.mu.Lock()
	if len(s.tx.finished) > 100000 {
		s.tx.finished = map[string]bool{}
	}
	s.tx.finished[tx] = true
	s.tx.mu.Unlock()
	return true
}

// recoverJournal finishes or undoes the journal commits a crash left.
func (s *Store) recoverJournal(ctx context.Context) error {
	cur, err := s.db.Collection(txlogName).Find(ctx, bson.D{})
	if err != nil {
		return store.E("recover", store.ErrUnavailable, err)
	}
	var txs []txDoc
	if err := cur.All(ctx, &txs); err != nil {
		return store.E("recover", store.ErrUnavailable, err)
	}
	for _, td := range txs {
		for _, it := range td.Items {
			hid := histID(it.ID, it.V)
			var h doc
			err := s.db.Collection(histName(it.Type)).FindOne(ctx, bson.D{{Key: "_id", Value: hid}}).Decode(&h)
			if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && h.Tx != td.ID) {
				continue // never inserted, or not ours
			}
			if err != nil {
				return store.E("recover", store.ErrUnavailable, err)
			}
			if td.State != "committed" {
				if _, err := s.db.Collection(histName(it.Type)).DeleteOne(ctx, bson.D{{Key: "_id", Value: hid}}); err != nil {
					return store.E("recover", store.ErrUnavailable, err)
				}
				continue
			}
			var c doc
			err = s.db.Collection(curName(it.Type)).FindOne(ctx, bson.D{{Key: "_id", Value: it.ID}}).Decode(&c)
			if err == nil && c.V >= it.V {
				continue
			}
			if err := s.applyCurrent(ctx, h.version()); err != nil {
				return store.E("recover", store.ErrUnavailable, err)
			}
		}
		if _, err := s.db.Collection(txlogName).DeleteOne(ctx, bson.D{{Key: "_id", Value: td.ID}}); err != nil {
			return store.E("recover", store.ErrUnavailable, err)
		}
	}
	return nil
}

// groupByType splits versions by type, keeping their order.
func groupByType(vs []*store.Version) [][]*store.Version {
	idx := map[string]int{}
	var out [][]*store.Version
	for _, v := range vs {
		i, ok := idx[v.Type]
		if !ok {
			i = len(out)
			idx[v.Type] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], v)
	}
	return out
}

// rollbackHistory deletes the history versions tx inserted.
func (s *Store) rollbackHistory(ctx context.Context, tx string, vs []*store.Version) {
	for _, g := range groupByType(vs) {
		ids := make([]string, len(g))
		for i, v := range g {
			ids[i] = histID(v.ID, v.VersionID)
		}
		_, _ = s.db.Collection(histName(g[0].Type)).DeleteMany(ctx, bson.D{
			{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}, {Key: "tx", Value: tx}})
	}
}

// applyCurrents writes versions of one type as current: new resources in
// one InsertMany (on the embedded engine one SQLite transaction per 100
// documents instead of one per document), the others in one bulk write of
// replacements.
func (s *Store) applyCurrents(ctx context.Context, g []*store.Version) error {
	c := s.db.Collection(curName(g[0].Type))
	var creates []any
	var replace []*store.Version
	for _, v := range g {
		if v.VersionID == 1 {
			creates = append(creates, toDoc(v, false))
		} else {
			replace = append(replace, v)
		}
	}
	if len(creates) > 0 {
		if _, err := c.InsertMany(ctx, creates, options.InsertMany().SetOrdered(false)); err != nil {
			if !mongo.IsDuplicateKeyError(err) {
				return err
			}
			// Already there (a recovery applying again): replace them all.
			for _, v := range g {
				if v.VersionID == 1 {
					replace = append(replace, v)
				}
			}
		}
	}
	if len(replace) == 0 {
		return nil
	}
	models := make([]mongo.WriteModel, len(replace))
	for i, v := range replace {
		models[i] = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: v.ID}}).
			SetReplacement(toDoc(v, false)).SetUpsert(true)
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if _, err = c.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false)); err == nil {
			return nil
		}
		time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
	}
	return err
}
