package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

// cacheDir is a compilation cache shared by the tests' engines, so each
// module compiles once per test binary rather than once per test.
var cacheDir string

func TestMain(m *testing.M) {
	var err error
	if cacheDir, err = os.MkdirTemp("", "millrace-engine-cache-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(cacheDir)
	testguests.Cleanup()
	os.Exit(code)
}

// catalog installs a few modules into a real registry:
//   - porter@1.0.0: ports yes/no, granted
//   - typed@1.0.0 (echo): inputs {n: integer (required), s: string},
//     no other fields; config {mode: enum a|b}; granted
//   - echo@1.0.0: granted, no schemas
//   - kvuser@1.0.0: requests kv, granted nothing
//   - ungranted@1.0.0: never granted
func catalog(t testing.TB) *registry.Registry {
	t.Helper()
	reg, _ := catalogAndStore(t)
	return reg
}

// catalogAndStore also installs, for execution tests:
//   - flaky@1.0.0 (kv granted), sleeper@1.0.0, panic@1.0.0
func catalogAndStore(t testing.TB) (*registry.Registry, *sqlite.DB) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	eng, err := sandbox.NewWazero(ctx, sandbox.WazeroConfig{CacheDir: cacheDir})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close(context.Background()) })
	reg := registry.New(registry.Config{}, db, eng, nil)
	install := func(guest, manifest string, grant *sandbox.Grant) {
		v, _, err := reg.Upload(ctx, testguests.Wasm(t, guest), []byte(manifest))
		require.NoError(t, err)
		if grant != nil {
			_, err = reg.SetGrant(ctx, v.ModuleID, v.Version, *grant)
			require.NoError(t, err)
		}
	}
	install("porter", `{"abi":1,"id":"porter","name":"P","version":"1.0.0","ports":["yes","no"]}`, &sandbox.Grant{})
	install("echo", `{"abi":1,"id":"typed","name":"T","version":"1.0.0",
		"inputs":{"type":"object","required":["n"],"additionalProperties":false,"properties":{"n":{"type":"integer"},"s":{"type":"string"}}},
		"config":{"type":"object","properties":{"mode":{"enum":["a","b"]}}}}`, &sandbox.Grant{})
	install("echo", `{"abi":1,"id":"echo","name":"E","version":"1.0.0"}`, &sandbox.Grant{})
	install("kvuser", `{"abi":1,"id":"kvuser","name":"K","version":"1.0.0","capabilities":{"kv":true}}`, &sandbox.Grant{})
	install("noop", `{"abi":1,"id":"ungranted","name":"U","version":"1.0.0"}`, nil)
	install("flaky", `{"abi":1,"id":"flaky","name":"F","version":"1.0.0","capabilities":{"kv":true}}`, &sandbox.Grant{Capabilities: abi.Capabilities{KV: true}})
	install("sleeper", `{"abi":1,"id":"sleeper","name":"S","version":"1.0.0","limits":{"timeout_ms":60000}}`, &sandbox.Grant{})
	install("panic", `{"abi":1,"id":"panic","name":"X","version":"1.0.0"}`, &sandbox.Grant{})
	return reg, db
}

const validWorkflow = `{
  "name": "Triage",
  "input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}},
  "nodes": [
    {"id": "decide", "module": "porter@1.0.0", "input": {"fields": {"port": "input.n > 10 ? 'yes' : 'no'"}},
     "retry": {"max_attempts": 3, "backoff_ms": 10}, "on_error": "route"},
    {"id": "big", "module": "typed@1.0.0", "config": {"mode": "a"},
     "input": {"fields": {"n": "input.n", "s": "'big ' + string(nodes.decide.output.port)"}}},
    {"id": "small", "module": "echo@1.0.0"},
    {"id": "failed", "module": "echo@1.0.0"},
    {"id": "join", "module": "echo@1.0.0", "input": {"expression": "{'big': nodes.?big.output, 'small': nodes.?small.output}"}}
  ],
  "edges": [
    {"from": "decide", "port": "yes", "to": "big"},
    {"from": "decide", "port": "no", "to": "small", "when": "output.port == 'no' && input.n >= 0"},
    {"from": "decide", "port": "error", "to": "failed"},
    {"from": "big", "to": "join"},
    {"from": "small", "to": "join"}
  ]
}`

func parse(t *testing.T, doc string) *engine.Definition {
	t.Helper()
	d, err := engine.ParseDefinition([]byte(doc))
	require.NoError(t, err)
	return d
}

