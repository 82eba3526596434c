package tracing

import (
	"context"
	"testing"

	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
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

type fakeAccel struct{ err error }

func (a fakeAccel) LoadModel(_ context.Context, name string) (*sandbox.AccelModel, error) {
	return &sandbox.AccelModel{Name: name}, a.err
}

func (a fakeAccel) Infer(context.Context, *sandbox.AccelModel, []oip.Tensor) ([]oip.Tensor, error) {
	return nil, a.err
}

type filesAccel struct{ fakeAccel }

func (filesAccel) ModelFile(context.Context, string, string) ([]byte, error) { return []byte("f"), nil }

// The accelerator decorator gives each call a client span under the
// caller's, records failures, and keeps what the accelerator offers
// beyond sandbox.Accel (pipeline files).
func TestAccelSpans(t *testing.T) {
	t.Parallel()
	rec := tracetest.NewSpanRecorder()
	tracer := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
	ctx, node := tracer.Start(context.Background(), "node n")
	a := Accel(tracer, fakeAccel{})
	m, err := a.LoadModel(ctx, "arith")
	require.NoError(t, err)
	_, err = a.Infer(ctx, m, nil)
	require.NoError(t, err)
	_, err = Accel(tracer, fakeAccel{err: sandbox.ErrAccelBusy}).Infer(ctx, m, nil)
	require.ErrorIs(t, err, sandbox.ErrAccelBusy)
	node.End()
	_, ok := a.(sandbox.AccelFiles)
	require.False(t, ok)
	files, ok := Accel(tracer, filesAccel{}).(sandbox.AccelFiles)
	require.True(t, ok, "pipeline files stay reachable")
	b, err := files.ModelFile(ctx, "sdxl", "unet/model.onnx")
	require.NoError(t, err)
	require.Equal(t, "f", string(b))

	spans := rec.Ended()
	require.Len(t, spans, 4)
	for i, want := range []string{"accel load", "accel infer", "accel infer"} {
		s := spans[i]
		require.Equal(t, want, s.Name())
		require.Equal(t, trace.SpanKindClient, s.SpanKind())
		require.Equal(t, node.SpanContext().SpanID(), s.Parent().SpanID())
		require.Contains(t, s.Attributes(), AttrModel.String("arith"))
	}
	require.Equal(t, codes.Unset, spans[1].Status().Code)
	require.Equal(t, codes.Error, spans[2].Status().Code)
	require.Len(t, spans[2].Events(), 1, "the error is recorded")
}
