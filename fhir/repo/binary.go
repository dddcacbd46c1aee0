package repo

// Binary resources whose content is uploaded raw (POST/PUT with the
// document's own Content-Type): the bytes are streamed into a store blob
// (store.Blobs) and the version's JSON is the Binary without its data
// element; Version.Blob names the blob. Each version has its own blob, so
// a vread of an old version streams the old bytes. A Binary written as
// FHIR JSON keeps its data inline, as any resource; the functions below
// serve both kinds.

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"strings"

	"github.com/dossier-fhir/dossier/fhir/access"
	"github.com/dossier-fhir/dossier/fhir/outcome"
	"github.com/dossier-fhir/dossier/fhir/resource"
	"github.com/dossier-fhir/dossier/store"
)

// BinaryInput is a Binary's content sent raw.
type BinaryInput struct {
	// ContentType is the request's Content-Type (Binary.contentType).
	ContentType string
	// SecurityContext is the X-Security-Context header: a reference such
	// as "DocumentReference/123" ("" when absent).
	SecurityContext string
	// Body is the content; at most Max bytes are accepted (413 above).
	Body io.Reader
	Max  int64
}

// binaryParsed builds and validates the Binary JSON of a raw upload.
func (r *Repo) binaryParsed(id string, in BinaryInput) (*resource.Parsed, error) {
	ct, err := normalizeContentType(in.ContentType)
	if err != nil {
		return nil, err
	}
	m := map[string]any{"resourceType": "Binary", "contentType": ct}
	if id != "" {
		m["id"] = id
	}
	if sc := strings.TrimSpace(in.SecurityContext); sc != "" {
		m["securityContext"] = map[string]string{"reference": sc}
	}
	body, _ := json.Marshal(m)
	p, err := r.parser.Parse(body)
	if err != nil {
		return nil, err
	}
	// Members in the conventional order (json.Marshal sorts map keys):
	// resourceType, id, meta (set by build), contentType, securityContext.
	var obj resource.Object
	for _, k := range []string{"resourceType", "id", "contentType", "securityContext"} {
		if raw, ok := p.Object.Get(k); ok {
			obj = append(obj, resource.Field{Key: k, Value: raw})
		}
	}
	p.Object = obj
	return p, nil
}

// normalizeContentType checks a Content-Type and writes it canonically
// ("text/xml; charset=utf-8").
func normalizeContentType(ct string) (string, error) {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || !strings.Contains(mt, "/") {
		return "", outcome.New(outcome.UnsupportedMediaType, "not-supported", "the Content-Type header is malformed")
	}
	return mime.FormatMediaType(mt, params), nil
}

// blobKey names the blob of a version: unique per upload, so a version
// never shares its blob with another.
func blobKey(id string) string {
	return "Binary/" + id + "/" + NewID()
}

// binaryHash is the content hash of a blob-backed Binary version: its
// JSON without server meta, and its bytes.
func binaryHash(v *store.Version) (string, error) {
	h, err := resource.ContentHash(v.JSON)
	if err != nil {
		return "", outcome.Wrap(err, outcome.Internal, "exception", "hashing failed")
	}
	return h + "+sha1:" + hex.EncodeToString(v.Blob.SHA1), nil
}

// putBlob streams the content into a new blob.
func (r *Repo) putBlob(ctx context.Context, key string, in BinaryInput) (*store.BlobRef, error) {
	info, err := r.st.PutBlob(ctx, key, in.Body, in.Max)
	switch {
	case errors.Is(err, store.ErrTooLarge):
		return nil, outcome.Wrap(err, outcome.TooLarge, "too-costly", "the Binary content exceeds %d bytes", in.Max)
	case errors.As(err, new(bodyError)):
		// The request body failed (client went away): not the store's fault.
		return nil, outcome.Wrap(err, outcome.Invalid, "structure", "the request body could not be read")
	case err != nil:
		return nil, storeErr(err, "Binary", "")
	}
	return &store.BlobRef{Key: key, Size: info.Size, SHA1: info.SHA1}, nil
}

// bodyError marks a failure to read the request body.
type bodyError struct{ err error }

func (e bodyError) Error() string { return "reading the body: " + e.err.Error() }
func (e bodyError) Unwrap() error { return e.err }