func TestValidWorkflow(t *testing.T) {
	t.Parallel()
	require.NoError(t, engine.Validate(context.Background(), parse(t, validWorkflow), catalog(t)))
}

// mutate applies a change to the valid workflow (as generic JSON).
func mutate(t *testing.T, fn func(w map[string]any)) *engine.Definition {
	t.Helper()
	var w map[string]any
	require.NoError(t, json.Unmarshal([]byte(validWorkflow), &w))
	fn(w)
	b, err := json.Marshal(w)
	require.NoError(t, err)
	return parse(t, string(b))
}

func node(w map[string]any, i int) map[string]any { return w["nodes"].([]any)[i].(map[string]any) }
func edge(w map[string]any, i int) map[string]any { return w["edges"].([]any)[i].(map[string]any) }

func TestValidationNamesTheNodeOrEdge(t *testing.T) {
	t.Parallel()
	cat := catalog(t)
	cases := []struct {
		name     string
		change   func(w map[string]any)
		location string
		message  string
	}{
		{"no name", func(w map[string]any) { w["name"] = " " }, "name", "required"},
		{"bad node id", func(w map[string]any) { node(w, 2)["id"] = "Small!" }, "nodes[2].id", "not a valid node id"},
		{"duplicate id", func(w map[string]any) { node(w, 3)["id"] = "small" }, "nodes[3].id", "already the id of nodes[2]"},
		{"reserved id", func(w map[string]any) { node(w, 3)["id"] = "in" }, "nodes[3].id", "reserved word in CEL"},
		{"unknown module", func(w map[string]any) { node(w, 2)["module"] = "nope@1.0.0" }, "nodes[2].module", "not installed"},
		{"unknown version", func(w map[string]any) { node(w, 2)["module"] = "echo@9.9.9" }, "nodes[2].module", "not installed"},
		{"unpinned", func(w map[string]any) { node(w, 2)["module"] = "echo@latest" }, "nodes[2].module", "pin a version"},
		{"malformed module", func(w map[string]any) { node(w, 2)["module"] = "echo" }, "nodes[2].module", "id@version"},
		{"ungranted module", func(w map[string]any) { node(w, 2)["module"] = "ungranted@1.0.0" }, "nodes[2].module", "has no grant"},
		{"grant lacks capability", func(w map[string]any) { node(w, 2)["module"] = "kvuser@1.0.0" }, "nodes[2].module", `"kv" capability`},
		{"config against schema", func(w map[string]any) { node(w, 1)["config"] = map[string]any{"mode": "c"} }, "nodes[1].config.mode", "config schema"},
		{"bad on_error", func(w map[string]any) { node(w, 2)["on_error"] = "ignore" }, "nodes[2].on_error", "not one of"},
		{"retry range", func(w map[string]any) { node(w, 0)["retry"] = map[string]any{"max_attempts": 50} }, "nodes[0].retry.max_attempts", "out of range"},
		{"edge to nowhere", func(w map[string]any) { edge(w, 3)["to"] = "ghost" }, "edges[3].to", `no node has the id "ghost"`},
		{"self loop", func(w map[string]any) { edge(w, 3)["to"] = "big" }, "edges[3]", "cannot lead to itself"},
		{"unknown port", func(w map[string]any) { edge(w, 0)["port"] = "maybe" }, "edges[0].port", `no port "maybe" (it has yes, no, error)`},
		{"error port needs route", func(w map[string]any) { delete(node(w, 0), "on_error") }, "edges[2].port", `"on_error": "route"`},
		{"cycle", func(w map[string]any) {
			w["edges"] = append(w["edges"].([]any), map[string]any{"from": "join", "to": "decide"})
		}, "edges", "cycle: "},
		{"expression does not compile", func(w map[string]any) {
			node(w, 4)["input"] = map[string]any{"expression": "input.n +"}
		}, "nodes[4].input.expression", "does not compile"},
		{"reads a node that is not upstream", func(w map[string]any) {
			node(w, 1)["input"] = map[string]any{"fields": map[string]any{"n": "nodes.small.output.n"}}
		}, "nodes[1].input.fields.n", `not upstream of "big"`},
		{"reads a node that does not exist", func(w map[string]any) {
			node(w, 4)["input"] = map[string]any{"expression": `nodes["ghost"].output`}
		}, "nodes[4].input.expression", "no node has that id"},
		{"both expression and fields", func(w map[string]any) {
			node(w, 4)["input"] = map[string]any{"expression": "1", "fields": map[string]any{"a": "1"}}
		}, "nodes[4].input", "exactly one"},
		{"missing required field", func(w map[string]any) {
			node(w, 1)["input"] = map[string]any{"fields": map[string]any{"s": "'x'"}}
		}, "nodes[1].input.fields", `does not set "n"`},
		{"field the schema forbids", func(w map[string]any) {
			node(w, 1)["input"] = map[string]any{"fields": map[string]any{"n": "1", "extra": "2"}}
		}, "nodes[1].input.fields.extra", "allows no others"},
		{"field of the wrong type", func(w map[string]any) {
			node(w, 1)["input"] = map[string]any{"fields": map[string]any{"n": "'seven'"}}
		}, "nodes[1].input.fields.n", "produces a string, but the module's inputs schema wants integer"},
		{"expression of the wrong type", func(w map[string]any) {
			node(w, 1)["input"] = map[string]any{"expression": "[1, 2]"}
		}, "nodes[1].input.expression", "produces an array, but the module's inputs schema wants object"},
		{"condition not boolean", func(w map[string]any) { edge(w, 1)["when"] = "input.n + 1" }, "edges[1].when", "must be true or false"},
		{"condition reads the future", func(w map[string]any) { edge(w, 1)["when"] = "nodes.join.output == null" }, "edges[1].when", "has not run"},
		{"bad input schema", func(w map[string]any) { w["input_schema"] = map[string]any{"type": 5} }, "input_schema", "not a valid JSON Schema"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := engine.Validate(context.Background(), mutate(t, c.change), cat)
			var ie *engine.InvalidError
			require.True(t, errors.As(err, &ie), "want problems, got %v", err)
			var found []string
			for _, p := range ie.Problems {
				if p.Location == c.location && strings.Contains(p.Message, c.message) {
					return
				}
				found = append(found, p.Location+": "+p.Message)
			}
			t.Fatalf("no problem at %s containing %q; got:\n%s", c.location, c.message, strings.Join(found, "\n"))
		})
	}
}

