package securitytest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"testing"

	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/stretchr/testify/require"
)

// passwdMarker is what /etc/passwd (or any Unix password file) holds; no
// response may ever contain it.
const passwdMarker = "root:x:0:0"

// TestExpressionInjectionThroughCEL: mappings and edge conditions that try
// to reach the host as the expressions behind n8n's CVE-2025-68613 (and
// the template injections of other automation servers) did: process and
// environment objects, constructor chains, file reads, n8n's own $env.
// CEL has no such functions or objects: every one is refused when the
// workflow is saved, naming where. Data is never evaluated: a webhook body
// that looks like an expression stays a string.
func TestExpressionInjectionThroughCEL(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.install(t, "echo", "echo", "", nil, nil)
	for _, expr := range []string{
		`process.env`,
		`this.constructor.constructor("return process")().mainModule.require("child_process")`,
		`env("HOME")`,
		`readFile("/etc/passwd")`,
		`{{ $env.HOME }}`,
		`$env["MILLRACE_SECRET_KEY"]`,
		`os.getenv("HOME")`,
		`import("fs")`,
		`dyn(input).exec("id")`,
	} {
		wf := map[string]any{"name": "x", "nodes": []any{map[string]any{"id": "n", "module": "echo@1.0.0", "input": map[string]any{"expression": expr}}}}
		r := s.json(t, http.MethodPut, "/v1/workflows/inject", wf)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", expr, r.body)
		require.Contains(t, string(r.body), "nodes[0].input.expression", expr)
		wf = map[string]any{"name": "x", "nodes": []any{map[string]any{"id": "a", "module": "echo@1.0.0"}, map[string]any{"id": "b", "module": "echo@1.0.0"}},
			"edges": []any{map[string]any{"from": "a", "to": "b", "when": expr}}}
		r = s.json(t, http.MethodPut, "/v1/workflows/inject", wf)
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", expr, r.body)
		require.Contains(t, string(r.body), "edges[0].when", expr)
	}

	// Prototype walking compiles (input is dynamic data) but finds only
	// data: a map has no __proto__ key, so the run fails, naming it.
	wf := map[string]any{"name": "proto", "nodes": []any{map[string]any{"id": "n", "module": "echo@1.0.0", "input": map[string]any{"expression": `input.__proto__.constructor`}}}}
	require.Equal(t, http.StatusOK, s.json(t, http.MethodPut, "/v1/workflows/proto", wf).status)
	require.Equal(t, http.StatusCreated, s.json(t, http.MethodPost, "/v1/workflows/proto/publish", nil).status)
	run := s.run(t, "proto", map[string]any{"a": 1})
	require.Equal(t, "failed", run["status"])
	require.Contains(t, fmt.Sprint(run["error"]), "__proto__")

	// User data that looks like an expression is data.
	wf = map[string]any{"name": "greet", "nodes": []any{map[string]any{"id": "n", "module": "echo@1.0.0",
		"input": map[string]any{"fields": map[string]any{"greeting": `"hello " + input.name`}}}}}
	require.Equal(t, http.StatusOK, s.json(t, http.MethodPut, "/v1/workflows/greet", wf).status)
	require.Equal(t, http.StatusCreated, s.json(t, http.MethodPost, "/v1/workflows/greet/publish", nil).status)
	call := s.webhook(t, "greet")
	for _, payload := range []string{`{{ $env.HOME }}`, `" + env("HOME") + "`, `${process.env.HOME}`, `#{7*7}`} {
		body, _ := json.Marshal(map[string]any{"name": payload})
		r := call(body, map[string]string{"Content-Type": "application/json"})
		require.Equal(t, http.StatusOK, r.status, string(r.body))
		var got struct {
			Output map[string]map[string]string `json:"output"`
		}
		require.NoError(t, json.Unmarshal(r.body, &got), string(r.body))
		require.Equal(t, "hello "+payload, got.Output["n"]["greeting"])
	}

	// An expression that would run for ever is cut by CEL's cost limit:
	// the run fails, naming the node, instead of pinning a CPU.
	wf = map[string]any{"name": "burn", "nodes": []any{map[string]any{"id": "n", "module": "echo@1.0.0", "input": map[string]any{
		"expression": `lists.range(3000).map(a, lists.range(3000).map(b, lists.range(3000).map(c, a + b + c)))`}}}}
	r := s.json(t, http.MethodPut, "/v1/workflows/burn", wf)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.Equal(t, http.StatusCreated, s.json(t, http.MethodPost, "/v1/workflows/burn/publish", nil).status)
	run = s.run(t, "burn", nil)
	require.Equal(t, "failed", run["status"])
	require.Contains(t, strings.ToLower(fmt.Sprint(run["error"])), "cost")
}

