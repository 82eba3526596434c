// Package testguests builds the Go modules that tests run: the fixtures in
// modules/testguests (hostile and capability-probing guests) and the
// built-in modules. It shells out to the Go toolchain with GOOS=wasip1, so
// the build cache makes every build after the first cheap.
package testguests

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

var (
	once  sync.Once
	dir   string
	bErr  error
	names = []string{
		// fixtures
		"testguests/loop", "testguests/membomb", "testguests/bigoutput", "testguests/panic",
		"testguests/recursion", "testguests/logflood", "testguests/sleeper", "testguests/cpu",
		"testguests/hostcalls", "testguests/kvuser", "testguests/httpuser", "testguests/secretuser",
		"testguests/random", "testguests/noop", "testguests/hello", "testguests/porter", "testguests/flaky",
		"testguests/counter", "testguests/initloop", "testguests/nnuser", "testguests/snoop",
		// built-in modules
		"echo", "json_transform", "http_request", "text_template", "kv_counter", "ocr", "stable_diffusion_xl", "text_classify",
	}
)

// ModulesDir is the modules/ folder of the repository.
func ModulesDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "modules")
}

func build() {
	dir, bErr = os.MkdirTemp("", "millrace-guests-")
	if bErr != nil {
		return
	}
	pkgs := make([]string, len(names))
	for i, n := range names {
		pkgs[i] = "./" + n
	}
	args := append([]string{"build", "-trimpath", "-o", dir + string(os.PathSeparator)}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = ModulesDir()
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		bErr = fmt.Errorf("building test guests: %v\n%s", err, out)
	}
}

// Wasm returns the bytes of a guest by the last element of its path
// ("loop", "echo", …), building all guests on first use.
func Wasm(tb testing.TB, name string) []byte {
	tb.Helper()
	once.Do(build)
	if bErr != nil {
		tb.Fatal(bErr)
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		tb.Fatalf("guest %s: %v", name, err)
	}
	return b
}

var (
	reactorMu sync.Mutex
	reactors  = map[string]error{}
)

// Reactor returns the bytes of a guest built as a reactor
// (-buildmode=c-shared), which go build makes one package at a time.
func Reactor(tb testing.TB, name string) []byte {
	tb.Helper()
	once.Do(build)
	if bErr != nil {
		tb.Fatal(bErr)
	}
	pkg := ""
	for _, n := range names {
		if filepath.Base(n) == name {
			pkg = "./" + n
		}
	}
	if pkg == "" {
		tb.Fatalf("no guest named %s", name)
	}
	out := filepath.Join(dir, name+".reactor")
	reactorMu.Lock()
	err, built := reactors[name]
	if !built {
		cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", out, pkg)
		cmd.Dir = ModulesDir()
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if b, cerr := cmd.CombinedOutput(); cerr != nil {
			err = fmt.Errorf("building reactor %s: %v\n%s", name, cerr, b)
		}
		reactors[name] = err
	}
	reactorMu.Unlock()
	if err != nil {
		tb.Fatal(err)
	}
	b, rerr := os.ReadFile(out)
	if rerr != nil {
		tb.Fatalf("reactor %s: %v", name, rerr)
	}
	return b
}

// Manifest returns the manifest.json of a built-in module.
func Manifest(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(ModulesDir(), name, "manifest.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// Cleanup removes the built guests; call it from TestMain after m.Run.
func Cleanup() {
	if dir != "" && strings.Contains(dir, "millrace-guests-") {
		os.RemoveAll(dir)
	}
}
