package sandbox

import (
	"context"

	"github.com/millrace/millrace/abi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// nnFunc is one tensor ABI host function for wazero: its name, its
// parameter names (every one an i32) and how it calls the engine-neutral
// code of nn.go.
type nnFunc struct {
	name   string
	params []string
	fn     func(ctx context.Context, c *call, mem Memory, p []uint32) abi.NNErrno
}

var nnFuncs = map[string][]nnFunc{
	abi.NNModule: {
		{abi.FnNNLoad, []string{"builders_ptr", "builders_len", "encoding", "target", "out_graph_ptr"},
			func(_ context.Context, c *call, _ Memory, _ []uint32) abi.NNErrno { return c.nnLoad() }},
		{abi.FnNNLoadByName, []string{"name_ptr", "name_len", "out_graph_ptr"},
			func(ctx context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnLoadByName(ctx, m, p[0], p[1], p[2])
			}},
		{abi.FnNNInitExecutionContext, []string{"graph", "out_ctx_ptr"},
			func(_ context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnInitExecutionContext(m, p[0], p[1])
			}},
		{abi.FnNNSetInput, []string{"ctx", "index", "tensor_ptr"},
			func(_ context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnSetInput(m, p[0], p[1], p[2], false)
			}},
		{abi.FnNNCompute, []string{"ctx"},
			func(ctx context.Context, c *call, _ Memory, p []uint32) abi.NNErrno { return c.nnCompute(ctx, p[0]) }},
		{abi.FnNNGetOutput, []string{"ctx", "index", "out_buf_ptr", "out_buf_max", "out_written_ptr"},
			func(_ context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnGetOutput(m, p[0], p[1], p[2], p[3], p[4])
			}},
	},
	abi.NNExtModule: {
		{abi.FnNNExtSetInput, []string{"ctx", "index", "tensor_ptr"},
			func(_ context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnSetInput(m, p[0], p[1], p[2], true)
			}},
		{abi.FnNNExtOutputShape, []string{"ctx", "index", "dims_ptr", "dims_max", "out_rank_ptr"},
			func(_ context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnOutputShape(m, p[0], p[1], p[2], p[3], p[4])
			}},
		{abi.FnNNExtOutputType, []string{"ctx", "index", "out_type_ptr"},
			func(_ context.Context, c *call, m Memory, p []uint32) abi.NNErrno {
				return c.nnOutputType(m, p[0], p[1], p[2])
			}},
		{abi.FnNNExtComputeStart, []string{"ctx"},
			func(ctx context.Context, c *call, _ Memory, p []uint32) abi.NNErrno {
				return c.nnComputeStart(ctx, p[0])
			}},
		{abi.FnNNExtComputeWait, []string{"ctx", "timeout_ms"},
			func(ctx context.Context, c *call, _ Memory, p []uint32) abi.NNErrno {
				return c.nnComputeWait(ctx, p[0], p[1])
			}},
	},
}

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
					var p [5]uint32
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
