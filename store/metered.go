package store

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metered wraps a Store and records each operation's duration and
// errors (by operation and kind) in Prometheus metrics.
type Metered struct {
	Store
	dur  *prometheus.HistogramVec
	errs *prometheus.CounterVec
}

// NewMetered registers the store metrics on reg.
func NewMetered(s Store, reg prometheus.Registerer) *Metered {
	m := &Metered{
		Store: s,
		dur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "dossier_store_operation_duration_seconds",
			Help:    "Duration of store operations.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dossier_store_errors_total",
			Help: "Store operations that failed, by operation and kind (not_found and gone are not counted).",
		}, []string{"op", "kind"}),
	}
	reg.MustRegister(m.dur, m.errs)
	return m
}

func (m *Metered) done(op string, start time.Time, err error) {
	m.dur.WithLabelValues(op).Observe(time.Since(start).Seconds())
	switch {
	case err == nil, errors.Is(err, ErrNotFound), errors.Is(err, ErrGone):
	case errors.Is(err, ErrConflict):
		m.errs.WithLabelValues(op, "conflict").Inc()
	case errors.Is(err, ErrInvalid):
		m.errs.WithLabelValues(op, "invalid").Inc()
	default:
		m.errs.WithLabelValues(op, "unavailable").Inc()
	}
}

// Read implements Store.
func (m *Metered) Read(ctx context.Context, typ, id string) (*Version, error) {
	t := time.Now()
	v, err := m.Store.Read(ctx, typ, id)
	m.done("read", t, err)
	return v, err
}

// VRead implements Store.
func (m *Metered) VRead(ctx context.Context, typ, id string, vid int64) (*Version, error) {
	t := time.Now()
	v, err := m.Store.VRead(ctx, typ, id, vid)
	m.done("vread", t, err)
	return v, err
}

// Put implements Store.
func (m *Metered) Put(ctx context.Context, v *Version) error {
	t := time.Now()
	err := m.Store.Put(ctx, v)
	m.done("put", t, err)
	return err
}

// History implements Store.
func (m *Metered) History(ctx context.Context, q HistoryQuery) ([]*Version, error) {
	t := time.Now()
	vs, err := m.Store.History(ctx, q)
	m.done("history", t, err)
	return vs, err
}

// CountHistory implements Store.
func (m *Metered) CountHistory(ctx context.Context, q HistoryQuery) (int64, error) {
	t := time.Now()
	n, err := m.Store.CountHistory(ctx, q)
	m.done("count_history", t, err)
	return n, err
}

// Find implements Store.
func (m *Metered) Find(ctx context.Context, q Query) ([]*Version, error) {
	t := time.Now()
	vs, err := m.Store.Find(ctx, q)
	m.done("find", t, err)
	return vs, err
}

// Claim implements Store.
func (m *Metered) Claim(ctx context.Context, key, value string) (string, error) {
	t := time.Now()
	h, err := m.Store.Claim(ctx, key, value)
	m.done("claim", t, err)
	return h, err
}

// Ping implements Store.
func (m *Metered) Ping(ctx context.Context) error {
	t := time.Now()
	err := m.Store.Ping(ctx)
	m.done("ping", t, err)
	return err
}

// Commit implements Store.
func (m *Metered) Append(ctx context.Context, vs []*Version) error {
	t := time.Now()
	err := m.Store.Append(ctx, vs)
	m.done("append", t, err)
	return err
}

// Commit implements Store.
func (m *Metered) Commit(ctx context.Context, vs []*Version) error {
	t := time.Now()
	err := m.Store.Commit(ctx, vs)
	m.done("commit", t, err)
	return err
}

// Count implements Store.
func (m *Metered) Count(ctx context.Context, q Query) (int64, error) {
	t := time.Now()
	n, err := m.Store.Count(ctx, q)
	m.done("count", t, err)
	return n, err
}

// Search implements Store.
func (m *Metered) Search(ctx context.Context, q Query) ([]*Version, int64, error) {
	t := time.Now()
	vs, n, err := m.Store.Search(ctx, q)
	m.done("search", t, err)
	return vs, n, err
}

// Reindex implements Store.
func (m *Metered) Reindex(ctx context.Context, v *Version) error {
	t := time.Now()
	err := m.Store.Reindex(ctx, v)
	m.done("reindex", t, err)
	return err
}

// PutBlob implements Store (the duration covers the whole upload).
func (m *Metered) PutBlob(ctx context.Context, key string, r io.Reader, max int64) (BlobInfo, error) {
	t := time.Now()
	info, err := m.Store.PutBlob(ctx, key, r, max)
	if errors.Is(err, ErrTooLarge) {
		m.dur.WithLabelValues("put_blob").Observe(time.Since(t).Seconds())
		return info, err // the client's doing, not the store's
	}
	m.done("put_blob", t, err)
	return info, err
}

// OpenBlob implements Store (the duration covers opening, not streaming).
func (m *Metered) OpenBlob(ctx context.Context, key string) (io.ReadCloser, BlobInfo, error) {
	t := time.Now()
	rc, info, err := m.Store.OpenBlob(ctx, key)
	m.done("open_blob", t, err)
	return rc, info, err
}

// DeleteBlob implements Store.
func (m *Metered) DeleteBlob(ctx context.Context, key string) error {
	t := time.Now()
	err := m.Store.DeleteBlob(ctx, key)
	m.done("delete_blob", t, err)
	return err
}
