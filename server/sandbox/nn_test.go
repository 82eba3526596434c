package sandbox_test

import (
	"context"
	"testing"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/stretchr/testify/require"
)

// The tensor ABI's import modules belong to the accel capability: a
// module importing them needs a manifest that requests a model. (Its
// host functions, run on the real accelerator, are tested in
// server/accel.)
func TestCheckImportsTensorABI(t *testing.T) {
	t.Parallel()
	imports := []sandbox.Import{
		{Module: abi.NNModule, Name: abi.FnNNLoadByName},
		{Module: abi.NNExtModule, Name: abi.FnNNExtOutputShape},
	}
	require.Equal(t, []abi.Capability{abi.CapAccel}, sandbox.RequiredCapabilities(imports))
	err := sandbox.CheckImports(imports, abi.Capabilities{KV: true})
	require.ErrorContains(t, err, "import wasi_ephemeral_nn.load_by_name")
	require.ErrorContains(t, err, `needs the "accel" capability, which the manifest does not request: add "accel": {"models": [...]}`)
	require.Error(t, sandbox.CheckImports(imports, abi.Capabilities{Accel: &abi.Accel{}}), "an accel request without models requests nothing")
	require.NoError(t, sandbox.CheckImports(imports, abi.Capabilities{Accel: &abi.Accel{Models: []string{"arith"}}}))

	accel := abi.Capabilities{Accel: &abi.Accel{Models: []string{"arith"}}}
	for _, bad := range []sandbox.Import{
		{Module: abi.NNModule, Name: "load_by_name_with_config"},
		{Module: abi.NNExtModule, Name: "launch"},
	} {
		require.ErrorContains(t, sandbox.CheckImports([]sandbox.Import{bad}, accel), "import "+bad.String()+": is not a function")
	}
	err = sandbox.CheckImports([]sandbox.Import{{Module: "wasi_nn", Name: "load"}}, accel)
	require.ErrorContains(t, err, `module "wasi_nn" is not part of the ABI; only millrace_v1, wasi_snapshot_preview1, wasi_ephemeral_nn and millrace_nn_v1 may be imported`)
}

// An invocation whose grant lacks accel is refused before the instance
// starts, like any other ungranted capability.
func TestTensorABIDeniedWithoutGrant(t *testing.T) {
	t.Parallel()
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		wasm := rawModule{imports: []rawImport{{abi.NNModule, abi.FnNNCompute, 0}}, memPages: 1}.bytes()
		m := eng.compile(t, wasm) // the engine knows the tensor ABI's modules
		res := m.Invoke(context.Background(), setup(t).inv(`{}`, kvGrant()))
		requireFailure(t, res, sandbox.FailDenied, `wasi_ephemeral_nn.compute, which needs the "accel" capability`)
		res = m.Invoke(context.Background(), setup(t).inv(`{}`, sandbox.Grant{Capabilities: abi.Capabilities{Accel: &abi.Accel{}}}))
		requireFailure(t, res, sandbox.FailDenied, `"accel" capability`)
	})
}
