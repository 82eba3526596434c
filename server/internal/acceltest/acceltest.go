// Package acceltest gives the server's tests the real accelerator
// service: the millrace-accel binary, built once per test process from
// accel/ (a cgo module of its own), and the ONNX Runtime library that
// `make accel-deps` fetches. Tests that need them fail, rather than
// skip, when the library is missing: the real runtime is the point.
package acceltest

import (
	"path/filepath"
	"runtime"
	"testing"

	"github.com/millrace/millrace/accel/acceltest"
)

// RepoRoot is the repository's root.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Library is the ONNX Runtime library: MILLRACE_ORT_LIB, else the one
// `make accel-deps` fetched (accel/acceltest finds both).
func Library(tb testing.TB) string { tb.Helper(); return acceltest.LibraryPath(tb) }

// Binary returns the path of millrace-accel: MILLRACE_ACCEL_BIN, else a
// build of accel/cmd/millrace-accel made on first use.
func Binary(tb testing.TB) string { tb.Helper(); return acceltest.Binary(tb) }

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() { acceltest.Cleanup() }
