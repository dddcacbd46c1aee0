package store

import (
	"context"
	"errors"
	"io"
)

// ErrTooLarge is the kind of error PutBlob returns when more bytes arrive
// than the caller allowed; nothing is stored then.
var ErrTooLarge = errors.New("too large")

// BlobInfo describes a stored blob.
type BlobInfo struct {
	Size int64
	SHA1 []byte // the SHA-1 digest of the content (20 bytes)
}

// BlobRef is the blob holding the content of a version (a Binary whose
// bytes were uploaded raw): the version's JSON has no data element, the
// bytes are read with Store.OpenBlob(Key).
type BlobRef struct {
	Key  string
	Size int64
	SHA1 []byte
}

// Blobs store large contents (documents) in chunks, so that neither a
// write nor a read holds a whole content in memory. A blob is written
// once under a caller-chosen key and becomes visible only when complete.
type Blobs interface {
	// PutBlob stores everything r yields under key. When more than max
	// bytes arrive it stores nothing and returns an error of kind
	// ErrTooLarge; when key already holds a blob, ErrConflict.
	PutBlob(ctx context.Context, key string, r io.Reader, max int64) (BlobInfo, error)
	// OpenBlob streams the blob under key; ErrNotFound when there is
	// none (or its upload never completed). The reader holds about one
	// chunk in memory; its Read returns an error of kind ErrUnavailable
	// when the engine fails mid-stream.
	OpenBlob(ctx context.Context, key string) (io.ReadCloser, BlobInfo, error)
	// DeleteBlob removes the blob under key, and the chunks of an
	// incomplete upload under it; absent is not an error.
	DeleteBlob(ctx context.Context, key string) error
}
