package engines

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Guests holds the compiled guest modules, by flavour and workload.
type Guests struct {
	// Reactor are plain WASI reactors (-buildmode=c-shared) exporting run
	// and importing env.tick: run by raw wazero and raw wasmtime-go.
	Reactor map[Workload][]byte
	// Extism are Extism plug-ins built with go-pdk.
	Extism map[Workload][]byte
	// Millrace are the SDK test guests of modules/testguests built as
	// reactors (the fast path: snapshot after _initialize), and
	// MillraceCommand the same sources built as WASI commands; both run
	// through sandbox.Module.Invoke.
	Millrace        map[Workload][]byte
	MillraceCommand map[Workload][]byte
}

// millraceGuests maps each workload to its SDK test guest.
var millraceGuests = map[Workload]string{Trivial: "noop", CPU: "cpu", HostCalls: "hostcalls"}

// engineDir is bench/engines in the source tree (tests and `go run` only).
func engineDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// BuildGuests compiles every guest with GOOS=wasip1 GOARCH=wasm into dir
// (reactor/, extism/ and millrace/ below it) and loads them. The Go build
// cache makes a rebuild of unchanged sources cheap, and a file whose bytes
// did not change is not rewritten, so calling it again is idempotent.
func BuildGuests(ctx context.Context, dir string) (*Guests, error) {
	src := engineDir()
	tmp, err := os.MkdirTemp("", "engines-guests-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	for _, w := range Workloads {
		builds := []struct {
			flavour, name, moduleDir, pkg string
			flags                         []string
		}{
			// -buildmode=c-shared builds one package at a time.
			{"reactor", string(w), src, "./guests/reactor/" + string(w), []string{"-buildmode=c-shared"}},
			{"extism", string(w), src, "./guests/extism/" + string(w), []string{"-buildmode=c-shared"}},
			{"millrace", millraceGuests[w], filepath.Join(src, "..", "..", "modules"), "./testguests/" + millraceGuests[w], []string{"-buildmode=c-shared"}},
			{"millrace-command", millraceGuests[w], filepath.Join(src, "..", "..", "modules"), "./testguests/" + millraceGuests[w], nil},
		}
		for _, b := range builds {
			out := filepath.Join(tmp, b.flavour+"-"+b.name)
			args := append(append([]string{"build", "-trimpath"}, b.flags...), "-o", out, b.pkg)
			cmd := exec.CommandContext(ctx, "go", args...)
			cmd.Dir = b.moduleDir
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if msg, err := cmd.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("building %s guest %s: %v\n%s", b.flavour, b.pkg, err, msg)
			}
			if err := copyChanged(out, filepath.Join(dir, b.flavour, b.name+".wasm")); err != nil {
				return nil, err
			}
		}
	}
	return LoadGuests(dir)
}

// copyChanged copies the file from to the path to unless to already holds
// the same bytes.
func copyChanged(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(to); err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// LoadGuests reads guests that BuildGuests wrote into dir.
func LoadGuests(dir string) (*Guests, error) {
	g := &Guests{Reactor: map[Workload][]byte{}, Extism: map[Workload][]byte{}, Millrace: map[Workload][]byte{}, MillraceCommand: map[Workload][]byte{}}
	for _, w := range Workloads {
		for _, f := range []struct {
			m    map[Workload][]byte
			path string
		}{
			{g.Reactor, filepath.Join(dir, "reactor", string(w)+".wasm")},
			{g.Extism, filepath.Join(dir, "extism", string(w)+".wasm")},
			{g.Millrace, filepath.Join(dir, "millrace", millraceGuests[w]+".wasm")},
			{g.MillraceCommand, filepath.Join(dir, "millrace-command", millraceGuests[w]+".wasm")},
		} {
			b, err := os.ReadFile(f.path)
			if err != nil {
				return nil, fmt.Errorf("guest %s: %w (build the guests with `go run ./cmd/guests` in bench/engines)", f.path, err)
			}
			f.m[w] = b
		}
	}
	return g, nil
}
