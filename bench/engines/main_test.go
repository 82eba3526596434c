package engines_test

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/millrace/millrace/bench/engines"
)

var (
	guests    *engines.Guests
	guestsErr error
	guestsTmp string
)

// TestMain builds the guests once for the whole test binary: into a
// temporary folder, or not at all when ENGINES_GUESTS_DIR names a folder
// that `go run ./cmd/guests` filled (what `make bench` does).
func TestMain(m *testing.M) {
	if dir := os.Getenv("ENGINES_GUESTS_DIR"); dir != "" {
		guests, guestsErr = engines.LoadGuests(dir)
	} else if guestsTmp, guestsErr = os.MkdirTemp("", "engines-guests-"); guestsErr == nil {
		guests, guestsErr = engines.BuildGuests(context.Background(), guestsTmp)
	}
	code := m.Run()
	if guestsTmp != "" {
		os.RemoveAll(guestsTmp)
	}
	os.Exit(code)
}

func loadGuests(tb testing.TB) *engines.Guests {
	tb.Helper()
	if guestsErr != nil {
		tb.Fatal(guestsErr)
	}
	return guests
}

func newRunner(tb testing.TB, rt engines.Runtime, w engines.Workload) engines.Runner {
	tb.Helper()
	r, err := rt.New(context.Background(), loadGuests(tb), w)
	if err != nil {
		tb.Fatalf("%s/%s: %v", rt.Name, w, err)
	}
	tb.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func name(w engines.Workload, rt engines.Runtime) string {
	return fmt.Sprintf("workload=%s/runtime=%s", w, rt.Name)
}
