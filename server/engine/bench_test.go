package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/store"
)

// timedInvoker measures the time spent inside module invocations, so the
// benchmark can subtract it and report what the engine itself costs.
type timedInvoker struct {
	inner engine.Invoker
	mu    sync.Mutex
	spent time.Duration
}

func (ti *timedInvoker) Invoke(ctx context.Context, req registry.InvokeRequest) (*sandbox.Result, *registry.Version, error) {
	start := time.Now()
	res, v, err := ti.inner.Invoke(ctx, req)
	ti.mu.Lock()
	ti.spent += time.Since(start)
	ti.mu.Unlock()
	return res, v, err
}

// BenchmarkChain40 runs a 40-node sequential chain and reports the
// orchestration overhead per node: the run's wall time minus the time
// spent in module invocations (instantiate + run), divided by 40. It
// includes CEL mappings, checkpoints in SQLite and scheduling.
func BenchmarkChain40(b *testing.B) {
	reg, db := catalogAndStore(b)
	ti := &timedInvoker{inner: reg}
	exec := engine.NewExecutor(db, ti)
	wf := engine.NewWorkflows(db, reg)
	var nodes, edges []string
	for i := range 40 {
		nodes = append(nodes, fmt.Sprintf(`{"id": "n%d", "module": "echo@1.0.0", "input": {"expression": "{'i': %d}"}}`, i, i))
		if i > 0 {
			edges = append(edges, fmt.Sprintf(`{"from": "n%d", "to": "n%d"}`, i-1, i))
		}
	}
	doc := `{"name": "chain40", "nodes": [` + strings.Join(nodes, ",") + `], "edges": [` + strings.Join(edges, ",") + `]}`
	d, err := engine.ParseDefinition([]byte(doc))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := wf.SaveDraft(ctx, "chain40", d); err != nil {
		b.Fatal(err)
	}
	if _, err := wf.Publish(ctx, "chain40"); err != nil {
		b.Fatal(err)
	}
	var perNode []float64
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprintf("run_%013x%08x", i, i)
		if err := db.CreateRun(ctx, store.Run{ID: id, WorkflowID: "chain40", Version: 1, Status: engine.StatusQueued, Input: json.RawMessage(`{}`)}); err != nil {
			b.Fatal(err)
		}
		ti.spent = 0
		start := time.Now()
		run, err := exec.Execute(ctx, id)
		wall := time.Since(start)
		if err != nil || run.Status != engine.StatusSucceeded {
			b.Fatal(err, run.Error)
		}
		perNode = append(perNode, float64((wall-ti.spent).Microseconds())/1000/40)
	}
	slices.Sort(perNode)
	b.ReportMetric(perNode[len(perNode)/2], "overhead-ms/node")
}
