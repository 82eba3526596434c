package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/millrace/millrace/server/internal/pgtest"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/stretchr/testify/require"
)

// process is a real millrace server process.
type process struct {
	cmd   *exec.Cmd
	base  string
	token string
}

func buildBinary(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	bin := filepath.Join(t.TempDir(), "millrace")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/millrace")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// startProcess runs the binary on dataDir and waits until /readyz says
// ready. token is the admin token (empty after the first start).
func startProcess(t *testing.T, bin, dataDir, addr string, env ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, "serve", "-data", dataDir, "-addr", addr)
	cmd.Env = append(append(os.Environ(), "MILLRACE_RUN_LEASE=2s"), env...)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = io.Discard
	require.NoError(t, cmd.Start())
	p := &process{cmd: cmd, base: "http://" + addr}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	tokens := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if tok := re.FindString(sc.Text()); tok != "" {
				tokens <- tok
			}
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if res, err := http.Get(p.base + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				select {
				case p.token = <-tokens:
				case <-time.After(100 * time.Millisecond):
				}
				return p
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the server did not become ready")
	return nil
}

func (p *process) call(t *testing.T, token, method, path string, body any) map[string]any {
	t.Helper()
	var r io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case *bytes.Buffer:
		r = b
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	if mw, ok := body.(*multipartBody); ok {
		r, ct = mw.buf, mw.contentType
	}
	req, err := http.NewRequest(method, p.base+path, r)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", ct)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	require.Less(t, res.StatusCode, 300, "%s %s: %s", method, path, raw)
	var m map[string]any
	json.Unmarshal(raw, &m)
	return m
}

type multipartBody struct {
	buf         *bytes.Buffer
	contentType string
}

func moduleUpload(wasm []byte, manifest string) *multipartBody {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("wasm", "m.wasm")
	w.Write(wasm)
	w, _ = mw.CreateFormFile("manifest", "manifest.json")
	w.Write([]byte(manifest))
	mw.Close()
	return &multipartBody{&buf, mw.FormDataContentType()}
}

// sharedKey is the secret key of servers sharing one database.
const sharedKey = "MILLRACE_SECRET_KEY=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// setupDurable installs the workflow of the durability tests through p:
// count (executions counted in the KV store) → slow (sleeps sleepMS) →
// done, and starts a run of it.
func setupDurable(t *testing.T, p *process, tok string, sleepMS int) string {
	t.Helper()
	installDurable(t, p, tok, sleepMS)
	return p.call(t, tok, http.MethodPost, "/v1/workflows/durable/runs", map[string]any{"input": map[string]any{}})["id"].(string)
}

// installDurable installs and publishes setupDurable's workflow.
func installDurable(t *testing.T, p *process, tok string, sleepMS int) {
	t.Helper()
	p.call(t, tok, http.MethodPost, "/v1/modules", moduleUpload(testguests.Wasm(t, "flaky"), `{"abi":1,"id":"counter","name":"C","version":"1.0.0","capabilities":{"kv":true}}`))
	p.call(t, tok, http.MethodPost, "/v1/modules", moduleUpload(testguests.Wasm(t, "sleeper"), `{"abi":1,"id":"sleeper","name":"S","version":"1.0.0","limits":{"timeout_ms":60000}}`))
	p.call(t, tok, http.MethodPut, "/v1/modules/counter/versions/1.0.0/grants", map[string]any{"capabilities": map[string]any{"kv": true}})
	p.call(t, tok, http.MethodPut, "/v1/modules/sleeper/versions/1.0.0/grants", map[string]any{})
	p.call(t, tok, http.MethodPut, "/v1/workflows/durable", map[string]any{
		"name": "durable",
		"nodes": []any{
			map[string]any{"id": "count", "module": "counter@1.0.0", "input": map[string]any{"fields": map[string]any{"key": "run.id", "succeed_on": "1"}}},
			map[string]any{"id": "slow", "module": "sleeper@1.0.0", "input": map[string]any{"expression": fmt.Sprintf("{'ms': %d}", sleepMS)}},
			map[string]any{"id": "done", "module": "echo@1.0.0", "input": map[string]any{"expression": "nodes.count.output"}},
		},
		"edges": []any{map[string]any{"from": "count", "to": "slow"}, map[string]any{"from": "slow", "to": "done"}},
	})
	p.call(t, tok, http.MethodPost, "/v1/workflows/durable/publish", nil)
}

func nodeStatus(run map[string]any, id string) (string, float64) {
	for _, n := range run["nodes"].([]any) {
		if m := n.(map[string]any); m["id"] == id {
			return m["status"].(string), m["attempts"].(float64)
		}
	}
	return "", 0
}

// waitNodeRunning waits until the run's node is executing.
func waitNodeRunning(t *testing.T, p *process, tok, runID, node string) {
	t.Helper()
	require.Eventually(t, func() bool {
		st, _ := nodeStatus(p.call(t, tok, http.MethodGet, "/v1/runs/"+runID, nil), node)
		return st == "running"
	}, time.Minute, 20*time.Millisecond)
}

// requireResumed waits for the run to finish through p and checks that it
// resumed correctly: the finished node was not executed again and the
// interrupted one ran exactly once more.
func requireResumed(t *testing.T, p *process, tok, runID string) {
	t.Helper()
	var run map[string]any
	require.Eventually(t, func() bool {
		run = p.call(t, tok, http.MethodGet, "/v1/runs/"+runID, nil)
		return run["status"] == "succeeded" || run["status"] == "failed"
	}, time.Minute, 100*time.Millisecond, "the run did not finish after the kill")
	require.Equal(t, "succeeded", run["status"], run["error"])
	_, countAttempts := nodeStatus(run, "count")
	_, slowAttempts := nodeStatus(run, "slow")
	require.EqualValues(t, 1, countAttempts)
	require.EqualValues(t, 2, slowAttempts, "the interrupted node ran exactly once more")
	require.Equal(t, map[string]any{"done": map[string]any{"runs": float64(1)}}, run["output"], "the finished node was not executed again")
}

// databases are the two stores the durability tests run on.
func databases(t *testing.T) map[string]func(t *testing.T) []string {
	return map[string]func(t *testing.T) []string{
		"sqlite":   func(t *testing.T) []string { return nil },
		"postgres": func(t *testing.T) []string { return []string{"DATABASE_URL=" + pgtest.URL(t), sharedKey} },
	}
}

// kill -9 the server while a run's second node executes; after a restart
// the run finishes, the finished first node is not executed again and the
// interrupted node runs exactly once more. On SQLite and on PostgreSQL.
func TestRunSurvivesKill9(t *testing.T) {
	killMidRun(t, func(t *testing.T, p *process) string { return setupDurable(t, p, p.token, 4000) })
}

// killMidRun starts a server on each database, starts a run of the
// durability workflow with start, kills the server with SIGKILL while the
// run's slow node executes, and checks that after a restart the run
// resumes as it should.
func killMidRun(t *testing.T, start func(t *testing.T, p *process) (runID string)) {
	if testing.Short() {
		t.Skip("starts real server processes; skipped with -short")
	}
	bin := buildBinary(t)
	for name, env := range databases(t) {
		t.Run(name, func(t *testing.T) {
			env := env(t)
			dataDir, addr := t.TempDir(), freeAddr(t)
			p := startProcess(t, bin, dataDir, addr, env...)
			require.NotEmpty(t, p.token)
			runID := start(t, p)
			waitNodeRunning(t, p, p.token, runID, "slow")
			require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
			p.cmd.Wait()

			p2 := startProcess(t, bin, dataDir, addr, env...)
			require.Empty(t, p2.token, "no new admin token on restart")
			requireResumed(t, p2, p.token, runID)
		})
	}
}

// The same through a sync webhook, whose run executes at once in the
// process that took the call (an eager start, without a queue job): kill
// -9 mid-run, and after a restart the run is recovered from its lease and
// finishes the same way.
func TestSyncWebhookRunSurvivesKill9(t *testing.T) {
	killMidRun(t, func(t *testing.T, p *process) string {
		installDurable(t, p, p.token, 4000)
		trig := p.call(t, p.token, http.MethodPost, "/v1/workflows/durable/triggers", map[string]any{"kind": "webhook", "webhook": map[string]any{"mode": "sync"}})
		go func() {
			// Cut off by the kill: the caller sees the connection drop.
			req, _ := http.NewRequest(http.MethodPost, p.base+trig["path"].(string), bytes.NewReader([]byte(`{}`)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Millrace-Secret", trig["secret"].(string))
			if res, err := http.DefaultClient.Do(req); err == nil {
				res.Body.Close()
			}
		}()
		var runID string
		require.Eventually(t, func() bool {
			runs := p.call(t, p.token, http.MethodGet, "/v1/runs?workflow_id=durable", nil)["runs"].([]any)
			if len(runs) == 1 {
				runID = runs[0].(map[string]any)["id"].(string)
			}
			return runID != ""
		}, time.Minute, 20*time.Millisecond)
		return runID
	})
}

// Two servers on one PostgreSQL: the first executes a run; it is killed
// mid-run and the second, still running, takes the run over and finishes
// it.
func TestScaleOutTakeover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real server processes; skipped with -short")
	}
	bin := buildBinary(t)
	env := []string{"DATABASE_URL=" + pgtest.URL(t), sharedKey}
	// One data directory for both: b then starts from a's compiled-code
	// cache in a second instead of compiling the built-ins again.
	dataDir := t.TempDir()
	a := startProcess(t, bin, dataDir, freeAddr(t), env...)
	require.NotEmpty(t, a.token)
	runID := setupDurable(t, a, a.token, 15000)
	waitNodeRunning(t, a, a.token, runID, "slow") // a executes it: b is not up yet

	b := startProcess(t, bin, dataDir, freeAddr(t), env...)
	require.Empty(t, b.token, "the second server shares the first's admin token")
	// b serves the same data while a is alive.
	require.Equal(t, "running", b.call(t, a.token, http.MethodGet, "/v1/runs/"+runID, nil)["status"])
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))
	a.cmd.Wait()
	requireResumed(t, b, a.token, runID)
}
