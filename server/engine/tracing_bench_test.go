package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/tracing"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkRunTracing is the cost of tracing per run: a two-node run
// executed with tracing off (a nil tracer) and on (every span sampled and
// exported over OTLP/HTTP to a receiver that discards it), with the run
// span and the job-argument round trip the queue adds. Compare the two
// ns/op; the difference is what tracing costs a run.
func BenchmarkRunTracing(b *testing.B) {
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	defer recv.Close()
	for _, mode := range []string{"off", "on"} {
		b.Run(mode, func(b *testing.B) {
			reg, db := catalogAndStore(b)
			exec := engine.NewExecutor(db, reg)
			var tr *tracing.Tracing
			if mode == "on" {
				var err error
				if tr, err = tracing.Start(tracing.Config{Endpoint: recv.URL, SampleRatio: 1}); err != nil {
					b.Fatal(err)
				}
				defer tr.Shutdown(context.Background())
				exec.Tracer = tr.Tracer()
			}
			d, err := engine.ParseDefinition([]byte(`{"name": "two", "nodes": [{"id": "a", "module": "echo@1.0.0"}, {"id": "b", "module": "echo@1.0.0"}], "edges": [{"from": "a", "to": "b"}]}`))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			wf := engine.NewWorkflows(db, reg)
			if _, err := wf.SaveDraft(ctx, "two", d); err != nil {
				b.Fatal(err)
			}
			if _, err := wf.Publish(ctx, "two"); err != nil {
				b.Fatal(err)
			}
			for i := 0; b.Loop(); i++ {
				id := fmt.Sprintf("run_%013x%08x", i, i)
				if err := db.CreateRun(ctx, store.Run{ID: id, WorkflowID: "two", Version: 1, Status: engine.StatusQueued, Input: json.RawMessage(`{}`)}); err != nil {
					b.Fatal(err)
				}
				runCtx, end := ctx, func() {}
				if t := tr.Tracer(); t != nil {
					// What a trigger and the queue's worker add.
					tctx, trig := t.Start(ctx, "trigger manual")
					fields := tracing.Inject(tctx)
					trig.End()
					var span interface{ End(...trace.SpanEndOption) }
					runCtx, span = t.Start(tracing.Extract(ctx, fields), "run")
					end = func() { span.End() }
				}
				res, err := exec.Execute(runCtx, id)
				end()
				if err != nil || res.Status != engine.StatusSucceeded {
					b.Fatal(err, res.Error)
				}
			}
		})
	}
}