func TestParseDefinitionIsStrict(t *testing.T) {
	t.Parallel()
	_, err := engine.ParseDefinition([]byte(`{"name":"x","nodes":[{"id":"a","module":"echo@1.0.0","retry":{"max_atempts":2}}]}`))
	var ie *engine.InvalidError
	require.True(t, errors.As(err, &ie))
	require.Equal(t, "nodes[0].retry.max_atempts", ie.Problems[0].Location)
	require.Equal(t, "unknown field", ie.Problems[0].Message)

	_, err = engine.ParseDefinition([]byte(`{"name":"x","nodes":"all of them"}`))
	require.True(t, errors.As(err, &ie))
	require.Equal(t, "nodes", ie.Problems[0].Location)
}

func TestEmptyWorkflow(t *testing.T) {
	t.Parallel()
	err := engine.Validate(context.Background(), parse(t, `{"name":"x","nodes":[]}`), catalog(t))
	require.ErrorContains(t, err, "at least one node")
}

// FuzzDefinition runs hostile workflow documents through the parser and
// the validator: no panic, and every rejection is an *InvalidError.
func FuzzDefinition(f *testing.F) {
	f.Add([]byte(validWorkflow))
	f.Add([]byte(`{"name":"x","nodes":[{"id":"a","module":"echo@1.0.0"},{"id":"b","module":"echo@1.0.0"}],"edges":[{"from":"a","to":"b"},{"from":"b","to":"a"}]}`))
	f.Add([]byte(`{"name":"x","nodes":[{"id":"a","module":"echo@1.0.0","input":{"expression":"nodes[input.k].output"}}]}`))
	f.Add([]byte(`{"name":"x","nodes":[{"id":"a","module":"echo@1.0.0","input":{"fields":{"":"((((((1))))))"}}}]}`))
	cat := catalog(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		d, err := engine.ParseDefinition(doc)
		if err != nil {
			var ie *engine.InvalidError
			if !errors.As(err, &ie) {
				t.Fatalf("parse error is %T: %v", err, err)
			}
			return
		}
		if err := engine.Validate(context.Background(), d, cat); err != nil {
			var ie *engine.InvalidError
			if !errors.As(err, &ie) || len(ie.Problems) == 0 {
				t.Fatalf("validation error is %T: %v", err, err)
			}
		}
	})
}
