package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/millrace/millrace/server/internal/pgtest"
	"github.com/stretchr/testify/require"
)

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logged is a millrace process whose JSON logs are collected.
type logged struct {
	cmd    *exec.Cmd
	logs   *lockedBuffer
	token  string // the admin token, if it printed one
	exited chan struct{}
}

// stop sends SIGTERM and returns the exit code.
func (l *logged) stop(t *testing.T) int {
	t.Helper()
	require.NoError(t, l.cmd.Process.Signal(syscall.SIGTERM))
	<-l.exited
	return l.cmd.ProcessState.ExitCode()
}

// startLogged starts `millrace args...` with JSON logs collected, and
// waits until base/readyz answers 200.
func startLogged(t *testing.T, bin, base string, env []string, args ...string) *logged {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "MILLRACE_RUN_LEASE=2s", "MILLRACE_LOG_FORMAT=json"), env...)
	var logs, out lockedBuffer
	cmd.Stderr, cmd.Stdout = &logs, &out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("millrace %v exited: %s", args, logs.String())
		default:
		}
		if res, err := http.Get(base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return &logged{cmd: cmd, logs: &logs, exited: exited, token: regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`).FindString(out.String())}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("millrace %v did not become ready", args)
	return nil
}

// logLines returns the JSON log lines whose msg is msg.
func logLines(logs string, msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewBufferString(logs))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// startRuns starts n runs of the durable workflow.
func startRuns(t *testing.T, p *process, tok string, n int) []string {
	var ids []string
	for range n {
		ids = append(ids, p.call(t, tok, http.MethodPost, "/v1/workflows/durable/runs", map[string]any{"input": map[string]any{}})["id"].(string))
	}
	return ids
}

// requireExactlyOnce waits for every run to finish through p and checks
// that each succeeded with every node executed exactly once: the count
// node's own KV counter says 1, and no node needed a second attempt.
func requireExactlyOnce(t *testing.T, p *process, tok string, ids []string) {
	t.Helper()
	for _, id := range ids {
		var run map[string]any
		require.Eventually(t, func() bool {
			run = p.call(t, tok, http.MethodGet, "/v1/runs/"+id, nil)
			return run["status"] == "succeeded" || run["status"] == "failed"
		}, 2*time.Minute, 50*time.Millisecond, "run %s did not finish", id)
		require.Equal(t, "succeeded", run["status"], run["error"])
		for _, node := range []string{"count", "slow", "done"} {
			st, attempts := nodeStatus(run, node)
			require.Equal(t, "succeeded", st, "%s %s", id, node)
			require.EqualValues(t, 1, attempts, "run %s node %s ran once: it was in flight at SIGTERM and finished within the grace period, or had not started", id, node)
		}
		require.Equal(t, map[string]any{"done": map[string]any{"runs": float64(1)}}, run["output"], "run %s: the count node executed once", id)
	}
}

// SIGTERM a server with many runs in flight: it stops taking work, lets
// the nodes executing finish (the grace period is long enough), hands the
// runs back and exits 0. After a restart every run finishes exactly once
// and no node ran twice.
func TestSIGTERMUnderLoadLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real server processes; skipped with -short")
	}
	bin := buildBinary(t)
	dataDir, addr := t.TempDir(), freeAddr(t)
	base := "http://" + addr
	args := []string{"serve", "-data", dataDir, "-addr", addr, "-accel", "off", "-shutdown-grace", "2m"}
	// A lease long enough that a busy machine never lets one lapse: the
	// runs handed back released theirs, so none waits for it.
	env := []string{"MILLRACE_RUN_LEASE=30s"}
	srv := startLogged(t, bin, base, env, args...)
	tok, logs := srv.token, srv.logs
	require.NotEmpty(t, tok)
	p := &process{cmd: srv.cmd, base: base, token: tok}
	ids := append([]string{setupDurable(t, p, tok, 1500)}, startRuns(t, p, tok, 19)...)
	// Under load: several runs have a node executing.
	require.Eventually(t, func() bool {
		res := p.call(t, tok, http.MethodGet, "/v1/runs?status=running", nil)
		return len(res["runs"].([]any)) >= 5
	}, time.Minute, 10*time.Millisecond)

	require.Equal(t, 0, srv.stop(t), "a graceful stop exits 0: %s", logs.String())
	// Runs were handed back between nodes, logged with their run_id.
	handed := logLines(logs.String(), "run handed back for shutdown between nodes")
	require.NotEmpty(t, handed, logs.String())
	require.Regexp(t, `^run_[0-9a-f]{21}$`, handed[0]["run_id"])
	require.Empty(t, logLines(logs.String(), "run interrupted by shutdown"), "no node was cut off")
	require.NotEmpty(t, logLines(logs.String(), "stopped"))

	again := startLogged(t, bin, base, env, args...)
	require.Empty(t, again.token)
	requireExactlyOnce(t, &process{base: base}, tok, ids)
}

// A server and a worker on one PostgreSQL share the work; a worker that
// gets SIGTERM hands its runs back and the server resumes them at once,
// every node still executed exactly once. A worker refuses SQLite.
func TestWorkerSharesTheWork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real server processes; skipped with -short")
	}
	bin := buildBinary(t)
	out, err := exec.Command(bin, "worker", "-data", t.TempDir()).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "worker: database.url: is empty")

	// A lease long enough that a busy machine never lets one lapse: what
	// the worker hands back it releases.
	env := []string{"DATABASE_URL=" + pgtest.URL(t), sharedKey, "MILLRACE_RUN_LEASE=30s"}
	dataDir := t.TempDir()
	serverAddr, workerAddr := freeAddr(t), freeAddr(t)
	srv := startLogged(t, bin, "http://"+serverAddr, env, "serve", "-data", dataDir, "-addr", serverAddr, "-accel", "off")
	tok := srv.token
	require.NotEmpty(t, tok)
	s := &process{cmd: srv.cmd, base: "http://" + serverAddr, token: tok}
	// The worker: its own data directory (compiled-code cache), health
	// and metrics on its own address, no API.
	w := startLogged(t, bin, "http://"+workerAddr, env, "worker", "-data", t.TempDir(), "-worker-addr", workerAddr, "-accel", "off", "-shutdown-grace", "2m")
	res, err := http.Get("http://" + workerAddr + "/v1/runs")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusNotFound, res.StatusCode, "a worker serves no API")

	ids := append([]string{setupDurable(t, s, tok, 1000)}, startRuns(t, s, tok, 29)...)
	// Both processes execute runs: each one's metrics count runs in flight
	// or finished.
	executed := func(base, role string) bool {
		res, err := http.Get(base + "/metrics")
		if err != nil {
			return false
		}
		defer res.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(res.Body)
		return regexp.MustCompile(`millrace_(runs_in_flight\{role="` + role + `"\}|runs_finished_total\{role="` + role + `",status="succeeded"\}) [1-9]`).Match(buf.Bytes())
	}
	require.Eventually(t, func() bool {
		return executed("http://"+workerAddr, "worker") && executed(s.base, "serve")
	}, time.Minute, 10*time.Millisecond, "server: %s\nworker: %s", srv.logs.String(), w.logs.String())

	require.Equal(t, 0, w.stop(t), w.logs.String())
	requireExactlyOnce(t, s, tok, ids)
}
