//go:build wasmtime && cgo

package sandbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/bytecodealliance/wasmtime-go/v39"
	"github.com/millrace/millrace/abi"
)

// hostFunc is one millrace_v1 function for the wasmtime engine: its
// parameters, one letter each ('i' i32, 'I' i64), as instantiateHost in
// wazero.go declares them (TestWasmtimeHostSignatures compares the two),
// and the method of call that implements it.
type hostFunc struct {
	params string
	call   func(ctx context.Context, c *call, m Memory, p []uint64) abi.Errno
}

var hostFuncs = map[string]hostFunc{
	abi.FnInput:  {"i", func(_ context.Context, c *call, m Memory, p []uint64) abi.Errno { return c.input(m, u32(p[0])) }},
	abi.FnConfig: {"i", func(_ context.Context, c *call, m Memory, p []uint64) abi.Errno { return c.config(m, u32(p[0])) }},
	abi.FnResultRead: {"ii", func(_ context.Context, c *call, m Memory, p []uint64) abi.Errno {
		return c.resultRead(m, u32(p[0]), u32(p[1]))
	}},
	abi.FnOutputSet: {"ii", func(_ context.Context, c *call, m Memory, p []uint64) abi.Errno {
		return c.outputSet(m, u32(p[0]), u32(p[1]))
	}},
	abi.FnErrorSet: {"ii", func(_ context.Context, c *call, m Memory, p []uint64) abi.Errno {
		return c.errorSet(m, u32(p[0]), u32(p[1]))
	}},
	abi.FnLog: {"iiiii", func(_ context.Context, c *call, m Memory, p []uint64) abi.Errno {
		return c.log(m, u32(p[0]), u32(p[1]), u32(p[2]), u32(p[3]), u32(p[4]))
	}},
	abi.FnProgress: {"iiii", func(_ context.Context, c *call, m Memory, p []uint64) abi.Errno {
		return c.reportProgress(m, u32(p[0]), u32(p[1]), u32(p[2]), u32(p[3]))
	}},
	abi.FnProgressPreview: {"iiiiii", func(_ context.Context, c *call, m Memory, p []uint64) abi.Errno {
		return c.reportPreview(m, u32(p[0]), u32(p[1]), u32(p[2]), u32(p[3]), u32(p[4]), u32(p[5]))
	}},
	abi.FnPortSet: {"ii", func(_ context.Context, c *call, m Memory, p []uint64) abi.Errno {
		return c.portSet(m, u32(p[0]), u32(p[1]))
	}},
	abi.FnKVGet: {"iii", func(ctx context.Context, c *call, m Memory, p []uint64) abi.Errno {
		return c.kvGet(ctx, m, u32(p[0]), u32(p[1]), u32(p[2]))
	}},
	abi.FnKVSet: {"iiii", func(ctx context.Context, c *call, m Memory, p []uint64) abi.Errno {
		return c.kvSet(ctx, m, u32(p[0]), u32(p[1]), u32(p[2]), u32(p[3]))
	}},
	abi.FnKVDelete: {"ii", func(ctx context.Context, c *call, m Memory, p []uint64) abi.Errno {
		return c.kvDelete(ctx, m, u32(p[0]), u32(p[1]))
	}},
	abi.FnKVAdd: {"iiIi", func(ctx context.Context, c *call, m Memory, p []uint64) abi.Errno {
		return c.kvAdd(ctx, m, u32(p[0]), u32(p[1]), int64(p[2]), u32(p[3]))
	}},
	abi.FnHTTPSend: {"iii", func(ctx context.Context, c *call, m Memory, p []uint64) abi.Errno {
		return c.httpSend(ctx, m, u32(p[0]), u32(p[1]), u32(p[2]))
	}},
	abi.FnSecretGet: {"iii", func(ctx context.Context, c *call, m Memory, p []uint64) abi.Errno {
		return c.secretGet(ctx, m, u32(p[0]), u32(p[1]), u32(p[2]))
	}},
}

// defineHost links millrace_v1, the tensor ABI's modules (nn.go) and our
// wasi_snapshot_preview1 into the
// engine's linker, once: the functions find their invocation through the
// store's data.
func (e *Wasmtime) defineHost() error {
	for name, f := range hostFuncs {
		err := e.define(abi.ImportModule, name, f.params, true, func(w *wasmtimeInvocation, m Memory, p []uint64) uint32 {
			return uint32(f.call(w.ctx, w.call, m, p))
		})
		if err != nil {
			return err
		}
	}
	for _, module := range []string{abi.NNModule, abi.NNExtModule} {
		for _, f := range nnFuncs[module] {
			err := e.define(module, f.name, strings.Repeat("i", len(f.params)), true, func(w *wasmtimeInvocation, m Memory, p []uint64) uint32 {
				var q [maxNNParams]uint32
				for i := range p {
					q[i] = uint32(p[i])
				}
				return uint32(f.fn(w.ctx, w.call, m, q[:len(p)]))
			})
			if err != nil {
				return err
			}
		}
	}
	for name, f := range wasiFuncs {
		err := e.define(abi.WASIModule, name, f.params, name != "proc_exit", func(w *wasmtimeInvocation, m Memory, p []uint64) uint32 {
			return f.call(w.wasi, m, p)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// define links one host function. A function without a result is
// proc_exit: it ends the guest with a trap, and the invocation reads the
// exit code from its wasi state.
func (e *Wasmtime) define(module, name, params string, hasResult bool, fn func(w *wasmtimeInvocation, m Memory, p []uint64) uint32) error {
	ty := funcType(params, hasResult)
	err := e.linker.FuncNew(module, name, ty, func(caller *wasmtime.Caller, args []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
		w, _ := caller.Data().(*wasmtimeInvocation)
		p := make([]uint64, len(args))
		for i, a := range args {
			if a.Kind() == wasmtime.KindI64 {
				p[i] = uint64(a.I64())
			} else {
				p[i] = uint64(uint32(a.I32()))
			}
		}
		errno := fn(w, w.memory(caller), p)
		if !hasResult {
			return nil, wasmtime.NewTrap("exit")
		}
		return []wasmtime.Val{wasmtime.ValI32(int32(errno))}, nil
	})
	if err != nil {
		return fmt.Errorf("linking %s.%s: %w", module, name, err)
	}
	return nil
}

func funcType(params string, hasResult bool) *wasmtime.FuncType {
	ps := make([]*wasmtime.ValType, len(params))
	for i, p := range params {
		if p == 'I' {
			ps[i] = wasmtime.NewValType(wasmtime.KindI64)
		} else {
			ps[i] = wasmtime.NewValType(wasmtime.KindI32)
		}
	}
	var rs []*wasmtime.ValType
	if hasResult {
		rs = []*wasmtime.ValType{wasmtime.NewValType(wasmtime.KindI32)}
	}
	return wasmtime.NewFuncType(ps, rs)
}
