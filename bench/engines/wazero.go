package engines

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// wazeroRunner runs a reactor guest on raw wazero: the optimizing compiler,
// default module config (wazero's fake clocks and deterministic random
// source, which is its fastest), no close-on-context-done, host function
// through the stack-based api.GoFunc.
type wazeroRunner struct {
	workload Workload
	runtime  wazero.Runtime
	compiled wazero.CompiledModule
	ticker   ticker
	warm     api.Module   // set by StartWarm
	warmRun  api.Function // warm's run, looked up once: each lookup allocates a call stack
}

func newWazero(ctx context.Context, g *Guests, w Workload) (Runner, error) {
	r := &wazeroRunner{workload: w, runtime: wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())}
	fail := func(err error) (Runner, error) {
		r.runtime.Close(ctx)
		return nil, err
	}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r.runtime); err != nil {
		return fail(err)
	}
	i32 := api.ValueTypeI32
	_, err := r.runtime.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithGoFunction(api.GoFunc(func(_ context.Context, stack []uint64) {
			stack[0] = api.EncodeI32(r.ticker.tick(api.DecodeI32(stack[0])))
		}), []api.ValueType{i32}, []api.ValueType{i32}).
		Export("tick").Instantiate(ctx)
	if err != nil {
		return fail(err)
	}
	if r.compiled, err = r.runtime.CompileModule(ctx, g.Reactor[w]); err != nil {
		return fail(err)
	}
	return r, nil
}

// instantiate creates an instance and runs the reactor's _initialize.
func (r *wazeroRunner) instantiate(ctx context.Context) (api.Module, error) {
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize")
	return r.runtime.InstantiateModule(ctx, r.compiled, cfg)
}

// StartWarm instantiates and initialises the warm instance and makes one
// call, so the timed calls do not include the first call's set-up.
func (r *wazeroRunner) StartWarm(ctx context.Context) error {
	if r.warm != nil {
		return nil
	}
	mod, err := r.instantiate(ctx)
	if err != nil {
		return err
	}
	run := mod.ExportedFunction("run")
	if err := r.call(ctx, mod, run); err != nil {
		mod.Close(ctx)
		return err
	}
	r.warm, r.warmRun = mod, run
	return nil
}

func (r *wazeroRunner) Warm(ctx context.Context) error { return r.call(ctx, r.warm, r.warmRun) }

func (r *wazeroRunner) Fresh(ctx context.Context) error {
	mod, err := r.instantiate(ctx)
	if err != nil {
		return err
	}
	err = r.call(ctx, mod, mod.ExportedFunction("run"))
	if cerr := mod.Close(ctx); err == nil {
		err = cerr
	}
	return err
}

func (r *wazeroRunner) call(ctx context.Context, mod api.Module, run api.Function) error {
	switch r.workload {
	case Trivial:
		res, err := run.Call(ctx)
		if err != nil {
			return err
		}
		if got := api.DecodeI32(res[0]); got != trivialAnswer {
			return fmt.Errorf("trivial: got %d, want %d", got, trivialAnswer)
		}
		return nil
	case CPU:
		res, err := run.Call(ctx, api.EncodeI32(CPUMiB))
		if err != nil {
			return err
		}
		sum, ok := mod.Memory().Read(api.DecodeU32(res[0]), 32)
		if !ok {
			return fmt.Errorf("cpu: digest address %d out of range", api.DecodeU32(res[0]))
		}
		return checkSum(sum)
	case HostCalls:
		res, err := run.Call(ctx, api.EncodeI32(HostCallCount))
		if err != nil {
			return err
		}
		return r.ticker.check(int64(res[0]))
	}
	return fmt.Errorf("unknown workload %q", r.workload)
}

func (r *wazeroRunner) Close(ctx context.Context) error {
	return r.runtime.Close(ctx) // closes the warm instance and compiled module too
}