// bodyReader tags read errors of the request body.
type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = bodyError{err}
	}
	return n, err
}

// CreateBinary stores a Binary whose content is sent raw, with a
// server-assigned id: the content is streamed into a blob first, then
// version 1 is stored through the normal write path (meta, versioning,
// policy). When the version cannot be stored the blob is deleted.
func (r *Repo) CreateBinary(ctx context.Context, req *access.Requester, in BinaryInput) (Result, error) {
	if err := r.policy.Allow(req, access.Create, "Binary"); err != nil {
		return Result{}, err
	}
	id := NewID()
	p, err := r.binaryParsed("", in)
	if err != nil {
		return Result{}, err
	}
	blob, err := r.putBlob(ctx, blobKey(id), BinaryInput{Body: bodyReader{in.Body}, Max: in.Max})
	if err != nil {
		return Result{}, err
	}
	ctx, pend := WithPending(ctx)
	res, err := r.PlanCreate(ctx, req, p, id)
	if err == nil {
		res.Version.Blob = blob
		if res.Version.Hash, err = binaryHash(res.Version); err == nil {
			if err = r.store(ctx, res); err != nil {
				err = storeErr(err, "Binary", id)
			}
		}
	}
	if err != nil {
		pend.Undo()
		_ = r.st.DeleteBlob(context.WithoutCancel(ctx), blob.Key)
		return Result{}, err
	}
	return res, nil
}

// UpdateBinary replaces (or creates, with a client id) Binary/id with
// content sent raw. ifMatch, when not nil, is the version the client
// expects to replace.
func (r *Repo) UpdateBinary(ctx context.Context, req *access.Requester, id string, in BinaryInput, ifMatch *int64) (Result, error) {
	if !resource.ValidID(id) {
		return Result{}, outcome.New(outcome.Invalid, "value", "the id in the URL is not a valid FHIR id")
	}
	if err := r.policy.Allow(req, access.Update, "Binary"); err != nil {
		return Result{}, err
	}
	p, err := r.binaryParsed(id, in)
	if err != nil {
		return Result{}, err
	}
	// The access and If-Match checks are the write loop's, after the
	// upload (the blob is deleted when the write is refused).
	blob, err := r.putBlob(ctx, blobKey(id), BinaryInput{Body: bodyReader{in.Body}, Max: in.Max})
	if err != nil {
		return Result{}, err
	}
	res, err := r.writeBinary(ctx, req, id, p, blob, ifMatch)
	if err != nil || res.NoOp {
		_ = r.st.DeleteBlob(context.WithoutCancel(ctx), blob.Key)
	}
	return res, err
}

// writeBinary stores the next version of Binary/id with blob as its
// content (the write loop of UpdateBinary).
func (r *Repo) writeBinary(ctx context.Context, req *access.Requester, id string, p *resource.Parsed, blob *store.BlobRef, ifMatch *int64) (Result, error) {
	return r.retry(ctx, "Binary", id, ifMatch, func(ctx context.Context) (Result, error) {
		var cur *store.Version
		res, err := r.PlanWrite(ctx, req, "Binary", id, ifMatch, "PUT", func(c *store.Version) (*resource.Parsed, error) {
			cur = c
			cp := *p
			return &cp, nil
		})
		if err == nil && res.NoOp {
			// PlanWrite compared JSON only: cur is a Binary without data
			// and with the same JSON, but the content is new.
			res, err = r.rebuild(ctx, req, id, p, res.Version)
		}
		if err != nil {
			return Result{}, err
		}
		v := res.Version
		v.Blob = blob
		if v.Hash, err = binaryHash(v); err != nil {
			return Result{}, err
		}
		if cur != nil && !cur.Deleted && cur.Blob != nil && cur.Hash == v.Hash {
			return Result{Version: cur, NoOp: true}, nil
		}
		return res, nil
	})
}

