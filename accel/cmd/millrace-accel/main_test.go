package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/client"
	"github.com/millrace/millrace/accel/internal/testenv"
	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/accel/onnxbuild"
)

// start runs the command with args and env until the test ends.
func start(t *testing.T, args []string, env map[string]string) (net.Addr, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan net.Addr, 1)
	var stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, func(k string) string { return env[k] }, &stderr, listening)
	}()
	var addr net.Addr
	select {
	case addr = <-listening:
	case err := <-done:
		t.Fatalf("millrace-accel exited: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return addr, &stderr
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

func TestServesModelsWithTokenFromEnv(t *testing.T) {
	t.Parallel()
	models := testenv.ModelDir(t, map[string][]byte{"arith": onnxbuild.Arith()}, false)
	addr, _ := start(t, []string{"-listen", "127.0.0.1:0", "-models", models, "-intra-op-threads", "1", "-idle-unload", "0"},
		map[string]string{"MILLRACE_ORT_LIB": testenv.LibraryPath(t), "MILLRACE_ACCEL_TOKEN": "tok"})
	ctx := context.Background()
	c, err := client.New(addr.String(), client.WithToken("tok"))
	require.NoError(t, err)
	require.NoError(t, c.Ready(ctx))
	resp, err := c.Infer(ctx, "arith", []oip.Tensor{
		oip.NewTensor("a", []int64{1, 3}, []float32{1, 2, 3}),
		oip.NewTensor("b", []int64{1, 3}, []float32{3, 2, 1}),
	})
	require.NoError(t, err)
	sum, err := oip.Values[float32](resp.Outputs[0])
	require.NoError(t, err)
	require.Equal(t, []float32{4, 4, 4}, sum)
	anon, err := client.New(addr.String())
	require.NoError(t, err)
	_, err = anon.ModelMetadata(ctx, "arith")
	require.Equal(t, http.StatusUnauthorized, client.StatusOf(err))
}

func TestStartsNotReadyWithoutLibrary(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "accel.sock")
	_, stderr := start(t, []string{"-listen", "unix:" + sock, "-ort-lib", "/nonexistent/libonnxruntime.so.1"}, nil)
	c, err := client.New("unix:" + sock)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, c.Live(ctx))
	err = c.Ready(ctx)
	require.Equal(t, http.StatusServiceUnavailable, client.StatusOf(err))
	require.ErrorContains(t, err, "make accel-deps")
	require.Contains(t, stderr.String(), "not ready")
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	get := func(string) string { return "" }
	require.ErrorContains(t, run(context.Background(), []string{"-provider-options", "nokv"}, get, &stderr, nil), "not k=v")
	require.ErrorContains(t, run(context.Background(), []string{"extra"}, get, &stderr, nil), "unexpected arguments")
	require.Error(t, run(context.Background(), []string{"-listen", "unix:"}, get, &stderr, nil))
	_, err := os.Stat("models")
	require.True(t, os.IsNotExist(err))
}
