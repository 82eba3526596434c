package tracing

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
)

func TestTracesURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"http://localhost:4318":             "http://localhost:4318/v1/traces",
		"http://localhost:4318/":            "http://localhost:4318/v1/traces",
		"https://otlp.example/api":          "https://otlp.example/api/v1/traces",
		"http://collector:4318/v1/traces":   "http://collector:4318/v1/traces",
		"https://h.example:443/x/v1/traces": "https://h.example:443/x/v1/traces",
	} {
		got, err := TracesURL(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"localhost:4318", "grpc://collector:4317", "http://", "://x"} {
		_, err := TracesURL(bad)
		require.ErrorContains(t, err, "want an http:// or https:// URL", bad)
	}
}

// Off is a nil *Tracing: no tracer, an accelerator told not to trace, a safe
// shutdown, and an accelerator left unwrapped.
func TestOff(t *testing.T) {
	t.Parallel()
	tr, err := Start(Config{})
	require.NoError(t, err)
	require.Nil(t, tr)
	require.Nil(t, tr.Tracer())
	require.Equal(t, []string{"-otlp-endpoint", ""}, tr.AccelArgs(), "the child does not trace either")
	require.NoError(t, tr.Shutdown(context.Background()))
	require.Nil(t, Accel(nil, nil))
	require.Nil(t, Inject(context.Background()), "no span, nothing stored in the job")
}

// The trace context survives the trip through a job's arguments.
func TestInjectExtract(t *testing.T) {
	t.Parallel()
	tr, err := Start(Config{Endpoint: "http://127.0.0.1:1", SampleRatio: 1})
	require.NoError(t, err)
	defer tr.Shutdown(context.Background())
	require.Equal(t, []string{"-otlp-endpoint", "http://127.0.0.1:1", "-trace-sample-ratio", "1"}, tr.AccelArgs())
	ctx, span := tr.Tracer().Start(context.Background(), "trigger")
	defer span.End()
	fields := Inject(ctx)
	require.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`, fields["traceparent"])
	remote := trace.SpanContextFromContext(Extract(context.Background(), fields))
	require.True(t, remote.IsRemote())
	require.Equal(t, span.SpanContext().TraceID(), remote.TraceID())
	require.Equal(t, span.SpanContext().SpanID(), remote.SpanID())

	_, err = Start(Config{Endpoint: "collector:4318"})
	require.ErrorContains(t, err, "tracing.otlp_endpoint")
}
