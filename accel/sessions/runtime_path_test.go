package sessions_test

import (
	"testing"

	"github.com/millrace/millrace/accel/acceltest"
	"github.com/millrace/millrace/accel/sessions"
)

// The test helpers of every module find the library where the service
// looks for it by default.
func TestLibraryPathsAgree(t *testing.T) {
	if acceltest.LibraryRelPath != sessions.DefaultLibraryPath {
		t.Fatalf("acceltest.LibraryRelPath is %q, sessions.DefaultLibraryPath %q: change both together", acceltest.LibraryRelPath, sessions.DefaultLibraryPath)
	}
}
