package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/millrace/millrace/server"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/builtin"
	"github.com/stretchr/testify/require"
)

// testServer is a real server (SQLite, wazero, the built-in modules) in
// this process, listening on loopback.
type testServer struct {
	base, token string
}

// The client tests share one server: its first start compiles the
// built-in modules, which takes a while on a busy machine.
var (
	shared     *testServer
	sharedErr  error
	sharedOnce sync.Once
	sharedStop func()
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedStop != nil {
		sharedStop()
	}
	os.Exit(code)
}

// startServer returns the shared server, starting it on first use.
func startServer(t *testing.T) *testServer {
	t.Helper()
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "millrace-cli-test-")
		if err != nil {
			sharedErr = err
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			sharedErr = err
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		var out syncBuffer
		ready := make(chan string, 1)
		done := make(chan error, 1)
		go func() {
			done <- server.Run(ctx, server.Config{DataDir: dir, Listener: ln, Out: &out,
				Accel: accel.Config{Mode: accel.ModeOff}, Ready: func(addr string) { ready <- addr }})
		}()
		sharedStop = func() {
			cancel()
			<-done
			os.RemoveAll(dir)
		}
		select {
		case addr := <-ready:
			tok := regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`).FindString(out.String())
			shared = &testServer{base: "http://" + addr, token: tok}
		case sharedErr = <-done:
		}
	})
	require.NoError(t, sharedErr)
	require.NotEmpty(t, shared.token)
	return shared
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cli runs a command line against s and returns its standard output.
func (s *testServer) cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr, stdin: strings.NewReader(""),
		getenv: envMap(map[string]string{"MILLRACE_URL": s.base, "MILLRACE_TOKEN": s.token, "MILLRACE_CLI_CONFIG": "/nonexistent"})}
	err := run(context.Background(), e, args)
	return stdout.String(), err
}

func (s *testServer) mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := s.cli(t, args...)
	require.NoError(t, err, "millrace %s", strings.Join(args, " "))
	return out
}

// A new user's path with the client: push a module, apply a workflow
// from YAML, run it and wait, list runs, follow a run's events live,
// manage tokens, and scrape /metrics.
func TestClientAgainstARealServer(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	dir := t.TempDir()

	// module push: a built-in module's code under a new id, its manifest
	// beside it; -grant grants what it requests.
	mods, err := builtin.Modules()
	require.NoError(t, err)
	var echo builtin.Module
	for _, m := range mods {
		if m.Name == "echo" {
			echo = m
		}
	}
	require.NotEmpty(t, echo.Wasm, "make modules builds the built-in modules")
	var manifest map[string]any
	require.NoError(t, json.Unmarshal(echo.Manifest, &manifest))
	manifest["id"], manifest["version"] = "parrot", "2.0.0"
	mj, _ := json.Marshal(manifest)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "parrot.wasm"), echo.Wasm, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "manifest.json"), mj, 0o644))
	out := s.mustCLI(t, "module", "push", "-manifest", filepath.Join(dir, "manifest.json"), "-grant", filepath.Join(dir, "parrot.wasm"))
	require.Regexp(t, `parrot\s+2\.0\.0\s+[0-9a-f]{12}\s+true`, out)

	// workflow apply: YAML, id from the file, published.
	wf := "id: greet\nname: Greet\nnodes:\n  - id: say\n    module: parrot@2.0.0\n  - id: again\n    module: echo@1.0.0\nedges:\n  - from: say\n    to: again\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "greet.yaml"), []byte(wf), 0o644))
	out = s.mustCLI(t, "workflow", "apply", "-publish", filepath.Join(dir, "greet.yaml"))
	require.Equal(t, "workflow greet: published as version 1\n", out)
	// A bad workflow: the server's problem names the field.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("name: Bad\nnodes:\n  - id: x\n    module: nosuch@1.0.0\n"), 0o644))
	_, err = s.cli(t, "workflow", "apply", filepath.Join(dir, "bad.yaml"))
	require.ErrorContains(t, err, "nosuch")

	// workflow run -wait: a table with the output.
	out = s.mustCLI(t, "workflow", "run", "-input", `{"hello":"world"}`, "-wait", "greet")
	require.Regexp(t, `run_[0-9a-f]{21}\s+greet\s+1\s+succeeded\s+manual`, out)
	require.Contains(t, out, `output: {"again":{"hello":"world"}}`)
	// -json: the run as JSON.
	out = s.mustCLI(t, "workflow", "run", "-input", `{"n":2}`, "-wait", "-json", "greet")
	var run runView
	require.NoError(t, json.Unmarshal([]byte(out), &run))
	require.Equal(t, "succeeded", run.Status)
	require.Len(t, run.Nodes, 2)

	// runs list, as a table and as JSON.
	out = s.mustCLI(t, "runs", "list", "-workflow", "greet")
	require.Contains(t, out, run.ID)
	require.Equal(t, 3, strings.Count(out, "\n"), "a header and two runs")
	out = s.mustCLI(t, "runs", "list", "-json", "-workflow", "greet", "-status", "succeeded")
	var list struct{ Runs []runView }
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.Len(t, list.Runs, 2)

	// runs logs: the echo module logs one line per invocation.
	out = s.mustCLI(t, "runs", "logs", run.ID)
	require.Regexp(t, `(?m)^say\s+INFO\s+echo bytes=7`, out)
	require.Regexp(t, `(?m)^again\s+INFO\s+echo`, out)

	// runs logs -follow: events stream live until run.finished. The run
	// is queued first, then followed while it executes or after.
	out = s.mustCLI(t, "workflow", "run", "-json", "greet")
	require.NoError(t, json.Unmarshal([]byte(out), &run))
	out = s.mustCLI(t, "runs", "logs", "-follow", run.ID)
	require.Contains(t, out, "run.finished")
	require.Contains(t, out, "succeeded")
	// workflow run -follow prints the events and then the run.
	out = s.mustCLI(t, "workflow", "run", "-follow", "greet")
	require.Regexp(t, `node.finished\s+again\s+succeeded`, out)
	require.Regexp(t, `(?s)run.finished.*succeeded\s+manual`, out)

	// Errors from the server are its problem details.
	_, err = s.cli(t, "workflow", "run", "nosuch")
	require.ErrorContains(t, err, "the server answered 404")
	_, err = s.cli(t, "runs", "list", "-token", "mr_wrong")
	require.ErrorContains(t, err, "the server answered 401")

	// token create / list / revoke.
	out = s.mustCLI(t, "token", "create", "-scopes", "workflows:read,metrics:read", "-json", "reader")
	var tok struct{ ID, Token string }
	require.NoError(t, json.Unmarshal([]byte(out), &tok))
	require.Regexp(t, `^mr_`, tok.Token)
	reader := &testServer{base: s.base, token: tok.Token}
	require.Contains(t, reader.mustCLI(t, "runs", "list"), run.ID)
	_, err = reader.cli(t, "workflow", "run", "greet")
	require.ErrorContains(t, err, "403")
	require.Contains(t, s.mustCLI(t, "token", "list"), "reader")
	require.Equal(t, "token "+tok.ID+" revoked\n", s.mustCLI(t, "token", "revoke", tok.ID))
	_, err = reader.cli(t, "runs", "list")
	require.ErrorContains(t, err, "401")

	// /metrics, scraped from loopback: the runs above are counted.
	res, err := http.Get(s.base + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	metrics := string(body)
	require.Regexp(t, `millrace_runs_finished_total\{role="serve",status="succeeded"\} \d+`, metrics)
	require.Regexp(t, `millrace_runs_in_flight\{role="serve"\} \d+`, metrics)
	require.Regexp(t, `millrace_node_duration_seconds_count\{module="parrot",outcome="ok",role="serve"\} [45]`, metrics)
	require.Regexp(t, `millrace_sandbox_instantiations_total\{module="echo",role="serve"\} \d+`, metrics)
	require.Regexp(t, `millrace_queue_jobs\{role="serve",state="available"\} 0`, metrics)
	require.Regexp(t, `millrace_store_operation_duration_seconds_count\{op="lease",role="serve"\} \d+`, metrics)
	require.Contains(t, metrics, "go_goroutines")
}

// module init scaffolds a module on the guest SDK, module build compiles
// it to a WebAssembly reactor with its manifest embedded, and the pushed
// module runs.
func TestModuleInitBuildPush(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a module with the Go toolchain; skipped with -short")
	}
	t.Parallel()
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "..")
	s := startServer(t)
	dir := filepath.Join(t.TempDir(), "greeter")
	out := s.mustCLI(t, "module", "init", "-dir", dir, "-src", src, "greeter")
	require.Contains(t, out, "created module greeter")
	for _, f := range []string{"go.mod", "main.go", "main_test.go", "manifest.json", "workflow.yaml"} {
		require.FileExists(t, filepath.Join(dir, f))
	}
	_, err := s.cli(t, "module", "init", "-dir", dir, "-src", src, "greeter")
	require.ErrorContains(t, err, "already exists")
	_, err = s.cli(t, "module", "init", "-src", src, "Bad-Name")
	require.ErrorContains(t, err, "module id")

	out = s.mustCLI(t, "module", "build", "-dir", dir)
	require.Contains(t, out, "built greeter@0.1.0")
	out = s.mustCLI(t, "module", "push", "-grant", filepath.Join(dir, "greeter.wasm"))
	require.Regexp(t, `greeter\s+0\.1\.0`, out)

	// The workflow init wrote applies and runs as it is.
	out = s.mustCLI(t, "workflow", "apply", "-publish", filepath.Join(dir, "workflow.yaml"))
	require.Contains(t, out, "workflow greeter: published as version 1")
	out = s.mustCLI(t, "workflow", "run", "-input", `{"name":"Ada"}`, "-wait", "greeter")
	require.Regexp(t, `output: \{"report":\{"greeting":"hello, Ada","run":"run_[0-9a-f]+"\}\}`, out)
}

func TestCompletionFromTheCommandTable(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), &env{stdout: &out, stderr: io.Discard, getenv: envMap(nil)}, []string{"completion", shell}))
		for _, c := range commands {
			require.Contains(t, out.String(), c.name, shell)
			for _, sub := range c.subs {
				require.Contains(t, out.String(), sub, shell)
			}
		}
	}
	require.Error(t, run(context.Background(), &env{stdout: io.Discard, stderr: io.Discard, getenv: envMap(nil)}, []string{"completion", "tcsh"}))
}

func TestClientConfigFile(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "cli.yaml")
	require.NoError(t, os.WriteFile(p, []byte("server: https://millrace.example:8443\ntoken: mr_fromfile\n"), 0o600))
	e := &env{getenv: envMap(map[string]string{"MILLRACE_CLI_CONFIG": p, "MILLRACE_TOKEN": "mr_fromenv"})}
	c, err := (&clientOptions{}).client(e)
	require.NoError(t, err)
	require.Equal(t, "https://millrace.example:8443", c.base)
	require.Equal(t, "mr_fromenv", c.token, "the environment wins over the file")
	c, err = (&clientOptions{server: "http://127.0.0.1:1", token: "mr_flag"}).client(e)
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:1", c.base)
	require.Equal(t, "mr_flag", c.token)

	require.NoError(t, os.WriteFile(p, []byte("sever: x\n"), 0o600))
	_, err = (&clientOptions{}).client(e)
	require.ErrorContains(t, err, "field sever not found")
	_, err = (&clientOptions{server: "ftp://x"}).client(e)
	require.ErrorContains(t, err, "want an http:// or https:// URL")
}

// The upload progress bar reaches 100% and passes the bytes through.
func TestProgressReader(t *testing.T) {
	t.Parallel()
	data := bytes.Repeat([]byte("x"), 3<<20)
	var bar bytes.Buffer
	got, err := io.ReadAll(&progressReader{r: bytes.NewReader(data), w: &bar, label: "uploading m.wasm", total: int64(len(data))})
	require.NoError(t, err)
	require.Equal(t, data, got)
	require.Contains(t, bar.String(), "uploading m.wasm [==============================] 100% 3.0 MiB/3.0 MiB\n")
	require.False(t, isTerminal(&bar), "a buffer is not a terminal: no bar is drawn there")
}
