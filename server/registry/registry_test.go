package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/secrets"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testguests.Cleanup()
	os.Exit(code)
}

type fixture struct {
	reg      *registry.Registry
	db       *sqlite.DB
	cacheDir string
}

func setup(t testing.TB, cfg registry.Config) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	cacheDir := filepath.Join(dir, "cache")
	eng, err := sandbox.NewWazero(ctx, sandbox.WazeroConfig{CacheDir: cacheDir})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close(context.Background()) })
	vault, err := secrets.New(make([]byte, 32), db)
	require.NoError(t, err)
	return &fixture{reg: registry.New(cfg, db, eng, vault), db: db, cacheDir: cacheDir}
}

// manifest returns a minimal valid manifest with overrides.
func manifest(t testing.TB, id, version string, extra map[string]any) []byte {
	t.Helper()
	m := map[string]any{"abi": 1, "id": id, "name": id, "version": version}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func requireKind(t *testing.T, err error, kind registry.Kind, field, msg string) {
	t.Helper()
	require.Error(t, err)
	var re *registry.Error
	require.True(t, errors.As(err, &re), "want *registry.Error, got %T: %v", err, err)
	require.Equal(t, kind, re.Kind, re.Error())
	require.Equal(t, field, re.Field, re.Error())
	require.Contains(t, re.Error(), msg)
}

func TestUploadIsIdempotentAndVersionsAreImmutable(t *testing.T) {
	t.Parallel()
	f, ctx := setup(t, registry.Config{}), context.Background()
	echo := testguests.Wasm(t, "echo")
	v, created, err := f.reg.Upload(ctx, echo, testguests.Manifest(t, "echo"))
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "echo", v.ModuleID)
	require.Len(t, v.SHA256, 64)
	require.Nil(t, v.Grant, "nothing is granted by default")

	_, created, err = f.reg.Upload(ctx, echo, testguests.Manifest(t, "echo"))
	require.NoError(t, err)
	require.False(t, created, "same bytes twice")

	_, _, err = f.reg.Upload(ctx, testguests.Wasm(t, "noop"), testguests.Manifest(t, "echo"))
	requireKind(t, err, registry.KindConflict, "manifest.version", "versions are immutable")
	_, _, err = f.reg.Upload(ctx, echo, manifest(t, "echo", "1.0.0", map[string]any{"description": "changed"}))
	requireKind(t, err, registry.KindConflict, "manifest.version", "another manifest")

	// Versions live side by side; latest follows semantic-version order.
	for _, ver := range []string{"1.10.0", "1.9.0", "2.0.0-rc.1"} {
		_, _, err = f.reg.Upload(ctx, testguests.Wasm(t, "noop"), manifest(t, "echo", ver, nil))
		require.NoError(t, err)
	}
	latest, err := f.reg.Get(ctx, "echo", "latest")
	require.NoError(t, err)
	require.Equal(t, "2.0.0-rc.1", latest.Version)
	list, err := f.reg.List(ctx, "echo")
	require.NoError(t, err)
	var order []string
	for _, v := range list {
		order = append(order, v.Version)
	}
	require.Equal(t, []string{"1.0.0", "1.9.0", "1.10.0", "2.0.0-rc.1"}, order)

	require.NoError(t, f.reg.Delete(ctx, "echo", "1.9.0"))
	_, err = f.reg.Get(ctx, "echo", "1.9.0")
	requireKind(t, err, registry.KindNotFound, "version", "no version")
	require.NoError(t, f.reg.Delete(ctx, "echo", ""))
	_, err = f.reg.List(ctx, "echo")
	requireKind(t, err, registry.KindNotFound, "id", "does not exist")
}

func TestUploadWithEmbeddedManifest(t *testing.T) {
	t.Parallel()
	f, ctx := setup(t, registry.Config{}), context.Background()
	packed := abi.AppendManifestSection(testguests.Wasm(t, "noop"), manifest(t, "packed", "0.1.0", nil))
	v, created, err := f.reg.Upload(ctx, packed, nil)
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, "packed", v.ModuleID)

	_, _, err = f.reg.Upload(ctx, testguests.Wasm(t, "noop"), nil)
	requireKind(t, err, registry.KindInvalid, "manifest", "no manifest")

	bad := abi.AppendManifestSection(testguests.Wasm(t, "noop"), []byte(`{"abi":1,"id":"x","bogus":1}`))
	_, _, err = f.reg.Upload(ctx, bad, nil)
	requireKind(t, err, registry.KindInvalid, "wasm[custom section millrace.manifest].bogus", "unknown field")
}

