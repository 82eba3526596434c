//go:build !wasip1

package millracehttp_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/guest-sdk/millracehttp"
	"github.com/millrace/millrace/guest-sdk/millracetest"
)

func echoServer() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Path", r.URL.RequestURI())
		w.Header().Set("X-Token", r.Header.Get("Authorization"))
		w.WriteHeader(http.StatusTeapot)
		w.Write(body)
	})
}

func TestClient(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.HTTP = echoServer()
	h.Run(func() {
		req, err := http.NewRequest("POST", "https://api.example.com/v1/x?q=1", strings.NewReader("payload"))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer t")
		resp, err := millracehttp.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusTeapot, resp.StatusCode)
		require.Equal(t, "418 I'm a teapot", resp.Status)
		require.Equal(t, "payload", string(body))
		require.Equal(t, "POST", resp.Header.Get("X-Method"))
		require.Equal(t, "/v1/x?q=1", resp.Header.Get("X-Path"))
		require.Equal(t, "Bearer t", resp.Header.Get("X-Token"))

		// The host follows redirects; the client must not follow them again.
		resp, err = millracehttp.Client().Get("https://api.example.com/redirect")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusFound, resp.StatusCode)
	})
}

func TestClientDenied(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Grants = &abi.Capabilities{AllowedOutboundHosts: []string{"https://api.example.com"}}
	h.Run(func() {
		_, err := millracehttp.Client().Get("https://evil.example/")
		require.ErrorIs(t, err, abi.ErrnoDenied)
		var uerr *url.Error
		require.True(t, errors.As(err, &uerr))
		require.Contains(t, err.Error(), "http_send: denied")
	})
}

func TestTransportSkipsCanceledRequests(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	called := false
	h.HTTP = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { called = true })
	h.Run(func() {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		req, err := http.NewRequestWithContext(ctx, "GET", "https://api.example.com/", nil)
		require.NoError(t, err)
		_, err = millracehttp.Transport{}.RoundTrip(req)
		require.ErrorIs(t, err, context.Canceled)
	})
	require.False(t, called)
}