// TestUploadContentTypeConfusion: uploads that try to make the server read
// one of its own files: a multipart part named /etc/passwd or ../../,
// a JSON body naming a path where bytes are expected, a part that claims
// another content type. Class: CVE-2026-21858 (n8n "Ni8mare": a webhook
// form upload whose JSON body claimed a file path the server then read).
// The server only ever stores the bytes sent; names are never opened.
func TestUploadContentTypeConfusion(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	echo := testguests.Wasm(t, "echo")
	manifest := `{"abi":1,"id":"conf","name":"conf","version":"1.0.0"}`
	upload := func(fileName, contentType string, wasm []byte) response {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="wasm"; filename=%q`, fileName))
		h.Set("Content-Type", contentType)
		w, _ := mw.CreatePart(h)
		w.Write(wasm)
		w, _ = mw.CreateFormFile("manifest", "manifest.json")
		w.Write([]byte(manifest))
		require.NoError(t, mw.Close())
		return s.do(t, s.admin, http.MethodPost, "/v1/modules", &buf, map[string]string{"Content-Type": mw.FormDataContentType()})
	}
	for _, name := range []string{"/etc/passwd", "../../../../etc/passwd", "file:///etc/passwd"} {
		r := upload(name, "text/plain", []byte("/etc/passwd"))
		require.Equal(t, http.StatusUnprocessableEntity, r.status, "%s: %s", name, r.body)
		require.NotContains(t, string(r.body), passwdMarker)
	}
	r := upload("/etc/passwd", "application/json", echo)
	require.Equal(t, http.StatusCreated, r.status, "the part's bytes are the module, whatever its name: %s", r.body)

	// A JSON body that names files instead of carrying them.
	for _, body := range []string{`{"wasm":"/etc/passwd","manifest":"/etc/passwd"}`, `{"files":{"wasm":{"filepath":"/etc/passwd"}}}`} {
		r := s.do(t, s.admin, http.MethodPost, "/v1/modules", strings.NewReader(body), map[string]string{"Content-Type": "application/json"})
		require.GreaterOrEqual(t, r.status, 400, body)
		require.Less(t, r.status, 500, body)
		require.NotContains(t, string(r.body), passwdMarker)
	}

	// A webhook takes its body as data, whatever it claims to be.
	s.install(t, "hook", "echo", "", nil, nil)
	call := s.webhook(t, "hook")
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	w, _ := mw.CreateFormFile("file", "/etc/passwd")
	w.Write([]byte("not the file"))
	mw.Close()
	for _, tc := range []struct{ body, contentType string }{
		{`{"files":{"file":{"filepath":"/etc/passwd","mimetype":"text/plain"}}}`, "application/json"},
		{`{"$ref":"file:///etc/passwd"}`, "application/json"},
		{form.String(), mw.FormDataContentType()},
		{"file=@/etc/passwd", "application/x-www-form-urlencoded"},
		{"/etc/passwd", "text/plain"},
	} {
		r := call([]byte(tc.body), map[string]string{"Content-Type": tc.contentType})
		require.NotContains(t, string(r.body), passwdMarker, tc.body)
		require.Less(t, r.status, 500, "%s: %s", tc.body, r.body)
	}
}

// TestPathTraversalInRequests: ids and names that climb out of where the
// server looks (CWE-22), raw and percent-encoded, on every route that
// takes a name. Archive entries are the other half of this class: the
// backup reader refuses zip-slip entries (backup.TestRestoreRefuses,
// "zip-slip …" cases, and FuzzUnpackArchive).
func TestPathTraversalInRequests(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	for _, path := range []string{
		"/v1/runs/..%2F..%2F..%2Fetc%2Fpasswd",
		"/v1/runs/x/artifacts/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
		"/v1/modules/..%2F..%2Fetc%2Fpasswd",
		"/v1/modules/x/versions/..%2F..%2Fetc%2Fpasswd",
		"/v1/workflows/..%2Fmillrace.db",
		"/v1/backups/..%2Fsecret.key",
		"/v1/backups/%2E%2E%2Fsecret.key",
		"/docs/../../../../etc/passwd",
		"/docs/..%2F..%2F..%2Fetc%2Fpasswd",
		"/hooks/..%2F..%2Fsecret.key",
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			r := s.do(t, s.admin, method, path, strings.NewReader("{}"), map[string]string{"Content-Type": "application/json"})
			// A GET outside the API that no route takes is a console
			// route: the answer is the console's page, never a file.
			if r.status == http.StatusOK && method == http.MethodGet && !strings.HasPrefix(path, "/v1/") {
				require.True(t, strings.HasPrefix(r.header.Get("Content-Type"), "text/html"), "%s %s answered %s", method, path, r.header.Get("Content-Type"))
				require.Contains(t, string(r.body), `<div id="root">`, "%s %s answered 200 with something other than the console", method, path)
			} else {
				require.GreaterOrEqual(t, r.status, 300, "%s %s answered %d", method, path, r.status)
			}
			require.Less(t, r.status, 500, "%s %s: %s", method, path, r.body)
			require.NotContains(t, string(r.body), passwdMarker)
			key, _ := readFile(s.dir + "/secret.key")
			require.NotContains(t, string(r.body), strings.TrimSpace(key), "%s %s", method, path)
		}
	}
}

// TestDecompressionBombs: request bodies that are small on the wire and
// huge inflated (CWE-409). The server never inflates request bodies: a
// gzip-encoded JSON body is refused as not JSON, never expanded; the body
// limit counts wire bytes. (The HTTP capability never inflates responses
// either: egress sets DisableCompression, tested in TestSSRF… below with a
// gzip response.)
func TestDecompressionBombs(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.install(t, "hook", "echo", "", nil, nil)
	call := s.webhook(t, "hook")
	bomb := gzipBomb(t, 256<<20) // 256 MiB of zeros in about 250 KiB
	for _, tc := range []struct {
		name string
		do   func() response
	}{
		{"save workflow", func() response {
			return s.do(t, s.admin, http.MethodPut, "/v1/workflows/bomb", bytes.NewReader(bomb), map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"})
		}},
		{"start run", func() response {
			return s.do(t, s.admin, http.MethodPost, "/v1/workflows/hook/runs", bytes.NewReader(bomb), map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"})
		}},
		{"webhook", func() response {
			return call(bomb, map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"})
		}},
		{"module upload", func() response {
			return s.do(t, s.admin, http.MethodPost, "/v1/modules", bytes.NewReader(bomb), map[string]string{"Content-Type": "application/gzip", "Content-Encoding": "gzip"})
		}},
	} {
		r := tc.do()
		require.GreaterOrEqual(t, r.status, 400, "%s: %s", tc.name, r.body)
		require.Less(t, r.status, 500, "%s: %s", tc.name, r.body)
	}
}

// TestTokenReuseAfterRevocation: a revoked API token is refused at once,
// on every route (CWE-613). The auth package tests sessions and roles;
// this is the cross-reference through the HTTP API.
func TestTokenReuseAfterRevocation(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	r := s.json(t, http.MethodPost, "/v1/tokens", map[string]any{"name": "ci", "scopes": []string{auth.ScopeWorkflowsRead}})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	created := r.json(t)
	token, id := created["token"].(string), created["id"].(string)
	require.Equal(t, http.StatusOK, s.do(t, token, http.MethodGet, "/v1/workflows", nil, nil).status)
	require.Equal(t, http.StatusNoContent, s.json(t, http.MethodDelete, "/v1/tokens/"+id, nil).status)
	for _, path := range []string{"/v1/workflows", "/v1/runs", "/v1/modules"} {
		r := s.do(t, token, http.MethodGet, path, nil, nil)
		require.Equal(t, http.StatusUnauthorized, r.status, path)
	}
	_, err := s.tokens.Verify(context.Background(), "Bearer "+token)
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
}

// gzipBomb compresses n zero bytes.
func gzipBomb(t *testing.T, n int) []byte {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	require.NoError(t, err)
	zeros := make([]byte, 1<<20)
	for i := 0; i < n; i += len(zeros) {
		_, err := zw.Write(zeros)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
