package engines

import (
	"context"
	"fmt"
	"strconv"

	extism "github.com/extism/go-sdk"
)

// extismRunner runs an Extism plug-in with the Go SDK: one CompiledPlugin
// (wazero underneath, WASI on, no timeout so no close-on-context-done), and
// CompiledPlugin.Instance per fresh instance. Extism instantiates its kernel
// module and the plug-in, and runs the plug-in's _initialize on the first
// Call.
type extismRunner struct {
	workload Workload
	compiled *extism.CompiledPlugin
	ticker   ticker
	warm     *extism.Plugin // set by StartWarm
}

func newExtism(ctx context.Context, g *Guests, w Workload) (Runner, error) {
	r := &extismRunner{workload: w}
	tick := extism.NewHostFunctionWithStack("tick", func(_ context.Context, _ *extism.CurrentPlugin, stack []uint64) {
		stack[0] = extism.EncodeI32(r.ticker.tick(extism.DecodeI32(stack[0])))
	}, []extism.ValueType{extism.ValueTypeI32}, []extism.ValueType{extism.ValueTypeI32})
	manifest := extism.Manifest{Wasm: []extism.Wasm{extism.WasmData{Data: g.Extism[w]}}}
	var err error
	r.compiled, err = extism.NewCompiledPlugin(ctx, manifest, extism.PluginConfig{EnableWasi: true}, []extism.HostFunction{tick})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (r *extismRunner) StartWarm(ctx context.Context) error {
	if r.warm != nil {
		return nil
	}
	p, err := r.compiled.Instance(ctx, extism.PluginInstanceConfig{})
	if err != nil {
		return err
	}
	// Extism runs _initialize on the first call: make that call here, so
	// Warm times initialised calls only (as for the other runtimes, whose
	// StartWarm makes one call too).
	if err := r.call(ctx, p); err != nil {
		p.Close(ctx)
		return err
	}
	r.warm = p
	return nil
}

func (r *extismRunner) Warm(ctx context.Context) error { return r.call(ctx, r.warm) }

func (r *extismRunner) Fresh(ctx context.Context) error {
	p, err := r.compiled.Instance(ctx, extism.PluginInstanceConfig{})
	if err != nil {
		return err
	}
	err = r.call(ctx, p)
	if cerr := p.Close(ctx); err == nil {
		err = cerr
	}
	return err
}

func (r *extismRunner) call(ctx context.Context, p *extism.Plugin) error {
	var input []byte
	switch r.workload {
	case CPU:
		input = []byte(strconv.Itoa(CPUMiB))
	case HostCalls:
		input = []byte(strconv.Itoa(HostCallCount))
	}
	rc, out, err := p.CallWithContext(ctx, "run", input)
	if err != nil {
		return err
	}
	if rc != 0 {
		return fmt.Errorf("%s: run returned %d", r.workload, rc)
	}
	switch r.workload {
	case Trivial:
		if string(out) != strconv.Itoa(trivialAnswer) {
			return fmt.Errorf("trivial: got %q, want %q", out, strconv.Itoa(trivialAnswer))
		}
		return nil
	case CPU:
		return checkHex(string(out))
	case HostCalls:
		sum, err := strconv.ParseInt(string(out), 10, 64)
		if err != nil {
			return fmt.Errorf("hostcalls: output %q: %w", out, err)
		}
		return r.ticker.check(sum)
	}
	return fmt.Errorf("unknown workload %q", r.workload)
}

func (r *extismRunner) Close(ctx context.Context) error {
	if r.warm != nil {
		r.warm.Close(ctx)
	}
	return r.compiled.Close(ctx)
}
