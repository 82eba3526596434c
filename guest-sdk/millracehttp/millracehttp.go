// Package millracehttp adapts net/http to the host's http_send function,
// for module code written against http.Client.
//
// It is a package of its own because importing net/http adds about 1.8 MB
// to a module even when nothing of it is used (package initialisation is
// always linked). Modules that do not make HTTP requests, or that use
// millrace.HTTPSend directly, do not pay for it.
package millracehttp

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/millrace/millrace/abi"
	millrace "github.com/millrace/millrace/guest-sdk"
)

// Client returns an http.Client that sends its requests through the host.
// The host follows redirects itself (only to allowed URLs), so the client
// returns redirect responses as they are instead of following them again;
// the host also applies the timeouts. Errors unwrap to abi.Errno values,
// so errors.Is(err, abi.ErrnoDenied) works.
//
// An http.Client links net/http's own transport, which it would use by
// default: about 5 MB more Wasm than calling Transport.RoundTrip directly.
func Client() *http.Client {
	return &http.Client{
		Transport: Transport{},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Transport is an http.RoundTripper that sends each request with
// millrace.HTTPSend. Request bodies are read whole, as http_send takes the
// body in one piece; the host bounds them at 10 MiB.
type Transport struct{}

var _ http.RoundTripper = Transport{}

// RoundTrip sends req through the host and returns its response. A request
// whose context is already done is not sent: a host call cannot be
// interrupted once made.
func (Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		// A RoundTripper must close the body, even on error.
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("http_send: reading the request body: %w", err)
		}
		body = b
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	r, err := millrace.HTTPSend(abi.HTTPRequest{
		Method:  req.Method,
		URL:     req.URL.String(),
		Headers: req.Header,
		Body:    body,
	})
	if err != nil {
		return nil, err
	}
	header := http.Header(r.Headers)
	if header == nil {
		header = http.Header{}
	}
	return &http.Response{
		Status:        strconv.Itoa(r.Status) + " " + http.StatusText(r.Status),
		StatusCode:    r.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(r.Body)),
		ContentLength: int64(len(r.Body)),
		Request:       req,
	}, nil
}
