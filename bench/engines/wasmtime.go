package engines

import (
	"context"
	"fmt"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// wasmtimeRunner runs a reactor guest on wasmtime-go: default engine
// (Cranelift, copy-on-write memory images), one Linker holding WASI and
// env.tick shared by every Store, and a new Store per fresh instance, which
// is the fresh-instance path wasmtime-go offers (its Go API exposes neither
// InstancePre nor the pooling allocator).
type wasmtimeRunner struct {
	workload Workload
	engine   *wasmtime.Engine
	linker   *wasmtime.Linker
	module   *wasmtime.Module
	ticker   ticker
	warm     *wasmtimeInstance // set by StartWarm
}

type wasmtimeInstance struct {
	store *wasmtime.Store
	inst  *wasmtime.Instance
	run   *wasmtime.Func
}

func newWasmtime(_ context.Context, g *Guests, w Workload) (Runner, error) {
	r := &wasmtimeRunner{workload: w, engine: wasmtime.NewEngine()}
	r.linker = wasmtime.NewLinker(r.engine)
	fail := func(err error) (Runner, error) {
		r.Close(context.Background())
		return nil, err
	}
	if err := r.linker.DefineWasi(); err != nil {
		return fail(err)
	}
	i32 := wasmtime.NewValType(wasmtime.KindI32)
	tickType := wasmtime.NewFuncType([]*wasmtime.ValType{i32}, []*wasmtime.ValType{i32})
	// FuncNew takes and returns Vals; FuncWrap would go through reflection
	// on every call.
	err := r.linker.FuncNew("env", "tick", tickType, func(_ *wasmtime.Caller, args []wasmtime.Val) ([]wasmtime.Val, *wasmtime.Trap) {
		return []wasmtime.Val{wasmtime.ValI32(r.ticker.tick(args[0].I32()))}, nil
	})
	if err != nil {
		return fail(err)
	}
	if r.module, err = wasmtime.NewModule(r.engine, g.Reactor[w]); err != nil {
		return fail(err)
	}
	return r, nil
}

// instantiate creates a Store and an instance in it and runs the reactor's
// _initialize.
func (r *wasmtimeRunner) instantiate() (*wasmtimeInstance, error) {
	store := wasmtime.NewStore(r.engine)
	store.SetWasi(wasmtime.NewWasiConfig())
	inst, err := r.linker.Instantiate(store, r.module)
	if err != nil {
		store.Close()
		return nil, err
	}
	if _, err := inst.GetFunc(store, "_initialize").Call(store); err != nil {
		store.Close()
		return nil, fmt.Errorf("_initialize: %w", err)
	}
	return &wasmtimeInstance{store: store, inst: inst, run: inst.GetFunc(store, "run")}, nil
}

// StartWarm instantiates and initialises the warm instance and makes one
// call, so the timed calls do not include the first call's set-up.
func (r *wasmtimeRunner) StartWarm(context.Context) error {
	if r.warm != nil {
		return nil
	}
	i, err := r.instantiate()
	if err != nil {
		return err
	}
	if err := r.call(i); err != nil {
		i.store.Close()
		return err
	}
	r.warm = i
	return nil
}

func (r *wasmtimeRunner) Warm(context.Context) error { return r.call(r.warm) }

func (r *wasmtimeRunner) Fresh(context.Context) error {
	i, err := r.instantiate()
	if err != nil {
		return err
	}
	defer i.store.Close()
	return r.call(i)
}

func (r *wasmtimeRunner) call(i *wasmtimeInstance) error {
	switch r.workload {
	case Trivial:
		res, err := i.run.Call(i.store)
		if err != nil {
			return err
		}
		if got := res.(int32); got != trivialAnswer {
			return fmt.Errorf("trivial: got %d, want %d", got, trivialAnswer)
		}
		return nil
	case CPU:
		res, err := i.run.Call(i.store, int32(CPUMiB))
		if err != nil {
			return err
		}
		// The export returns a u32 address as an i32.
		addr := uint64(uint32(res.(int32)))
		mem := i.inst.GetExport(i.store, "memory").Memory().UnsafeData(i.store)
		if addr+32 > uint64(len(mem)) {
			return fmt.Errorf("cpu: digest address %d out of range", addr)
		}
		return checkSum(mem[addr : addr+32])
	case HostCalls:
		res, err := i.run.Call(i.store, int32(HostCallCount))
		if err != nil {
			return err
		}
		return r.ticker.check(res.(int64))
	}
	return fmt.Errorf("unknown workload %q", r.workload)
}

func (r *wasmtimeRunner) Close(context.Context) error {
	if r.warm != nil {
		r.warm.store.Close()
	}
	if r.module != nil {
		r.module.Close()
	}
	r.linker.Close()
	r.engine.Close()
	return nil
}
