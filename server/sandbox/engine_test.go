package sandbox_test

import (
	"context"
	"slices"
	"testing"

	"github.com/millrace/millrace/server/sandbox"
	"github.com/stretchr/testify/require"
)

func TestNewEngine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	kinds := sandbox.EngineKinds()
	require.Contains(t, kinds, sandbox.EngineWazero, "wazero is always compiled in")
	require.True(t, slices.IsSorted(kinds))

	e, err := sandbox.NewEngine(ctx, sandbox.EngineConfig{}) // the default
	require.NoError(t, err)
	require.IsType(t, &sandbox.Wazero{}, e)
	require.NoError(t, e.Close(ctx))

	_, err = sandbox.NewEngine(ctx, sandbox.EngineConfig{Kind: "v8"})
	require.ErrorContains(t, err, `unknown sandbox engine "v8": want wazero or wasmtime`)
	require.Error(t, sandbox.CheckEngine("v8"))

	if !slices.Contains(kinds, sandbox.EngineWasmtime) {
		err := sandbox.CheckEngine(sandbox.EngineWasmtime)
		require.EqualError(t, err, "this millrace binary was built without the wasmtime engine; build with -tags wasmtime (needs cgo)")
		_, err = sandbox.NewEngine(ctx, sandbox.EngineConfig{Kind: sandbox.EngineWasmtime})
		require.Error(t, err)
	}
}
