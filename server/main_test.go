package server_test

import (
	"os"
	"testing"

	"github.com/millrace/millrace/server/internal/pgtest"
	"github.com/millrace/millrace/server/internal/testguests"
)

// TestMain stops the throwaway PostgreSQL cluster the durability tests
// start, if they started one, and removes the built test guests.
func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	testguests.Cleanup()
	os.Exit(code)
}