func TestUploadRejections(t *testing.T) {
	t.Parallel()
	f, ctx := setup(t, registry.Config{MaxModuleBytes: 8 << 20}), context.Background()
	noop := testguests.Wasm(t, "noop")
	cases := []struct {
		name            string
		wasm, manifest  []byte
		kind            registry.Kind
		field, contains string
	}{
		{"not wasm", []byte("MZ\x90\x00"), manifest(t, "a", "1.0.0", nil), registry.KindInvalid, "wasm", "not a WebAssembly binary"},
		{"unknown manifest field", noop, manifest(t, "a", "1.0.0", map[string]any{"colour": "red"}), registry.KindInvalid, "manifest.colour", "unknown field"},
		{"malformed manifest", noop, []byte(`{"abi":1,`), registry.KindInvalid, "manifest", "not valid JSON"},
		{"ungranted import", testguests.Wasm(t, "kvuser"), manifest(t, "a", "1.0.0", nil), registry.KindInvalid, "wasm", `import millrace_v1.kv_`},
		{"too large", make([]byte, 9<<20), manifest(t, "a", "1.0.0", nil), registry.KindTooLarge, "wasm", "limit is 8388608"},
		{"bad schema", noop, manifest(t, "a", "1.0.0", map[string]any{"inputs": map[string]any{"type": 12}}), registry.KindInvalid, "manifest.inputs", "not a valid JSON Schema"},
		{"schema reading files", noop, manifest(t, "a", "1.0.0", map[string]any{"inputs": map[string]any{"$ref": "file:///etc/passwd"}}), registry.KindInvalid, "manifest.inputs", "not a valid JSON Schema"},
		{"limit over server max", noop, manifest(t, "a", "1.0.0", map[string]any{"limits": map[string]any{"memory_mb": 4000}}), registry.KindInvalid, "manifest.limits.memory_mb", "maximum of 1024"},
		{"too little memory to start", noop, manifest(t, "a", "1.0.0", map[string]any{"limits": map[string]any{"memory_mb": 1}}), registry.KindInvalid, "manifest.limits.memory_mb", "needs"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := f.reg.Upload(ctx, c.wasm, c.manifest)
			requireKind(t, err, c.kind, c.field, c.contains)
		})
	}
}

func TestGrantsMayNarrowNeverWiden(t *testing.T) {
	t.Parallel()
	f, ctx := setup(t, registry.Config{}), context.Background()
	caps := map[string]any{"kv": true, "secrets": []string{"A", "B"}, "allowed_outbound_hosts": []string{"https://*.example.com", "http://127.0.0.1:8080"}}
	_, _, err := f.reg.Upload(ctx, testguests.Wasm(t, "noop"), manifest(t, "g", "1.0.0", map[string]any{"capabilities": caps}))
	require.NoError(t, err)

	narrow := sandbox.Grant{Capabilities: abi.Capabilities{KV: true, Secrets: []string{"A"}, AllowedOutboundHosts: []string{"https://api.example.com"}}, Limits: abi.Limits{TimeoutMS: 500}}
	v, err := f.reg.SetGrant(ctx, "g", "1.0.0", narrow)
	require.NoError(t, err)
	require.Equal(t, narrow, *v.Grant)

	cases := []struct {
		name  string
		grant sandbox.Grant
		field string
	}{
		{"wider host", sandbox.Grant{Capabilities: abi.Capabilities{AllowedOutboundHosts: []string{"https://*"}}}, "capabilities.allowed_outbound_hosts[0]"},
		{"apex of wildcard", sandbox.Grant{Capabilities: abi.Capabilities{AllowedOutboundHosts: []string{"https://example.com"}}}, "capabilities.allowed_outbound_hosts[0]"},
		{"other port", sandbox.Grant{Capabilities: abi.Capabilities{AllowedOutboundHosts: []string{"http://127.0.0.1:9090"}}}, "capabilities.allowed_outbound_hosts[0]"},
		{"unrequested secret", sandbox.Grant{Capabilities: abi.Capabilities{Secrets: []string{"A", "C"}}}, "capabilities.secrets[1]"},
		{"limit over max", sandbox.Grant{Limits: abi.Limits{MemoryMB: 2048}}, "limits.memory_mb"},
		{"malformed host", sandbox.Grant{Capabilities: abi.Capabilities{AllowedOutboundHosts: []string{"example.com"}}}, "capabilities.allowed_outbound_hosts[0]"},
	}
	for _, c := range cases {
		_, err := f.reg.SetGrant(ctx, "g", "1.0.0", c.grant)
		requireKind(t, err, registry.KindInvalid, c.field, "")
	}
	_, _, err = f.reg.Upload(ctx, testguests.Wasm(t, "noop"), manifest(t, "nokv", "1.0.0", nil))
	require.NoError(t, err)
	_, err = f.reg.SetGrant(ctx, "nokv", "1.0.0", sandbox.Grant{Capabilities: abi.Capabilities{KV: true}})
	requireKind(t, err, registry.KindInvalid, "capabilities.kv", "does not request kv")

	// Model grants within a requested pattern: names it matches and
	// narrower patterns, nothing wider.
	_, _, err = f.reg.Upload(ctx, testguests.Wasm(t, "noop"), manifest(t, "models", "1.0.0", map[string]any{
		"capabilities": map[string]any{"accel": map[string]any{"models": []string{"*classifier*", "sdxl"}}}}))
	require.NoError(t, err)
	for _, models := range [][]string{{"my-classifier"}, {"spam-classifier-*", "sdxl"}, {"*classifier*"}} {
		_, err = f.reg.SetGrant(ctx, "models", "1.0.0", sandbox.Grant{Capabilities: abi.Capabilities{Accel: &abi.Accel{Models: models}}})
		require.NoError(t, err, "%q", models)
	}
	for _, models := range [][]string{{"*"}, {"my-model"}, {"sdxl-*"}, {"classifier", "*-model"}} {
		_, err = f.reg.SetGrant(ctx, "models", "1.0.0", sandbox.Grant{Capabilities: abi.Capabilities{Accel: &abi.Accel{Models: models}}})
		requireKind(t, err, registry.KindInvalid, fmt.Sprintf("capabilities.accel.models[%d]", len(models)-1), "does not request model")
	}
}

