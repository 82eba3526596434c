package engines

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/millrace/millrace/server/sandbox"
)

// millraceRunner runs an SDK guest through Millrace's public sandbox API:
// sandbox.NewWazero, Engine.Compile, then Module.Invoke per operation, with
// an Invocation shaped like the ones the registry builds (limits as in
// server/sandbox/bench_test.go, a progress callback as the workflow
// executor sets). Invoke never carries state from one invocation to the
// next (however the server achieves it), so there is no warm mode.
type millraceRunner struct {
	workload Workload
	engine   *sandbox.Wazero
	module   sandbox.Module
	input    json.RawMessage
	progress int // progress reports seen in the current operation
}

// millraceLimits are the limits of every benchmark invocation.
var millraceLimits = sandbox.Limits{
	MemoryBytes: 128 << 20, Timeout: time.Minute, MaxOutputBytes: 1 << 20, MaxLogBytes: 256 << 10,
	MaxKVValueBytes: 1 << 20, MaxKVTotalBytes: 64 << 20, MaxHTTPBodyBytes: 10 << 20, HTTPTimeout: 10 * time.Second,
}

func newMillrace(noPreemption, command bool) func(context.Context, *Guests, Workload) (Runner, error) {
	return func(ctx context.Context, g *Guests, w Workload) (Runner, error) {
		e, err := sandbox.NewWazero(ctx, sandbox.WazeroConfig{NoPreemption: noPreemption})
		if err != nil {
			return nil, err
		}
		wasm := g.Millrace[w]
		if command {
			wasm = g.MillraceCommand[w]
		}
		mod, err := e.Compile(ctx, wasm)
		if err != nil {
			e.Close(ctx)
			return nil, err
		}
		r := &millraceRunner{workload: w, engine: e, module: mod, input: json.RawMessage(`{}`)}
		switch w {
		case CPU:
			r.input = json.RawMessage(fmt.Sprintf(`{"mib":%d,"rounds":1}`, CPUMiB))
		case HostCalls:
			r.input = json.RawMessage(fmt.Sprintf(`{"n":%d}`, HostCallCount))
		}
		return r, nil
	}
}

func (r *millraceRunner) StartWarm(context.Context) error { return ErrNoWarm }

func (r *millraceRunner) Warm(context.Context) error { return ErrNoWarm }

func (r *millraceRunner) Fresh(ctx context.Context) error {
	r.progress = 0
	res := r.module.Invoke(ctx, &sandbox.Invocation{
		Namespace:  "bench",
		Input:      r.input,
		Limits:     millraceLimits,
		OnProgress: func(sandbox.Progress) { r.progress++ },
	})
	if res.Failure != nil {
		return res.Failure
	}
	switch r.workload {
	case Trivial:
		if string(res.Output) != `{}` {
			return fmt.Errorf("trivial: output %s, want {}", res.Output)
		}
		return nil
	case CPU:
		var out struct {
			Sum string `json:"sum"`
		}
		if err := json.Unmarshal(res.Output, &out); err != nil {
			return fmt.Errorf("cpu: output %s: %w", res.Output, err)
		}
		return checkHex(out.Sum)
	case HostCalls:
		var out struct {
			N int `json:"n"`
		}
		if err := json.Unmarshal(res.Output, &out); err != nil {
			return fmt.Errorf("hostcalls: output %s: %w", res.Output, err)
		}
		if r.progress != HostCallCount || out.N != HostCallCount || res.Progress == nil || res.Progress.Done != HostCallCount {
			return fmt.Errorf("hostcalls: host saw %d progress calls, output %s (want %d)", r.progress, res.Output, HostCallCount)
		}
		return nil
	}
	return fmt.Errorf("unknown workload %q", r.workload)
}

func (r *millraceRunner) Close(ctx context.Context) error {
	return r.engine.Close(ctx)
}
