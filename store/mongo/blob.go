package mongo

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/dossier-fhir/dossier/store"
)

// Blobs live in one collection, "blobs":
//
//   - chunk documents, _id = "<key>/<9-digit chunk number>", d = the bytes
//     (at most Options.ChunkSize of them);
//   - one header document, _id = "<key>", written last: n (size), s (SHA-1,
//     hex), c (chunk count), cs (chunk size).
//
// Every read is an exact {_id: ...} lookup (the embedded engine's fast
// path, served by the SQLite index the engine adds), one chunk at a time,
// so a stream holds about one chunk in memory whatever the blob's size.
// A reader finds a blob only through its header, so an upload that died
// half-way is never visible; DeleteBlob removes its chunks.

const blobsName = "blobs"

// DefaultChunkSize is the blob chunk size when Options.ChunkSize is 0.
const DefaultChunkSize = 256 << 10

var _ store.Blobs = (*Store)(nil)

type blobHeader struct {
	ID        string `bson:"_id"`
	Size      int64  `bson:"n"`
	SHA1      string `bson:"s"`
	Chunks    int64  `bson:"c"`
	ChunkSize int64  `bson:"cs"`
}

type blobChunk struct {
	ID   string `bson:"_id"`
	Data []byte `bson:"d"`
}

func chunkID(key string, i int64) string { return fmt.Sprintf("%s/%09d", key, i) }

func (s *Store) chunkSize() int {
	if s.opts.ChunkSize > 0 {
		return s.opts.ChunkSize
	}
	return DefaultChunkSize
}

// PutBlob implements store.Store.
func (s *Store) PutBlob(ctx context.Context, key string, r io.Reader, max int64) (store.BlobInfo, error) {
	if key == "" || max < 0 {
		return store.BlobInfo{}, store.E("put blob", store.ErrInvalid, nil)
	}
	c, err := s.coll(ctx, blobsName)
	if err != nil {
		return store.BlobInfo{}, err
	}
	var exists blobHeader
	switch err := c.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&exists); {
	case err == nil:
		return store.BlobInfo{}, store.E("put blob", store.ErrConflict, nil)
	case !errors.Is(err, mongo.ErrNoDocuments):
		return store.BlobInfo{}, store.E("put blob", store.ErrUnavailable, err)
	}
	size := s.chunkSize()
	buf := make([]byte, size)
	h := sha1.New()
	lr := io.LimitReader(r, max+1)
	var total, n int64
	fail := func(kind, cause error) (store.BlobInfo, error) {
		// Remove what was written (even when ctx was cancelled).
		_ = s.deleteChunks(context.WithoutCancel(ctx), c, key, 0)
		return store.BlobInfo{}, store.E("put blob", kind, cause)
	}
	for {
		k, rerr := io.ReadFull(lr, buf)
		if k > 0 {
			total += int64(k)
			if total > max {
				return fail(store.ErrTooLarge, nil)
			}
			h.Write(buf[:k])
			// The chunk document reuses buf: the driver copies it into
			// the wire message before InsertOne returns.
			if _, err := c.InsertOne(ctx, blobChunk{ID: chunkID(key, n), Data: buf[:k]}); err != nil {
				if mongo.IsDuplicateKeyError(err) {
					return fail(store.ErrConflict, nil)
				}
				return fail(store.ErrUnavailable, err)
			}
			n++
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fail(store.ErrUnavailable, rerr)
		}
	}
	info := store.BlobInfo{Size: total, SHA1: h.Sum(nil)}
	hd := blobHeader{ID: key, Size: total, SHA1: hex.EncodeToString(info.SHA1), Chunks: n, ChunkSize: int64(size)}
	if _, err := c.InsertOne(ctx, hd); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return fail(store.ErrConflict, nil)
		}
		return fail(store.ErrUnavailable, err)
	}
	return info, nil
}

// OpenBlob implements store.Store.
func (s *Store) OpenBlob(ctx context.Context, key string) (io.ReadCloser, store.BlobInfo, error) {
	var hd blobHeader
	err := s.db.Collection(blobsName).FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&hd)
	if err != nil {
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, store.BlobInfo{}, store.E("open blob", store.ErrNotFound, nil)
		}
		return nil, store.BlobInfo{}, store.E("open blob", store.ErrUnavailable, err)
	}
	sum, err := hex.DecodeString(hd.SHA1)
	if err != nil {
		return nil, store.BlobInfo{}, store.E("open blob", store.ErrUnavailable, err)
	}
	info := store.BlobInfo{Size: hd.Size, SHA1: sum}
	return &blobReader{ctx: ctx, c: s.db.Collection(blobsName), hd: hd}, info, nil
}

// blobReader reads a blob one chunk at a time.
type blobReader struct {
	ctx    context.Context
	c      *mongo.Collection
	hd     blobHeader
	next   int64  // the next chunk to fetch
	cur    []byte // unread bytes of the current chunk
	read   int64  // bytes returned so far
	err    error
	closed bool
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.closed {
		return 0, store.E("read blob", store.ErrInvalid, errors.New("closed"))
	}
	for len(b.cur) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		if b.next >= b.hd.Chunks {
			if b.read != b.hd.Size {
				b.err = store.E("read blob", store.ErrUnavailable, errors.New("blob shorter than its header says"))
				return 0, b.err
			}
			return 0, io.EOF
		}
		var ch blobChunk
		err := b.c.FindOne(b.ctx, bson.D{{Key: "_id", Value: chunkID(b.hd.ID, b.next)}}).Decode(&ch)
		if err != nil {
			b.err = store.E("read blob", store.ErrUnavailable, err)
			return 0, b.err
		}
		b.next++
		b.cur = ch.Data
	}
	k := copy(p, b.cur)
	b.cur = b.cur[k:]
	b.read += int64(k)
	if b.read > b.hd.Size {
		b.err = store.E("read blob", store.ErrUnavailable, errors.New("blob longer than its header says"))
		return k, b.err
	}
	return k, nil
}

func (b *blobReader) Close() error {
	b.closed = true
	b.cur = nil
	return nil
}

// DeleteBlob implements store.Store. The header goes first, so readers
// stop finding the blob before its chunks disappear.
func (s *Store) DeleteBlob(ctx context.Context, key string) error {
	c := s.db.Collection(blobsName)
	var hd blobHeader
	err := c.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&hd)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return store.E("delete blob", store.ErrUnavailable, err)
	}
	if err == nil {
		if _, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}}); err != nil {
			return store.E("delete blob", store.ErrUnavailable, err)
		}
	}
	if err := s.deleteChunks(ctx, c, key, hd.Chunks); err != nil {
		return store.E("delete blob", store.ErrUnavailable, err)
	}
	return nil
}

// deleteChunks deletes the chunks of key one by one by _id: all of the
// first n, then on until one is missing (an incomplete upload has no
// header saying how many there are).
func (s *Store) deleteChunks(ctx context.Context, c *mongo.Collection, key string, n int64) error {
	for i := int64(0); ; i++ {
		res, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: chunkID(key, i)}})
		if err != nil {
			return err
		}
		if res.DeletedCount == 0 && i >= n {
			return nil
		}
	}
}