func TestInvoke(t *testing.T) {
	t.Parallel()
	f, ctx := setup(t, registry.Config{}), context.Background()
	schema := map[string]any{"type": "object", "required": []string{"name"}, "properties": map[string]any{"name": map[string]any{"type": "string", "maxLength": 5}}}
	_, _, err := f.reg.Upload(ctx, testguests.Wasm(t, "echo"), manifest(t, "greeter", "1.0.0", map[string]any{"inputs": schema}))
	require.NoError(t, err)

	req := registry.InvokeRequest{ModuleID: "greeter", Version: "latest", Input: json.RawMessage(`{"name":"Ada"}`)}
	_, _, err = f.reg.Invoke(ctx, req)
	requireKind(t, err, registry.KindNotGranted, "", "has no grant yet")

	_, err = f.reg.SetGrant(ctx, "greeter", "1.0.0", sandbox.Grant{})
	require.NoError(t, err)
	res, v, err := f.reg.Invoke(ctx, req)
	require.NoError(t, err)
	require.Nil(t, res.Failure)
	require.Equal(t, "1.0.0", v.Version)
	require.JSONEq(t, `{"name":"Ada"}`, string(res.Output))

	req.Input = json.RawMessage(`{"name":"Adalbert"}`)
	_, _, err = f.reg.Invoke(ctx, req)
	requireKind(t, err, registry.KindInvalid, "input.name", "maxLength")
	req.Input = json.RawMessage(`{}`)
	_, _, err = f.reg.Invoke(ctx, req)
	requireKind(t, err, registry.KindInvalid, "input", "name")

	_, _, err = f.reg.Invoke(ctx, registry.InvokeRequest{ModuleID: "nope", Version: "1.0.0"})
	requireKind(t, err, registry.KindNotFound, "version", "")
}

func TestGrantLimitsApply(t *testing.T) {
	t.Parallel()
	f, ctx := setup(t, registry.Config{}), context.Background()
	_, _, err := f.reg.Upload(ctx, testguests.Wasm(t, "sleeper"), manifest(t, "sleepy", "1.0.0", map[string]any{"limits": map[string]any{"timeout_ms": 60000}}))
	require.NoError(t, err)
	_, err = f.reg.SetGrant(ctx, "sleepy", "1.0.0", sandbox.Grant{Limits: abi.Limits{TimeoutMS: 100}})
	require.NoError(t, err)
	res, _, err := f.reg.Invoke(ctx, registry.InvokeRequest{ModuleID: "sleepy", Version: "1.0.0", Input: json.RawMessage(`{"ms":5000}`)})
	require.NoError(t, err)
	require.NotNil(t, res.Failure)
	require.Equal(t, sandbox.FailTimeout, res.Failure.Kind)
	require.Contains(t, res.Failure.Message, "timeout_ms (100 ms)", "the grant's 100 ms wins over the manifest's 60 s")
}

