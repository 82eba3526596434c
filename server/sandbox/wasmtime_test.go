//go:build wasmtime && cgo

package sandbox

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/millrace/millrace/abi"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// The wasmtime engine links millrace_v1 with the signatures wazero's
// instantiateHost declares, so a module links on both or on neither.
func TestWasmtimeHostSignatures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	require.NoError(t, instantiateHost(ctx, r))
	defs := r.Module(abi.ImportModule).ExportedFunctionDefinitions()

	require.ElementsMatch(t, slices.Collect(maps.Keys(abi.Functions)), slices.Collect(maps.Keys(hostFuncs)))
	require.Len(t, defs, len(hostFuncs))
	for name, f := range hostFuncs {
		def, ok := defs[name]
		require.True(t, ok, name)
		require.Equal(t, signature(t, def), f.params, name)
		require.Equal(t, []api.ValueType{api.ValueTypeI32}, def.ResultTypes(), name)
	}
}

// The tensor ABI's modules are linked with the same signatures as on
// wazero: every parameter and the result an i32.
func TestWasmtimeLinksTheTensorABI(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	require.NoError(t, instantiateNN(ctx, r))
	for module, names := range map[string]map[string]bool{abi.NNModule: abi.NNFunctions, abi.NNExtModule: abi.NNExtFunctions} {
		defs := r.Module(module).ExportedFunctionDefinitions()
		require.Len(t, defs, len(names), module)
		require.Len(t, nnFuncs[module], len(names), module)
		for _, f := range nnFuncs[module] {
			require.True(t, names[f.name], f.name)
			require.Equal(t, strings.Repeat("i", len(f.params)), signature(t, defs[f.name]), f.name)
		}
	}
}

func TestSliceMemoryIsBoundsChecked(t *testing.T) {
	t.Parallel()
	m := sliceMemory(make([]byte, 16))
	_, ok := m.Read(8, 9)
	require.False(t, ok)
	_, ok = m.Read(0xffffffff, 2)
	require.False(t, ok)
	b, ok := m.Read(8, 8)
	require.True(t, ok)
	require.Len(t, b, 8)
	require.Equal(t, 8, cap(b), "a view cannot be extended past what was asked")
	require.False(t, m.Write(10, make([]byte, 7)))
	require.False(t, m.WriteUint32Le(13, 1))
	require.False(t, m.WriteUint64Le(9, 1))
	require.True(t, m.WriteUint64Le(8, 0x0102030405060708))
	require.Equal(t, []byte{8, 7, 6, 5, 4, 3, 2, 1}, []byte(m[8:]))
}

// A compiled module is written to the cache directory and read back by a
// fresh engine, as after a restart; an entry that is not a module wasmtime
// wrote is compiled afresh.
func TestWasmtimeDiskCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	wasm := oneMemoryPageCommand()
	compile := func() {
		e, err := NewWasmtime(ctx, WasmtimeConfig{CacheDir: dir})
		require.NoError(t, err)
		defer e.Close(ctx)
		m, err := e.Compile(ctx, wasm)
		require.NoError(t, err)
		res := m.Invoke(ctx, &Invocation{Input: json.RawMessage(`{}`), Limits: Limits{MemoryBytes: 1 << 20, Timeout: 10e9, MaxOutputBytes: 1024, MaxLogBytes: 1024}})
		require.Nil(t, res.Failure)
	}
	compile()
	entries, err := filepath.Glob(filepath.Join(dir, "wasmtime-v39", "*.cwasm"))
	require.NoError(t, err)
	require.Len(t, entries, 1)
	info, err := os.Stat(entries[0])
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "compiled code is private to the server")

	compile() // from the cache

	require.NoError(t, os.WriteFile(entries[0], []byte("not a compiled module"), 0o600))
	compile()
	b, err := os.ReadFile(entries[0])
	require.NoError(t, err)
	require.NotEqual(t, "not a compiled module", string(b), "a bad entry is replaced")
}

// oneMemoryPageCommand is the smallest command: an empty _start and one
// page of memory.
func oneMemoryPageCommand() []byte {
	return []byte{
		0, 'a', 's', 'm', 1, 0, 0, 0,
		1, 4, 1, 0x60, 0, 0, // type section: () -> ()
		3, 2, 1, 0, // function section: one function of type 0
		5, 3, 1, 0, 1, // memory section: min 1 page
		7, 19, 2, 6, '_', 's', 't', 'a', 'r', 't', 0, 0, 6, 'm', 'e', 'm', 'o', 'r', 'y', 2, 0, // exports
		10, 4, 1, 2, 0, 0x0b, // code: empty body
	}
}