// rebuild makes the next version of cur from p without the no-op check
// (cur's JSON equals p's but its content is not the new blob).
func (r *Repo) rebuild(ctx context.Context, req *access.Requester, id string, p *resource.Parsed, cur *store.Version) (Result, error) {
	cp := *p
	if err := r.prepare(ctx, req, &cp); err != nil {
		return Result{}, err
	}
	v, err := r.build(req, &cp, id, cur.VersionID+1, "PUT", cur)
	if err != nil {
		return Result{}, err
	}
	sc, err := r.scope(ctx, req)
	if err != nil {
		return Result{}, err
	}
	if err := r.canWrite(ctx, sc, access.Update, v, cur); err != nil {
		return Result{}, err
	}
	also, err := r.afterBuild(ctx, req, v, cur)
	if err != nil {
		return Result{}, err
	}
	res := Result{Version: v, Also: also}
	pendingOf(ctx).add(res.Versions()...)
	return res, nil
}

// BinaryInfo is what a Binary version says about its content.
type BinaryInfo struct {
	ContentType     string
	SecurityContext string // the reference, "" when none
}

// binaryJSON is the part of a Binary's JSON read here.
type binaryJSON struct {
	ResourceType    string `json:"resourceType"`
	ContentType     string `json:"contentType"`
	SecurityContext *struct {
		Reference string `json:"reference"`
	} `json:"securityContext"`
	Data *string `json:"data"`
}

func decodeBinary(v *store.Version) (*binaryJSON, error) {
	if v == nil || v.Type != "Binary" || v.Deleted {
		return nil, outcome.New(outcome.Internal, "exception", "not a Binary version")
	}
	var b binaryJSON
	if err := json.Unmarshal(v.JSON, &b); err != nil {
		return nil, outcome.Wrap(err, outcome.Internal, "exception", "a stored Binary is not valid JSON")
	}
	return &b, nil
}

// Binary returns the content type and security context of a Binary
// version.
func (r *Repo) Binary(v *store.Version) (BinaryInfo, error) {
	b, err := decodeBinary(v)
	if err != nil {
		return BinaryInfo{}, err
	}
	info := BinaryInfo{ContentType: b.ContentType}
	if b.SecurityContext != nil {
		info.SecurityContext = b.SecurityContext.Reference
	}
	return info, nil
}

// OpenBinary streams the content of a Binary version: its blob, or its
// inline data decoded (empty when it has none). size is the content's
// length in bytes.
func (r *Repo) OpenBinary(ctx context.Context, v *store.Version) (rc io.ReadCloser, size int64, err error) {
	if v != nil && v.Blob != nil {
		rc, info, err := r.st.OpenBlob(ctx, v.Blob.Key)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				// The version names a blob that is not there: a bug or a
				// damaged database, not the client's doing.
				return nil, 0, outcome.Wrap(err, outcome.Internal, "exception", "the content of Binary/%s is missing", v.ID)
			}
			return nil, 0, storeErr(err, "Binary", v.ID)
		}
		return rc, info.Size, nil
	}
	b, err := decodeBinary(v)
	if err != nil {
		return nil, 0, err
	}
	if b.Data == nil {
		return io.NopCloser(strings.NewReader("")), 0, nil
	}
	data := *b.Data
	n, err := decodedLen(data)
	if err != nil {
		return nil, 0, err
	}
	return io.NopCloser(base64.NewDecoder(base64.StdEncoding, strings.NewReader(data))), n, nil
}

// decodedLen is the length of standard base64 data once decoded.
func decodedLen(data string) (int64, error) {
	if len(data)%4 != 0 {
		return 0, outcome.New(outcome.Internal, "exception", "a stored Binary's data is not base64")
	}
	n := int64(len(data)) / 4 * 3
	n -= int64(len(data) - len(strings.TrimRight(data, "=")))
	return n, nil
}

// BinaryDigest returns the size and SHA-1 of a Binary version's content,
// whether it is held in a blob (raw upload) or inline as data.
func (r *Repo) BinaryDigest(ctx context.Context, v *store.Version) (size int64, sum []byte, err error) {
	if v != nil && v.Blob != nil && len(v.Blob.SHA1) == sha1.Size {
		return v.Blob.Size, v.Blob.SHA1, nil
	}
	rc, _, err := r.OpenBinary(ctx, v)
	if err != nil {
		return 0, nil, err
	}
	defer rc.Close()
	h := sha1.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return 0, nil, outcome.Wrap(err, outcome.Invalid, "value", "the data of Binary/%s is not valid base64", v.ID)
		}
		return 0, nil, storeErr(err, "Binary", v.ID)
	}
	return n, h.Sum(nil), nil
}
