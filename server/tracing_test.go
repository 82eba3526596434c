package server_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/server"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/internal/acceltest"
	"github.com/millrace/millrace/server/internal/onnxtest"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/tracing"
	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace receiver, as a collector serves it
// on :4318: it decodes each ExportTraceServiceRequest and keeps the spans.
type otlpReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	requests int
	spans    []recvSpan
}

// recvSpan is one exported span with its resource's service name.
type recvSpan struct {
	service, name       string
	traceID, id, parent string
	attrs               map[string]string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" || err != nil {
			http.Error(w, "want POST /v1/traces with application/x-protobuf", http.StatusBadRequest)
			return
		}
		var export collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &export); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.requests++
		for _, rs := range export.ResourceSpans {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					attrs := map[string]string{}
					for _, kv := range s.Attributes {
						switch v := kv.GetValue().GetValue().(type) {
						case *commonpb.AnyValue_StringValue:
							attrs[kv.Key] = v.StringValue
						case *commonpb.AnyValue_IntValue:
							attrs[kv.Key] = strconv.FormatInt(v.IntValue, 10)
						}
					}
					r.spans = append(r.spans, recvSpan{service: service, name: s.Name, traceID: hex.EncodeToString(s.TraceId),
						id: hex.EncodeToString(s.SpanId), parent: hex.EncodeToString(s.ParentSpanId), attrs: attrs})
				}
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *otlpReceiver) snapshot() (int, []recvSpan) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, append([]recvSpan(nil), r.spans...)
}

