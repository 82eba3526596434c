package securitytest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSecretLeakThroughRunOutputs: a module granted a secret writes it to
// its output, its logs and its error. Class: credential exposure through
// execution data (n8n's credentials-in-execution-logs reports). The value
// must appear nowhere a viewer can read: the run, its nodes' outputs and
// logs, the errors of a failed run and node. (Unit tests: sandbox TestSecrets and
// TestRedactOutput.)
func TestSecretLeakThroughRunOutputs(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	const value = "sk-live-0123456789abcdef"
	require.NoError(t, s.vault.Put(context.Background(), "API_KEY", []byte(value)))
	s.install(t, "leaker", "secretuser", `,"capabilities":{"secrets":["API_KEY","MISSING"]}`,
		map[string]any{"capabilities": map[string]any{"secrets": []string{"API_KEY", "MISSING"}}}, nil)

	run := s.run(t, "leaker", map[string]any{"name": "API_KEY"})
	require.Equal(t, "succeeded", run["status"], run["error"])
	whole, err := json.Marshal(run)
	require.NoError(t, err)
	require.NotContains(t, string(whole), value, "the run view (output, nodes, logs)")
	require.Contains(t, string(whole), "[redacted]")

	// The webhook's synchronous answer is the run output: masked too.
	call := s.webhook(t, "leaker")
	r := call([]byte(`{"name":"API_KEY"}`), map[string]string{"Content-Type": "application/json"})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	require.NotContains(t, string(r.body), value)

	// Nor through the store's raw rows that the console reads.
	nodes, err := s.db.NodeRuns(context.Background(), run["id"].(string))
	require.NoError(t, err)
	for _, n := range nodes {
		require.NotContains(t, string(n.Output)+string(n.Logs)+n.Error, value)
	}

	// A module that fails with the value in its error message: the run's
	// and the node's errors are masked.
	run = s.run(t, "leaker", map[string]any{"name": "API_KEY", "fail": true})
	require.Equal(t, "failed", run["status"])
	require.Contains(t, run["error"], "the upstream refused the key [redacted]")
	whole, err = json.Marshal(run)
	require.NoError(t, err)
	require.NotContains(t, string(whole), value)
	nodes, err = s.db.NodeRuns(context.Background(), run["id"].(string))
	require.NoError(t, err)
	for _, n := range nodes {
		require.NotContains(t, string(n.Output)+string(n.Logs)+n.Error, value)
	}
	stored, err := s.db.Run(context.Background(), run["id"].(string))
	require.NoError(t, err)
	require.NotContains(t, stored.Error, value)
}

// TestModuleCannotReadHostEnvironmentOrFiles: a hostile module probes the
// environment, /etc/passwd, /proc, the secret key and the database file.
// Class: sandbox escape to host data (CWE-526, CWE-22; the wazero
// directory-mount escape, wazero#2321, is why no folder is mounted).
func TestModuleCannotReadHostEnvironmentOrFiles(t *testing.T) {
	// Not parallel: it sets an environment variable the module must not see.
	t.Setenv("MILLRACE_SECRET_KEY_PROBE", "host-env-value")
	s := newStack(t)
	s.install(t, "snoop", "snoop", "", nil, nil)
	run := s.run(t, "snoop", nil)
	require.Equal(t, "succeeded", run["status"], run["error"])
	out := run["output"].(map[string]any)["n"].(map[string]any)
	require.Empty(t, out["env"], "the module sees no environment variable")
	for path, got := range out["files"].(map[string]any) {
		require.True(t, strings.HasPrefix(got.(string), "error: "), "%s was readable: %.80s", path, got)
	}
	for dir, got := range out["dirs"].(map[string]any) {
		require.True(t, strings.HasPrefix(got.(string), "error: "), "%s was listable: %.80s", dir, got)
	}
	whole, _ := json.Marshal(run)
	require.NotContains(t, string(whole), "host-env-value")
	require.NotContains(t, string(whole), "root:x:0:0")
}

// TestModuleCannotReadAnotherModulesKV: two modules with the kv
// capability; the second asks for the first one's key. Class: broken
// tenant isolation (CWE-639). The namespace is the module id, chosen by
// the host, never by the guest. (Sandbox-level: sandbox TestKV.)
func TestModuleCannotReadAnotherModulesKV(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	kv := map[string]any{"capabilities": map[string]any{"kv": true}}
	s.install(t, "alpha", "kvuser", `,"capabilities":{"kv":true}`, kv, nil)
	s.install(t, "beta", "kvuser", `,"capabilities":{"kv":true}`, kv, nil)
	run := s.run(t, "alpha", map[string]any{"op": "set", "key": "token", "value": "alpha-private"})
	require.Equal(t, "succeeded", run["status"], run["error"])
	for _, key := range []string{"token", "alpha/token", "alpha:token", "../alpha/token", "\x00alpha"} {
		run = s.run(t, "beta", map[string]any{"op": "get", "key": key})
		if run["status"] == "failed" {
			continue // an invalid key is refused outright
		}
		require.Equal(t, false, run["output"].(map[string]any)["n"].(map[string]any)["found"], key)
	}
	run = s.run(t, "alpha", map[string]any{"op": "get", "key": "token"})
	require.Equal(t, "alpha-private", run["output"].(map[string]any)["n"].(map[string]any)["value"])
}
