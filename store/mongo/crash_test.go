package mongo_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/dossier-fhir/dossier/store"
	"github.com/dossier-fhir/dossier/store/embedded"
	smongo "github.com/dossier-fhir/dossier/store/mongo"
)

// openEmbedded opens a store on an embedded engine in dir.
func openEmbedded(t *testing.T, dir string) (*embedded.Engine, *smongo.Store) {
	t.Helper()
	ctx := context.Background()
	e, err := embedded.Start(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := smongo.Open(ctx, e.URI(), "crash", e.Options("crash"))
	if err != nil {
		_ = e.Close()
		t.Fatal(err)
	}
	return e, s
}

const crashItems = 10

func crashCommit(ts time.Time) []*store.Version {
	vs := []*store.Version{{Type: "Patient", ID: "x", VersionID: 2, LastUpdated: ts, Method: "PUT", JSON: []byte(`{"x":2}`)}}
	for i := 1; i < crashItems; i++ {
		vs = append(vs, &store.Version{Type: "Observation", ID: fmt.Sprintf("o%d", i), VersionID: 1, LastUpdated: ts, Method: "POST",
			JSON: []byte(fmt.Sprintf(`{"o":%d}`, i))})
	}
	return vs
}

// TestCrashChild is the child process of TestCrashRecovery: it commits
// and kills itself with SIGKILL at the step named by DOSSIER_CRASH_STEP.
func TestCrashChild(t *testing.T) {
	dir, step := os.Getenv("DOSSIER_CRASH_DIR"), os.Getenv("DOSSIER_CRASH_STEP")
	if dir == "" {
		t.Skip("child of TestCrashRecovery")
	}
	var idx int
	var name string
	fmt.Sscanf(step, "%s %d", &name, &idx)
	_, s := openEmbedded(t, dir)
	ctx := context.Background()
	ts := time.Now().Truncate(time.Microsecond)
	if err := s.Put(ctx, &store.Version{Type: "Patient", ID: "x", VersionID: 1, LastUpdated: ts, Method: "PUT", JSON: []byte(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	smongo.Hook = func(st string, i int) {
		if st == name && i == idx {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
		}
	}
	_ = s.Commit(ctx, crashCommit(ts.Add(time.Second)))
	t.Fatal("not killed")
}

// TestCrashRecovery kills a process mid-commit on the embedded engine at
// each step of the journal (hooks fire after each type's group of
// versions: here a group of 1 Patient, then one of 9 Observations), restarts on the same files, and checks that
// the commit is entirely there or entirely absent.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv("DOSSIER_CRASH_DIR") != "" {
		t.Skip()
	}
	cases := []struct {
		step    string
		visible bool
	}{
		{"txlog -1", false},
		{"history 0", false},                             // after the Patient group
		{fmt.Sprintf("history %d", crashItems-2), false}, // after the Observation group
		{"committed -1", true},
		{"applied 0", true}, // Patient applied, Observations not
		{fmt.Sprintf("applied %d", crashItems-2), true},
	}
	for _, c := range cases {
		t.Run(c.step, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), "DOSSIER_CRASH_DIR="+dir, "DOSSIER_CRASH_STEP="+c.step)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed: %v\n%s", err, out)
			}
			e, s := openEmbedded(t, dir)
			defer func() { _ = s.Close(context.Background()); _ = e.Close() }()
			ctx := context.Background()
			x, err := s.Read(ctx, "Patient", "x")
			if err != nil {
				t.Fatal(err)
			}
			wantX := int64(1)
			if c.visible {
				wantX = 2
			}
			if x.VersionID != wantX {
				t.Errorf("Patient/x at version %d, want %d", x.VersionID, wantX)
			}
			_, verr := s.VRead(ctx, "Patient", "x", 2)
			if c.visible != (verr == nil) {
				t.Errorf("vread x/2: %v, visible=%v", verr, c.visible)
			}
			for i := 1; i < crashItems; i++ {
				_, err := s.Read(ctx, "Observation", fmt.Sprintf("o%d", i))
				if c.visible && err != nil {
					t.Errorf("o%d missing after recovery: %v", i, err)
				}
				if !c.visible && !errors.Is(err, store.ErrNotFound) {
					t.Errorf("o%d present after a rolled-back commit: %v", i, err)
				}
			}
			h, err := s.History(ctx, store.HistoryQuery{})
			if err != nil {
				t.Fatal(err)
			}
			want := 1
			if c.visible {
				want = 1 + crashItems
			}
			if len(h) != want {
				t.Errorf("history has %d versions, want %d", len(h), want)
			}
			// The store is usable: the same commit can be redone or continued.
			if !c.visible {
				if err := s.Commit(ctx, crashCommit(time.Now())); err != nil {
					t.Errorf("commit after recovery: %v", err)
				}
			}
		})
	}
}
