package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/server"
	"github.com/millrace/millrace/server/builtin"
	"github.com/stretchr/testify/require"
)

// syncBuffer collects the server's output from its goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the server on a free port until the test ends, and waits
// until it is ready.
func start(t *testing.T, dataDir string) (base, output string, stop func()) {
	t.Helper()
	return startConfig(t, server.Config{DataDir: dataDir})
}

// startConfig is start with more of the configuration; its listener,
// output and ready callback are start's own.
func startConfig(t *testing.T, cfg server.Config) (base, output string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	cfg.Listener, cfg.Out, cfg.Ready = ln, out, func(addr string) { ready <- addr }
	go func() { done <- server.Run(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	select {
	case addr := <-ready:
		return "http://" + addr, out.String(), stop
	case err := <-done:
		t.Fatalf("server stopped: %v\n%s", err, out.String())
	case <-time.After(3 * time.Minute):
		t.Fatal("server did not become ready")
	}
	return "", "", stop
}

func call(t *testing.T, token, method, url string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(res.Body)
	json.Unmarshal(b, &m)
	return res.StatusCode, m
}

// The first start creates an admin token (shown once), installs and grants
// the built-in modules; a restart keeps both and prints no new token.
func TestFirstStartAndRestart(t *testing.T) {
	mods, err := builtin.Modules()
	require.NoError(t, err)
	require.Len(t, mods, 8, "the built-in modules are not embedded: run make modules")

	dir := t.TempDir()
	base, out, stop := start(t, dir)
	token := regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`).FindString(out)
	require.NotEmpty(t, token, "the admin token is printed at first start:\n%s", out)

	status, body := call(t, token, http.MethodGet, base+"/v1/modules", nil)
	require.Equal(t, http.StatusOK, status)
	var ids []string
	for _, m := range body["modules"].([]any) {
		ids = append(ids, m.(map[string]any)["id"].(string))
	}
	require.ElementsMatch(t, []string{"echo", "json_transform", "http_request", "text_template", "kv_counter", "ocr", "stable_diffusion_xl", "text_classify"}, ids)

	status, body = call(t, token, http.MethodPost, base+"/v1/modules/kv_counter/versions/latest/invoke", map[string]any{"input": map[string]any{"key": "visits"}})
	require.Equal(t, http.StatusOK, status, body)
	status, body = call(t, token, http.MethodPost, base+"/v1/modules/json_transform/versions/latest/invoke",
		map[string]any{"input": map[string]any{"a": 2, "b": 3}, "config": map[string]any{"expression": "input.a * input.b"}})
	require.Equal(t, http.StatusOK, status, body)
	require.EqualValues(t, 6, body["output"])

	// Restart on the same data directory.
	stop()
	t.Run("restart", func(t *testing.T) {
		base2, out2, _ := start(t, dir)
		require.NotContains(t, out2, "mr_", "no second admin token")
		status, body := call(t, token, http.MethodPost, base2+"/v1/modules/kv_counter/versions/latest/invoke", map[string]any{"input": map[string]any{"key": "visits"}})
		require.Equal(t, http.StatusOK, status, body)
		require.EqualValues(t, 2, body["output"].(map[string]any)["value"], "the key-value store survived the restart")
	})
}
