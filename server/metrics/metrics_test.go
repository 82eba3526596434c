package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/server/metrics"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/stretchr/testify/require"
)

// /metrics answers loopback clients; others need the metrics token or an
// API token the server accepts (metrics:read).
func TestGuard(t *testing.T) {
	t.Parallel()
	m := metrics.New("serve")
	m.RunFinished("succeeded")
	h := m.Handler(metrics.Guard{Token: "scrape-me", Authorize: func(_ context.Context, authz string) bool {
		return authz == "Bearer mr_api_token_with_metrics_read"
	}})
	scrape := func(remote, authz string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.RemoteAddr = remote
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body, _ := io.ReadAll(rec.Body)
		return rec.Code, string(body)
	}
	code, body := scrape("127.0.0.1:5555", "")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, `millrace_runs_finished_total{role="serve",status="succeeded"} 1`)
	code, _ = scrape("[::1]:5555", "")
	require.Equal(t, http.StatusOK, code)
	for _, authz := range []string{"", "Bearer wrong", "Basic c2NyYXBlLW1l", "Bearer mr_other"} {
		code, body = scrape("192.0.2.7:5555", authz)
		require.Equal(t, http.StatusUnauthorized, code, authz)
		require.Contains(t, body, "metrics:read")
	}
	code, _ = scrape("192.0.2.7:5555", "Bearer scrape-me")
	require.Equal(t, http.StatusOK, code)
	code, _ = scrape("192.0.2.7:5555", "Bearer mr_api_token_with_metrics_read")
	require.Equal(t, http.StatusOK, code)

	// Without a token, only loopback scrapes.
	open := metrics.New("worker").Handler(metrics.Guard{})
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.RemoteAddr = "10.0.0.1:1"
	req.Header.Set("Authorization", "Bearer ")
	rec := httptest.NewRecorder()
	open.ServeHTTP(rec, req)
	require.Equal(t, http.StatusUnauthorized, rec.Code)
}

type failingAccel struct{ err error }

func (a failingAccel) LoadModel(context.Context, string) (*sandbox.AccelModel, error) {
	return nil, a.err
}

func (a failingAccel) Infer(context.Context, *sandbox.AccelModel, []oip.Tensor) ([]oip.Tensor, error) {
	return nil, a.err
}

// Accelerator errors are counted by reason.
func TestAccelErrors(t *testing.T) {
	t.Parallel()
	m := metrics.New("serve")
	a := m.Accel(failingAccel{err: errors.Join(sandbox.ErrAccelBusy, errors.New("restarting"))})
	_, err := a.LoadModel(context.Background(), "det")
	require.ErrorIs(t, err, sandbox.ErrAccelBusy)
	a = m.Accel(failingAccel{err: sandbox.ErrModelNotFound})
	a.LoadModel(context.Background(), "nope")
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.RemoteAddr = "127.0.0.1:1"
	m.Handler(metrics.Guard{}).ServeHTTP(rec, req)
	body := rec.Body.String()
	require.Contains(t, body, `millrace_accel_errors_total{op="load",reason="busy",role="serve"} 1`)
	require.Contains(t, body, `millrace_accel_errors_total{op="load",reason="not_found",role="serve"} 1`)
	require.Contains(t, body, `millrace_accel_request_duration_seconds_count{op="load",role="serve"} 2`)
}
