package server_test

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/millrace/millrace/server"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/internal/acceltest"
	"github.com/millrace/millrace/server/internal/onnxtest"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/stretchr/testify/require"
)

// The server starts its accelerator child, serves the registered models
// to the modules granted them, and stops the child on shutdown.
func TestServeWithAccelerator(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{DataDir: t.TempDir(), Listener: ln, Out: out, Ready: func(addr string) { ready <- addr },
			Accel: accel.Config{Mode: accel.ModeOn, Binary: acceltest.Binary(t), Library: acceltest.Library(t)}})
	}()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("server stopped: %v\n%s", err, out.String())
	}
	p := &process{base: base}
	token := regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`).FindString(out.String())

	var status map[string]any
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		status = p.call(t, token, http.MethodGet, "/v1/accel", nil)
		if status["state"] == "ready" || time.Now().After(deadline) {
			break
		}
	}
	require.Equal(t, "ready", status["state"], status)
	require.Equal(t, "child", status["kind"])
	pid := int(status["pid"].(float64))

	file := onnxtest.WriteFile(t, t.TempDir(), "arith.onnx", onnxtest.Arith())
	p.call(t, token, http.MethodPut, "/v1/models/arith", map[string]any{"path": file})
	model := p.call(t, token, http.MethodGet, "/v1/models/arith", nil)
	require.Len(t, model["inputs"], 2, model)

	p.call(t, token, http.MethodPost, "/v1/modules", moduleUpload(testguests.Reactor(t, "nnuser"),
		`{"abi":1,"id":"nnuser","name":"N","version":"1.0.0","capabilities":{"accel":{"models":["arith"]},"allowed_outbound_hosts":["http://127.0.0.1:*"]}}`))
	p.call(t, token, http.MethodPut, "/v1/modules/nnuser/versions/1.0.0/grants", map[string]any{"capabilities": map[string]any{"accel": map[string]any{"models": []string{"arith"}}, "allowed_outbound_hosts": []string{"http://127.0.0.1:*"}}})
	res := p.call(t, token, http.MethodPost, "/v1/modules/nnuser/versions/1.0.0/invoke", map[string]any{"input": map[string]any{
		"model": "arith", "outputs": 1, "inputs": []any{
			map[string]any{"type": "f32", "shape": []int{1, 3}, "data": []float64{1, 2, 3}},
			map[string]any{"type": "f32", "shape": []int{1, 3}, "data": []float64{10, 20, 30}},
		}}})
	require.Equal(t, []any{11.0, 22.0, 33.0}, res["output"].(map[string]any)["outputs"].([]any)[0].(map[string]any)["data"])

	ready2 := p.call(t, "", http.MethodGet, "/readyz", nil)
	require.Equal(t, "ready", ready2["accel"].(map[string]any)["state"])
	require.FileExists(t, filepath.Join(filepath.Dir(status["address"].(string)[len("unix:"):]), "models", "arith.onnx"))

	cancel()
	require.NoError(t, <-done)
	require.Error(t, syscall.Kill(pid, 0), "the child stops with the server")
}