func TestMemoryBudgetQueuesAndRefuses(t *testing.T) {
	t.Parallel()
	f, ctx := setup(t, registry.Config{MemoryBudgetMB: 1024, QueueTimeout: 200 * time.Millisecond}), context.Background()
	_, _, err := f.reg.Upload(ctx, testguests.Wasm(t, "sleeper"), manifest(t, "big", "1.0.0", map[string]any{"limits": map[string]any{"memory_mb": 1024}}))
	require.NoError(t, err)
	_, err = f.reg.GrantAsRequested(ctx, "big", "1.0.0")
	require.NoError(t, err)

	var wg sync.WaitGroup
	started := make(chan struct{})
	wg.Go(func() {
		close(started)
		res, _, err := f.reg.Invoke(ctx, registry.InvokeRequest{ModuleID: "big", Version: "1.0.0", Input: json.RawMessage(`{"ms":1500}`)})
		require.NoError(t, err)
		require.Nil(t, res.Failure)
	})
	<-started
	time.Sleep(300 * time.Millisecond) // let the first take the whole budget
	_, _, err = f.reg.Invoke(ctx, registry.InvokeRequest{ModuleID: "big", Version: "1.0.0", Input: json.RawMessage(`{"ms":1}`)})
	requireKind(t, err, registry.KindBusy, "", "memory budget")
	wg.Wait()
}

func TestCompiledCodeIsCachedOnDisk(t *testing.T) {
	t.Parallel()
	f, ctx := setup(t, registry.Config{}), context.Background()
	_, _, err := f.reg.Upload(ctx, testguests.Wasm(t, "echo"), testguests.Manifest(t, "echo"))
	require.NoError(t, err)
	before := countFiles(t, f.cacheDir)
	require.Positive(t, before, "compiling at upload fills the disk cache")

	// A restarted server: new engine and registry on the same cache and database.
	eng, err := sandbox.NewWazero(ctx, sandbox.WazeroConfig{CacheDir: f.cacheDir})
	require.NoError(t, err)
	defer eng.Close(ctx)
	reg := registry.New(registry.Config{}, f.db, eng, nil)
	require.NoError(t, reg.Warm(ctx))
	require.Equal(t, before, countFiles(t, f.cacheDir), "the restart compiled nothing new")
	_, err = reg.GrantAsRequested(ctx, "echo", "1.0.0")
	require.NoError(t, err)
	res, _, err := reg.Invoke(ctx, registry.InvokeRequest{ModuleID: "echo", Version: "1.0.0", Input: json.RawMessage(`"hi"`)})
	require.NoError(t, err)
	require.Nil(t, res.Failure)
	require.Equal(t, `"hi"`, strings.TrimSpace(string(res.Output)))
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	require.NoError(t, filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	}))
	return n
}

// FuzzUpload runs the whole upload validator on arbitrary module bytes and
// manifests: it must answer with a *registry.Error (never panic, never an
// untyped error) unless the upload is valid.
func FuzzUpload(f *testing.F) {
	f.Add([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, []byte(`{"abi":1,"id":"a","name":"a","version":"1.0.0"}`))
	f.Add([]byte("garbage"), []byte(`{}`))
	f.Add(abi.AppendManifestSection([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, []byte(`{"abi":1}`)), []byte(nil))
	f.Add([]byte{0, 'a', 's', 'm', 1, 0, 0, 0, 2, 6, 1, 1, 'e', 1, 'f', 0}, []byte(`{"abi":1,"id":"a","name":"a","version":"1.0.0","capabilities":{"kv":true}}`))
	fx := setup(f, registry.Config{MaxModuleBytes: 1 << 16})
	f.Fuzz(func(t *testing.T, wasm, manifest []byte) {
		_, _, err := fx.reg.Upload(context.Background(), wasm, manifest)
		if err == nil {
			return
		}
		var re *registry.Error
		if !errors.As(err, &re) {
			t.Fatalf("untyped error %T: %v", err, err)
		}
	})
}
