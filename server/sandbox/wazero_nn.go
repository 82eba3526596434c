package sandbox

import (
	"context"

	"github.com/millrace/millrace/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// instantiateNN defines the host modules of the tensor ABI (ABI.md §8),
// wasi_ephemeral_nn and millrace_nn_v1, beside instantiateHost's.
func instantiateNN(ctx context.Context, r wazero.Runtime) error {
	for _, module := range []string{abi.NNModule, abi.NNExtModule} {
		b := r.NewHostModuleBuilder(module)
		for _, f := range nnFuncs[module] {
			params := make([]api.ValueType, len(f.params))
			for i := range params {
				params[i] = api.ValueTypeI32
			}
			b.NewFunctionBuilder().
				WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
					c := callFrom(ctx)
					mem := mod.Memory()
					switch {
					case c == nil:
						stack[0] = uint64(abi.NNRuntimeError)
						return
					case mem == nil:
						stack[0] = uint64(abi.NNMissingMemory)
						return
					}
					var p [maxNNParams]uint32
					for i := range params {
						p[i] = api.DecodeU32(stack[i])
					}
					stack[0] = uint64(f.fn(ctx, c, mem, p[:len(params)]))
				}), params, []api.ValueType{api.ValueTypeI32}).
				WithParameterNames(f.params...).
				Export(f.name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return err
		}
	}
	return nil
}
