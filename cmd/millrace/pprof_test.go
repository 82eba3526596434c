package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
)

// The profiler listens on loopback only, and serves Go's profiles there.
func TestPprofLoopbackOnly(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:6060", "example.com:6060", "127.0.0.1"} {
		require.Error(t, servePprof(ctx, addr, io.Discard), addr)
	}
	var out bytes.Buffer
	require.NoError(t, servePprof(ctx, "127.0.0.1:0", &out))
	url := regexp.MustCompile(`http://127\.0\.0\.1:\d+/debug/pprof/`).FindString(out.String())
	require.NotEmpty(t, url, out.String())
	res, err := http.Get(url + "cmdline")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
}
