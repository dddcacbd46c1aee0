package embedded_test

import (
	"runtime"
	"testing"

	"github.com/dossier-fhir/dossier/store/embedded"
)

// TestSpareProc: one P more than before, set back by restore; nothing
// when the operator set GOMAXPROCS.
func TestSpareProc(t *testing.T) {
	t.Setenv("GOMAXPROCS", "") // Setenv restores the variable after the test
	before := runtime.GOMAXPROCS(0)
	restore := embedded.SpareProc()
	if got := runtime.GOMAXPROCS(0); got != before+1 {
		t.Errorf("GOMAXPROCS %d after SpareProc, want %d", got, before+1)
	}
	restore()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("GOMAXPROCS %d after restore, want %d", got, before)
	}

	t.Setenv("GOMAXPROCS", "7")
	restore = embedded.SpareProc()
	if got := runtime.GOMAXPROCS(0); got != before {
		t.Errorf("GOMAXPROCS %d with the variable set, want it unchanged (%d)", got, before)
	}
	restore()
}
