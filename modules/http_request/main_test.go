//go:build !wasip1

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/guest-sdk/millracetest"
	"github.com/millrace/millrace/modules/internal/moduletest"
)

func TestManifest(t *testing.T) {
	t.Parallel()
	m := moduletest.Manifest(t)
	require.Equal(t, []string{"https://*:*", "http://*:*"}, m.Capabilities.AllowedOutboundHosts)
}

// received is what the test server saw of a request.
type received struct {
	Method, Path, ContentType, Token, Body string
}

func newHost(t *testing.T) *millracetest.Host {
	h := millracetest.NewHost()
	h.Grants = &moduletest.Manifest(t).Capabilities
	h.HTTP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/text":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Add("X-Multi", "first")
			w.Header().Add("X-Multi", "second")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "not here")
		case "/badjson":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, "{oops")
		default:
			w.Header().Set("Content-Type", "application/problem+json; charset=utf-8")
			json.NewEncoder(w).Encode(received{
				Method: r.Method, Path: r.URL.RequestURI(), ContentType: r.Header.Get("Content-Type"),
				Token: r.Header.Get("Authorization"), Body: string(body),
			})
		}
	})
	return h
}

func TestJSONRequest(t *testing.T) {
	t.Parallel()
	out, err := millracetest.Call(newHost(t), run, input{
		Method:  "post",
		URL:     "https://api.example.com/v1/items?x=1",
		Headers: map[string]string{"Authorization": "Bearer t"},
		JSON:    json.RawMessage(`{"a": [1, 2]}`),
	})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, out.Status)
	require.Equal(t, "application/problem+json; charset=utf-8", out.Headers["Content-Type"])
	var got received
	require.NoError(t, json.Unmarshal(out.JSON, &got))
	require.Equal(t, received{Method: "POST", Path: "/v1/items?x=1", ContentType: "application/json", Token: "Bearer t", Body: `{"a":[1,2]}`}, got)
	require.JSONEq(t, out.Body, string(out.JSON))
}

func TestTextRequest(t *testing.T) {
	t.Parallel()
	out, err := millracetest.Call(newHost(t), run, input{
		Method:  "PUT",
		URL:     "http://example.com/body",
		Headers: map[string]string{"Content-Type": "text/csv"},
		Body:    "a,b",
	})
	require.NoError(t, err)
	var got received
	require.NoError(t, json.Unmarshal(out.JSON, &got))
	require.Equal(t, received{Method: "PUT", Path: "/body", ContentType: "text/csv", Body: "a,b"}, got)

	out, err = millracetest.Call(newHost(t), run, input{URL: "http://example.com/", Body: "x"})
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(out.JSON, &got))
	require.Equal(t, "POST", got.Method, "a body without a method means POST")

	out, err = millracetest.Call(newHost(t), run, input{URL: "http://example.com/"})
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(out.JSON, &got))
	require.Equal(t, "GET", got.Method)

	out, err = millracetest.Call(newHost(t), run, input{URL: "http://example.com/text"})
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, out.Status, "an HTTP error status is not a failure")
	require.Equal(t, "not here", out.Body)
	require.Equal(t, "first", out.Headers["X-Multi"])
	require.Nil(t, out.JSON)

	out, err = millracetest.Call(newHost(t), run, input{URL: "http://example.com/badjson"})
	require.NoError(t, err)
	require.Equal(t, "{oops", out.Body)
	require.Nil(t, out.JSON)
}

func TestRequestErrors(t *testing.T) {
	t.Parallel()
	_, err := millracetest.Call(newHost(t), run, input{})
	require.EqualError(t, err, "input: url is required")

	_, err = millracetest.Call(newHost(t), run, input{URL: "https://x.example/", Body: "a", JSON: json.RawMessage(`1`)})
	require.EqualError(t, err, "input: give body or json, not both")

	_, err = millracetest.Call(newHost(t), run, input{URL: "https://x.example/", Method: "BAD METHOD"})
	require.ErrorContains(t, err, "input: ")

	h := newHost(t)
	h.Grants = &abi.Capabilities{AllowedOutboundHosts: []string{"https://api.example.com"}}
	_, err = millracetest.Call(h, run, input{URL: "https://other.example.com/"})
	require.ErrorContains(t, err, "http_send: denied")
	require.Empty(t, h.Logs)
}
