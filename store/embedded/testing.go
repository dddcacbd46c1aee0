package embedded

import (
	"context"
	"testing"

	smongo "github.com/dossier-fhir/dossier/store/mongo"
)

// TestStore starts an engine in a temporary folder of tb (SQLite
// synchronous=normal: safe against a process crash, fast) and returns a
// store on database db; both are closed when tb ends. For tests of the
// layers above the store that need a real engine.
func TestStore(tb testing.TB, db string) *smongo.Store {
	tb.Helper()
	ctx := context.Background()
	eng, err := StartWith(ctx, Config{Dir: tb.TempDir(), Synchronous: "normal"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = eng.Close() })
	st, err := smongo.Open(ctx, eng.URI(), db, eng.Options(db))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}
