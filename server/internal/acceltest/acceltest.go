// Package acceltest gives the server's tests the real accelerator
// service: the millrace-accel binary, built once per test process from
// accel/ (a cgo module of its own), and the ONNX Runtime library that
// `make accel-deps` fetches. Tests that need them fail, rather than
// skip, when the library is missing: the real runtime is the point.
package acceltest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// LibraryRelPath is where `make accel-deps` puts the ONNX Runtime library,
// relative to the repository root.
const LibraryRelPath = "build/cache/onnxruntime/1.24.1/libonnxruntime.so.1"

// RepoRoot is the repository's root.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Library is the ONNX Runtime library: MILLRACE_ORT_LIB, else the one
// `make accel-deps` fetched.
func Library(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("MILLRACE_ORT_LIB"); p != "" {
		return p
	}
	p := filepath.Join(RepoRoot(), LibraryRelPath)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("the ONNX Runtime library is missing (%v): run `make accel-deps` at the repository root, or set MILLRACE_ORT_LIB", err)
	}
	return p
}

var (
	once   sync.Once
	dir    string
	binary string
	bErr   error
)

// Binary returns the path of millrace-accel: MILLRACE_ACCEL_BIN, else a
// build of accel/cmd/millrace-accel made on first use (go's build cache
// makes it cheap after the first time).
func Binary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("MILLRACE_ACCEL_BIN"); p != "" {
		return p
	}
	once.Do(func() {
		if dir, bErr = os.MkdirTemp("", "millrace-accel-bin-"); bErr != nil {
			return
		}
		binary = filepath.Join(dir, "millrace-accel")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/millrace-accel")
		cmd.Dir = filepath.Join(RepoRoot(), "accel")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			bErr = fmt.Errorf("building millrace-accel (needs cgo and a C compiler): %v\n%s", err, out)
		}
	})
	if bErr != nil {
		tb.Fatal(bErr)
	}
	return binary
}

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if dir != "" && strings.Contains(dir, "millrace-accel-bin-") {
		os.RemoveAll(dir)
	}
}
