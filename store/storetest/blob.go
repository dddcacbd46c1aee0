package storetest

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
	"time"

	"github.com/dossier-fhir/dossier/store"
)

// BlobChunkSize is the chunk size the blob tests probe around (the
// sizes 0, 1, chunk-1, chunk, chunk+1 and several chunks). A factory that
// configures another chunk size sets it.
var BlobChunkSize = 256 << 10

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func testBlobRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := BlobChunkSize
	for _, n := range []int{0, 1, c - 1, c, c + 1, 3*c + 17} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			want := randomBytes(n, uint64(n))
			key := fmt.Sprintf("Binary/b%d/1/x", n)
			// A reader that yields one byte at a time at first and then
			// short reads: chunks must not depend on the reader's pace.
			src := iotest.HalfReader(bytes.NewReader(want))
			info, err := s.PutBlob(ctx, key, src, int64(n))
			if err != nil {
				t.Fatal(err)
			}
			sum := sha1.Sum(want)
			if info.Size != int64(n) || !bytes.Equal(info.SHA1, sum[:]) {
				t.Fatalf("put: size %d sha1 %x, want %d %x", info.Size, info.SHA1, n, sum)
			}
			rc, got, err := s.OpenBlob(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if got.Size != int64(n) || !bytes.Equal(got.SHA1, sum[:]) {
				t.Fatalf("open: size %d sha1 %x, want %d %x", got.Size, got.SHA1, n, sum)
			}
			// Read with an odd buffer size.
			var out bytes.Buffer
			buf := make([]byte, 1000)
			for {
				k, err := rc.Read(buf)
				out.Write(buf[:k])
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("read back %d bytes, not byte-exact with the %d written", out.Len(), n)
			}
			if _, err := s.PutBlob(ctx, key, bytes.NewReader(want), int64(n)); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("second put under the same key: %v, want ErrConflict", err)
			}
		})
	}
}

func testBlobTooLarge(t *testing.T, s store.Store) {
	ctx := context.Background()
	c := BlobChunkSize
	for _, n := range []int{1, c, 2*c + 5} {
		data := randomBytes(n+1, 3)
		key := fmt.Sprintf("Binary/big%d/1/x", n)
		_, err := s.PutBlob(ctx, key, bytes.NewReader(data), int64(n))
		if !errors.Is(err, store.ErrTooLarge) {
			t.Fatalf("%d+1 bytes with max %d: %v, want ErrTooLarge", n, n, err)
		}
		if _, _, err := s.OpenBlob(ctx, key); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a refused blob is visible: %v", err)
		}
		// Nothing left behind: the key can be used again.
		if _, err := s.PutBlob(ctx, key, bytes.NewReader(data[:n]), int64(n)); err != nil {
			t.Fatalf("put after a refused put: %v", err)
		}
	}
}

// failingReader fails after n bytes (a client that goes away).
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	k, err := f.r.Read(p)
	f.n -= k
	return k, err
}

func testBlobDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, _, err := s.OpenBlob(ctx, "Binary/none/1/x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("open missing: %v, want ErrNotFound", err)
	}
	if err := s.DeleteBlob(ctx, "Binary/none/1/x"); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
	data := randomBytes(2*BlobChunkSize+1, 5)
	if _, err := s.PutBlob(ctx, "Binary/d/1/x", bytes.NewReader(data), 1<<40); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBlob(ctx, "Binary/d/1/x"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.OpenBlob(ctx, "Binary/d/1/x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("open deleted: %v, want ErrNotFound", err)
	}
	// An upload whose body fails half-way leaves nothing visible.
	_, err := s.PutBlob(ctx, "Binary/f/1/x", &failingReader{r: bytes.NewReader(data), n: BlobChunkSize + 3}, 1<<40)
	if err == nil {
		t.Fatal("put from a failing reader succeeded")
	}
	if _, _, err := s.OpenBlob(ctx, "Binary/f/1/x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a failed upload is visible: %v", err)
	}
	if _, err := s.PutBlob(ctx, "Binary/f/1/x", bytes.NewReader(data), 1<<40); err != nil {
		t.Fatalf("put after a failed put: %v", err)
	}
}

func testVersionBlob(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now()
	sum := sha1.Sum([]byte("x"))
	v1 := ver("Binary", "vb", 1, now, `{"resourceType":"Binary","id":"vb","contentType":"application/pdf"}`)
	v1.Blob = &store.BlobRef{Key: "Binary/vb/1/k", Size: 1, SHA1: sum[:]}
	if err := s.Put(ctx, v1); err != nil {
		t.Fatal(err)
	}
	v2 := ver("Binary", "vb", 2, now.Add(time.Millisecond), `{"resourceType":"Binary","id":"vb","contentType":"text/plain"}`)
	if err := s.Put(ctx, v2); err != nil {
		t.Fatal(err)
	}
	got, err := s.VRead(ctx, "Binary", "vb", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Blob == nil || got.Blob.Key != "Binary/vb/1/k" || got.Blob.Size != 1 || !bytes.Equal(got.Blob.SHA1, sum[:]) {
		t.Fatalf("vread 1 blob: %+v", got.Blob)
	}
	cur, err := s.Read(ctx, "Binary", "vb")
	if err != nil || cur.Blob != nil {
		t.Fatalf("current (no blob): %v %+v", err, cur)
	}
	v3 := ver("Binary", "vb", 3, now.Add(2*time.Millisecond), `{"resourceType":"Binary","id":"vb","contentType":"text/plain"}`)
	v3.Blob = &store.BlobRef{Key: "Binary/vb/3/k", Size: 1, SHA1: sum[:]}
	if err := s.Commit(ctx, []*store.Version{v3}); err != nil {
		t.Fatal(err)
	}
	cur, err = s.Read(ctx, "Binary", "vb")
	if err != nil || cur.Blob == nil || cur.Blob.Key != "Binary/vb/3/k" {
		t.Fatalf("current after commit: %v %+v", err, cur)
	}
	hs, err := s.History(ctx, store.HistoryQuery{Type: "Binary", ID: "vb"})
	if err != nil || len(hs) != 3 || hs[0].Blob == nil || hs[1].Blob != nil || hs[2].Blob == nil {
		t.Fatalf("history blobs: %v %d", err, len(hs))
	}
}
