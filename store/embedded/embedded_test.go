package embedded_test

import (
	"context"
	"fmt"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/dossier-fhir/dossier/store/embedded"
)

func start(tb testing.TB) (*embedded.Engine, *mongo.Client) {
	tb.Helper()
	ctx := context.Background()
	e, err := embedded.Start(ctx, tb.TempDir(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e, connect(tb, e.URI())
}

func fill(tb testing.TB, c *mongo.Collection, n int) {
	ctx := context.Background()
	docs := make([]any, 0, 500)
	for i := 0; i < n; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("id-%06d", i)}, {Key: "j", Value: `{"resourceType":"Patient"}`}})
		if len(docs) == cap(docs) || i == n-1 {
			if _, err := c.InsertMany(ctx, docs); err != nil {
				tb.Fatal(err)
			}
			docs = docs[:0]
		}
	}
}

// TestIndexCollection checks the _id index is created, idempotent, and
// that lookups still find the right document.
func TestIndexCollection(t *testing.T) {
	e, cl := start(t)
	ctx := context.Background()
	c := cl.Database("d").Collection("c")
	fill(t, c, 50)
	for range 2 {
		if err := e.IndexCollection(ctx, "d", "c"); err != nil {
			t.Fatal(err)
		}
	}
	var got bson.M
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: "id-000042"}}).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["_id"] != "id-000042" {
		t.Fatalf("got %v", got["_id"])
	}
	if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: "nope"}}).Err(); err != mongo.ErrNoDocuments {
		t.Fatalf("missing id: %v", err)
	}
	if err := e.IndexCollection(ctx, "d", "absent"); err == nil {
		t.Fatal("index on a missing collection: want error")
	}
}

// BenchmarkFindOneByID compares a read by _id without and with the index
// IndexCollection adds, at two collection sizes: without it the cost grows
// with the collection (a table scan), with it it stays flat.
func BenchmarkFindOneByID(b *testing.B) {
	for _, docs := range []int{1000, 10000} {
		for _, indexed := range []bool{false, true} {
			b.Run(fmt.Sprintf("docs=%d/indexed=%v", docs, indexed), func(b *testing.B) {
				e, cl := start(b)
				ctx := context.Background()
				c := cl.Database("d").Collection("c")
				fill(b, c, docs)
				if indexed {
					if err := e.IndexCollection(ctx, "d", "c"); err != nil {
						b.Fatal(err)
					}
				}
				i := 0
				for b.Loop() {
					i++
					if err := c.FindOne(ctx, bson.D{{Key: "_id", Value: fmt.Sprintf("id-%06d", (i*7919)%docs)}}).Err(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
