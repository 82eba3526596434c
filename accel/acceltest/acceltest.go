// Package acceltest starts the real millrace-accel service, with the real
// ONNX Runtime, for the tests of any module in this repository (the OCR
// and Stable Diffusion XL modules' tests among them). It needs only the
// standard library and the accel client, so importing it adds no cgo.
//
// A missing ONNX Runtime library fails the test with the command that
// fetches it: the real runtime is the point, so nothing skips.
package acceltest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/millrace/millrace/accel/client"
)

// LibraryRelPath is where `make accel-deps` puts the ONNX Runtime library,
// from the repository's root (sessions.DefaultLibraryPath; a test in
// accel/sessions keeps the two equal).
const LibraryRelPath = "build/cache/onnxruntime/1.24.1/libonnxruntime.so.1"

// RepoRoot is the repository's root: the nearest parent holding go.work.
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.work above the working directory: run the tests inside the repository")
		}
		dir = parent
	}
}

// LibraryPath is the ONNX Runtime library: MILLRACE_ORT_LIB, else the one
// `make accel-deps` fetched.
func LibraryPath(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("MILLRACE_ORT_LIB"); p != "" {
		return p
	}
	p := filepath.Join(RepoRoot(tb), LibraryRelPath)
	if _, err := os.Stat(p); err != nil {
		tb.Fatalf("the ONNX Runtime library is missing (%v): run `make accel-deps` at the repository root, or set MILLRACE_ORT_LIB", err)
	}
	return p
}

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// Main runs a test binary's tests (call it from TestMain) and then removes
// the millrace-accel it built, if any.
func Main(m *testing.M) int {
	code := m.Run()
	Cleanup()
	return code
}

// Cleanup removes the millrace-accel Binary built, if any; Main calls it.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Binary is MILLRACE_ACCEL_BIN, else millrace-accel built from accel/ into
// a temporary folder once per test binary (go's build cache makes that a
// link when nothing changed; Main removes it).
func Binary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("MILLRACE_ACCEL_BIN"); p != "" {
		return p
	}
	root := RepoRoot(tb)
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "millrace-accel-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir, buildBin = dir, filepath.Join(dir, "millrace-accel")
		cmd := exec.Command("go", "build", "-o", buildBin, "./cmd/millrace-accel")
		cmd.Dir = filepath.Join(root, "accel")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building millrace-accel (needs cgo and a C compiler): %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildBin
}

// Start starts millrace-accel serving the model directory models, on a
// Unix socket in a temporary folder, with more command-line flags if
// given, and returns a client of it once it is ready. The service stops
// when the test ends.
func Start(tb testing.TB, models string, flags ...string) *client.Client {
	tb.Helper()
	bin, lib := Binary(tb), LibraryPath(tb)
	// Unix socket paths are short (108 bytes): t.TempDir's can be longer.
	dir, err := os.MkdirTemp("", "accel-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "accel.sock")
	args := append([]string{"-listen", "unix:" + sock, "-models", models, "-ort-lib", lib}, flags...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	// The service logs this line once its socket is listening; the rest
	// of its log is kept for the failure message.
	var log bytes.Buffer
	sc := bufio.NewScanner(stderr)
	serving := false
	for !serving && sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		serving = strings.Contains(sc.Text(), "serving the Open Inference Protocol")
	}
	if !serving {
		cmd.Wait()
		tb.Fatalf("millrace-accel did not start:\n%s", log.String())
	}
	go io.Copy(io.Discard, stderr)
	tb.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	c, err := client.New("unix:" + sock)
	if err != nil {
		tb.Fatal(err)
	}
	if err := c.Ready(context.Background()); err != nil {
		tb.Fatalf("millrace-accel is not ready: %v\n%s", err, log.String())
	}
	return c
}