// tracedServer runs a server with the real accelerator child and the given
// tracing until stop, which waits for it (and so for its last exports).
func tracedServer(t *testing.T, tc tracing.Config) (p *process, token string, stop func()) {
	t.Helper()
	base, out, stop := startConfig(t, server.Config{DataDir: t.TempDir(), Tracing: tc,
		Accel: accel.Config{Mode: accel.ModeOn, Binary: acceltest.Binary(t), Library: acceltest.Library(t)}})
	p = &process{base: base}
	token = regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`).FindString(out)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if p.call(t, token, http.MethodGet, "/v1/accel", nil)["state"] == "ready" {
			break
		}
		require.False(t, time.Now().After(deadline), "the accelerator did not become ready")
	}
	return p, token, stop
}

// runInferWorkflow installs a two-node workflow, infer (a module calling
// the accelerator) → report (echo), behind a sync webhook, calls the
// webhook and returns the id of the run it started.
func runInferWorkflow(t *testing.T, p *process, token string) string {
	t.Helper()
	file := onnxtest.WriteFile(t, t.TempDir(), "arith.onnx", onnxtest.Arith())
	p.call(t, token, http.MethodPut, "/v1/models/arith", map[string]any{"path": file})
	p.call(t, token, http.MethodPost, "/v1/modules", moduleUpload(testguests.Reactor(t, "nnuser"),
		`{"abi":1,"id":"nnuser","name":"N","version":"1.0.0","capabilities":{"accel":{"models":["arith"]},"allowed_outbound_hosts":["http://127.0.0.1:*"]}}`))
	p.call(t, token, http.MethodPut, "/v1/modules/nnuser/versions/1.0.0/grants", map[string]any{"capabilities": map[string]any{"accel": map[string]any{"models": []string{"arith"}}, "allowed_outbound_hosts": []string{"http://127.0.0.1:*"}}})
	p.call(t, token, http.MethodPut, "/v1/workflows/traced", map[string]any{
		"name": "traced",
		"nodes": []any{
			map[string]any{"id": "infer", "module": "nnuser@1.0.0", "input": map[string]any{"expression": "{'model': 'arith', 'outputs': 1, 'inputs': [" +
				"{'type': 'f32', 'shape': [1, 3], 'data': input.a}, {'type': 'f32', 'shape': [1, 3], 'data': input.b}]}"}},
			map[string]any{"id": "report", "module": "echo@1.0.0", "input": map[string]any{"expression": "nodes.infer.output.outputs[0].data"}},
		},
		"edges": []any{map[string]any{"from": "infer", "to": "report"}},
	})
	p.call(t, token, http.MethodPost, "/v1/workflows/traced/publish", nil)
	hook := p.call(t, token, http.MethodPost, "/v1/workflows/traced/triggers", map[string]any{"kind": "webhook", "webhook": map[string]any{"mode": "sync"}})
	body, _ := json.Marshal(map[string]any{"a": []float64{1, 2, 3}, "b": []float64{10, 20, 30}})
	req, err := http.NewRequest(http.MethodPost, p.base+hook["path"].(string), bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Millrace-Secret", hook["secret"].(string))
	req.Header.Set("Content-Type", "application/json")
	// A caller's traceparent is not followed (a new trace starts).
	req.Header.Set("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", raw)
	var out struct {
		RunID  string `json:"run_id"`
		Status string `json:"status"`
	}
	require.NoError(t, json.Unmarshal(raw, &out))
	require.Equal(t, "succeeded", out.Status, "%s", raw)
	return out.RunID
}

// One trace follows a webhook-triggered run: the trigger's span is the
// root; the run (executed by a River job, its context carried in the
// job's arguments), each node attempt, the node's accelerator calls and
// the accelerator service's own span (another process, reached by W3C
// traceparent) hang below it, each with its ids.
func TestTracingFollowsARunToTheAccelerator(t *testing.T) {
	recv := newOTLPReceiver(t)
	p, token, stop := tracedServer(t, tracing.Config{Endpoint: recv.URL, SampleRatio: 1, ServiceName: "millrace-test"})
	runID := runInferWorkflow(t, p, token)
	stop() // flushes the server's spans, and the child's as it exits

	_, spans := recv.snapshot()
	byName := func(name string) []recvSpan {
		var out []recvSpan
		for _, s := range spans {
			if s.name == name && (s.attrs["millrace.run_id"] == runID || s.attrs["millrace.run_id"] == "") {
				out = append(out, s)
			}
		}
		return out
	}
	one := func(name string) recvSpan {
		t.Helper()
		got := byName(name)
		require.Len(t, got, 1, "spans named %q among %+v", name, spans)
		return got[0]
	}
	trig := one("trigger webhook")
	require.Empty(t, trig.parent, "the trigger starts the trace")
	require.NotEqual(t, "0af7651916cd43dd8448eb211c80319c", trig.traceID, "the caller's traceparent is not followed")
	require.Equal(t, "millrace-test", trig.service)
	require.Equal(t, "webhook", trig.attrs["millrace.trigger"])
	require.Equal(t, "traced", trig.attrs["millrace.workflow_id"])
	require.Equal(t, runID, trig.attrs["millrace.run_id"])

	runSpan := one("run")
	require.Equal(t, trig.id, runSpan.parent)
	require.Equal(t, runID, runSpan.attrs["millrace.run_id"])
	require.Equal(t, "succeeded", runSpan.attrs["millrace.status"])

	infer, report := one("node infer"), one("node report")
	for _, n := range []recvSpan{infer, report} {
		require.Equal(t, runSpan.id, n.parent, n.name)
		require.Equal(t, runID, n.attrs["millrace.run_id"])
		require.Equal(t, "1", n.attrs["millrace.attempt"])
	}
	require.Equal(t, "infer", infer.attrs["millrace.node_id"])
	require.Equal(t, "nnuser@1.0.0", infer.attrs["millrace.module"])
	require.Equal(t, "report", report.attrs["millrace.node_id"])
	require.Equal(t, "echo@1.0.0", report.attrs["millrace.module"])

	// The node may call the accelerator more than once (load, infer):
	// find the spans by name under their parent.
	childOf := func(name string, parent recvSpan) recvSpan {
		t.Helper()
		for _, s := range byName(name) {
			if s.parent == parent.id {
				return s
			}
		}
		t.Fatalf("no span %q under %q among %+v", name, parent.name, spans)
		return recvSpan{}
	}
	call := childOf("accel infer", infer)
	require.Equal(t, "arith", call.attrs["millrace.model"])
	served := childOf("accel.service infer", call) // the accelerator's own, over traceparent
	require.Equal(t, "millrace-accel", served.service)
	require.Equal(t, "arith", served.attrs["millrace.model"])

	for _, s := range []recvSpan{runSpan, infer, report, call, served} {
		require.Equal(t, trig.traceID, s.traceID, "one trace: %s", s.name)
	}
}

// With tracing off nothing is exported, not even where the standard
// OTLP variable names a collector (the server reads no OTEL_ variable
// itself; `millrace serve` maps them to its configuration).
func TestTracingOffExportsNothing(t *testing.T) {
	recv := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", recv.URL+"/v1/traces")
	p, token, stop := tracedServer(t, tracing.Config{})
	runInferWorkflow(t, p, token)
	stop()
	requests, spans := recv.snapshot()
	require.Zero(t, requests, "exported: %+v", spans)
}
