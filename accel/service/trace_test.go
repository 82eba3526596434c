package service_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/millrace/millrace/accel/service"
	"github.com/millrace/millrace/accel/sessions"
)

// An inference whose request carries a traceparent (the client sends its
// context's span) gets a server span under that span; one that fails
// records the error status; with no tracer nothing is recorded.
func TestInferSpanJoinsTheCallersTrace(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	f := setup(t, sessions.Config{}, service.Config{Tracer: tp.Tracer("test")})

	ctx, caller := tp.Tracer("test").Start(context.Background(), "node infer")
	_, err := f.c.Infer(ctx, "arith", arithInputs([]float32{1, 2, 3}, []float32{4, 5, 6}))
	require.NoError(t, err)
	_, err = f.c.Infer(ctx, "missing", arithInputs([]float32{1, 2, 3}, []float32{4, 5, 6}))
	require.Error(t, err)
	caller.End()

	var served []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "accel.service infer" {
			served = append(served, s)
		}
	}
	require.Len(t, served, 2)
	for _, s := range served {
		require.Equal(t, trace.SpanKindServer, s.SpanKind())
		require.Equal(t, caller.SpanContext().TraceID(), s.Parent().TraceID())
		require.Equal(t, caller.SpanContext().SpanID(), s.Parent().SpanID())
		require.True(t, s.Parent().IsRemote(), "the parent came over HTTP")
	}
	attrs := func(s sdktrace.ReadOnlySpan) map[string]string {
		m := map[string]string{}
		for _, kv := range s.Attributes() {
			m[string(kv.Key)] = kv.Value.Emit()
		}
		return m
	}
	require.Equal(t, "arith", attrs(served[0])["millrace.model"])
	require.Equal(t, "200", attrs(served[0])["http.response.status_code"])
	require.Equal(t, "404", attrs(served[1])["http.response.status_code"])
	require.Equal(t, "Error", served[1].Status().Code.String())
}
