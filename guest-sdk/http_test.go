//go:build !wasip1

package millrace_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/abi"
	millrace "github.com/millrace/millrace/guest-sdk"
	"github.com/millrace/millrace/guest-sdk/millracetest"
)

func TestHTTPSend(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Method", r.Method)
		w.Header().Set("X-Path", r.URL.RequestURI())
		w.WriteHeader(http.StatusTeapot)
		w.Write(body)
	})
	h.Run(func() {
		resp, err := millrace.HTTPSend(abi.HTTPRequest{URL: "http://example.com/a?b=c", Body: []byte{0, 1, 2}})
		require.NoError(t, err)
		require.Equal(t, http.StatusTeapot, resp.Status)
		require.Equal(t, []string{"GET"}, resp.Headers["X-Method"])
		require.Equal(t, []string{"/a?b=c"}, resp.Headers["X-Path"])
		require.Equal(t, []byte{0, 1, 2}, resp.Body)
	})
}

func TestHTTPSendDeniedAndFailures(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Grants = &abi.Capabilities{AllowedOutboundHosts: []string{"https://*.example.com", "http://localhost:8080"}}
	h.Run(func() {
		// Allowed hosts, but no server: a connection failure.
		_, err := millrace.HTTPSend(abi.HTTPRequest{URL: "https://api.example.com/"})
		require.ErrorIs(t, err, abi.ErrnoIO)
		_, err = millrace.HTTPSend(abi.HTTPRequest{URL: "http://localhost:8080/"})
		require.ErrorIs(t, err, abi.ErrnoIO)

		for _, u := range []string{
			"https://example.com/",          // *.example.com excludes example.com itself
			"http://api.example.com/",       // wrong scheme
			"https://api.example.com:8443/", // wrong port
			"http://localhost/",
		} {
			_, err = millrace.HTTPSend(abi.HTTPRequest{URL: u})
			require.ErrorIs(t, err, abi.ErrnoDenied, u)
			require.EqualError(t, err, "http_send: denied")
		}
		_, err = millrace.HTTPSend(abi.HTTPRequest{URL: "https://user:pw@api.example.com/"})
		require.ErrorIs(t, err, abi.ErrnoInvalidArgument)
	})
}
