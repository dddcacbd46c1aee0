package mongo_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/dossier-fhir/dossier/store"
	"github.com/dossier-fhir/dossier/store/embedded"
	smongo "github.com/dossier-fhir/dossier/store/mongo"
	"github.com/dossier-fhir/dossier/store/storetest"
)

var dbSeq atomic.Int64

func TestConformanceEmbedded(t *testing.T) {
	ctx := context.Background()
	e, err := embedded.Start(ctx, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	storetest.Run(t, func(t *testing.T) store.Store {
		db := fmt.Sprintf("conf%d", dbSeq.Add(1))
		s, err := smongo.Open(ctx, e.URI(), db, e.Options(db))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(context.Background()) })
		return s
	})
}

// TestConformanceMongoDB runs the suite against a real MongoDB when
// DOSSIER_TEST_MONGO_URI is set.
func TestConformanceMongoDB(t *testing.T) {
	uri := os.Getenv("DOSSIER_TEST_MONGO_URI")
	if uri == "" {
		t.Skip("DOSSIER_TEST_MONGO_URI not set")
	}
	ctx := context.Background()
	storetest.Run(t, func(t *testing.T) store.Store {
		db := fmt.Sprintf("dossier_conf_%d_%d", os.Getpid(), dbSeq.Add(1))
		s, err := smongo.Open(ctx, uri, db, smongo.Options{Indexes: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = s.Database().Drop(context.Background())
			_ = s.Close(context.Background())
		})
		return s
	})
}
