// Package tracing exports OpenTelemetry traces over OTLP/HTTP: a trigger
// span, the run it started, each node attempt and each accelerator call,
// in one trace even when a worker process executes the run.
//
// Tracing is off unless an endpoint is configured. Off, Start returns a
// nil *Tracing whose Tracer is nil, and every caller guards its spans
// with a nil check: the run path then pays one comparison, not a no-op
// tracer's context allocation per span.
package tracing

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/server/sandbox"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys Millrace puts on its spans.
const (
	AttrRunID      = attribute.Key("millrace.run_id")
	AttrNodeID     = attribute.Key("millrace.node_id")
	AttrModule     = attribute.Key("millrace.module")
	AttrAttempt    = attribute.Key("millrace.attempt")
	AttrWorkflowID = attribute.Key("millrace.workflow_id")
	AttrTrigger    = attribute.Key("millrace.trigger")
	AttrTriggerID  = attribute.Key("millrace.trigger_id")
	AttrModel      = attribute.Key("millrace.model")
	AttrStatus     = attribute.Key("millrace.status")
)

// ScopeName is the instrumentation scope of Millrace's spans.
const ScopeName = "github.com/millrace/millrace/server"

// Config says where traces go.
type Config struct {
	// Endpoint is the OTLP/HTTP base URL, such as http://localhost:4318
	// (an otel-collector, Jaeger or Tempo); /v1/traces is appended, as
	// OTEL_EXPORTER_OTLP_ENDPOINT's value gets. Empty turns tracing off.
	Endpoint string
	// SampleRatio is the share of new traces recorded, 0 to 1. A span
	// whose parent was sampled is always recorded, so a trace is whole
	// or absent.
	SampleRatio float64
	// ServiceName is the resource's service.name; default "millrace".
	ServiceName string
	// Headers are sent with every export (a hosted backend's API key).
	Headers map[string]string
	// Role ("serve", "worker") and Version describe this process.
	Role, Version string
}

// TracesURL is the URL spans are posted to: the endpoint with /v1/traces
// appended to its path, unless it already ends so.
func TracesURL(endpoint string) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q: want an http:// or https:// URL, such as http://localhost:4318", endpoint)
	}
	if !strings.HasSuffix(u.Path, "/v1/traces") {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	return u.String(), nil
}

// Tracing is a running exporter. A nil *Tracing is tracing off.
type Tracing struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
	cfg      Config
}

// Start makes the exporter and provider; nothing is sent until a span
// ends. With no endpoint it returns nil, tracing off.
func Start(cfg Config) (*Tracing, error) {
	if cfg.Endpoint == "" {
		return nil, nil
	}
	target, err := TracesURL(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("tracing.otlp_endpoint: %w", err)
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "millrace"
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(target)}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
	}
	// New does not connect: an endpoint that is down costs dropped spans
	// (and a logged export error), never a failed start.
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	host, _ := os.Hostname()
	res := resource.NewSchemaless(
		attribute.String("service.name", cfg.ServiceName),
		attribute.String("service.version", cfg.Version),
		attribute.String("host.name", host),
		attribute.String("millrace.role", cfg.Role),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	return &Tracing{provider: tp, tracer: tp.Tracer(ScopeName), cfg: cfg}, nil
}

// Tracer is the tracer components take; nil when tracing is off.
func (t *Tracing) Tracer() trace.Tracer {
	if t == nil {
		return nil
	}
	return t.tracer
}

// Shutdown exports the spans still buffered and stops; safe on nil and
// twice.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// AccelArgs are the millrace-accel flags that make the accelerator child
// trace as the server does: export its spans to the same endpoint, or,
// tracing off, none (an empty endpoint overrides an OTLP variable the
// child would otherwise read from the environment it inherits).
func (t *Tracing) AccelArgs() []string {
	if t == nil {
		return []string{"-otlp-endpoint", ""}
	}
	return []string{"-otlp-endpoint", t.cfg.Endpoint, "-trace-sample-ratio", fmt.Sprint(t.cfg.SampleRatio)}
}

// propagator is W3C Trace Context: the traceparent header, and the same
// keys in the run job's arguments.
var propagator = propagation.TraceContext{}

// Inject returns ctx's span context as W3C trace-context fields
// (traceparent, tracestate), or nil when ctx carries no span: a run
// queued with tracing off stores nothing.
func Inject(ctx context.Context) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return nil
	}
	m := propagation.MapCarrier{}
	propagator.Inject(ctx, m)
	return m
}

// Extract returns ctx with the remote span context fields hold, to parent
// the spans started under it.
func Extract(ctx context.Context, fields map[string]string) context.Context {
	if len(fields) == 0 {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier(fields))
}

// End records err, if any, on span and ends it.
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Accel wraps the accelerator the tensor ABI calls with a client span per
// request; the accel client sends the span's traceparent, so the
// accelerator's own span joins the trace. What next offers beyond
// sandbox.Accel (pipeline files) stays offered. A nil tracer returns next.
func Accel(tracer trace.Tracer, next sandbox.Accel) sandbox.Accel {
	if tracer == nil {
		return next
	}
	a := &accelSpans{tracer: tracer, next: next}
	if files, ok := next.(sandbox.AccelFiles); ok {
		return &accelFilesSpans{accelSpans: a, files: files}
	}
	return a
}

type accelSpans struct {
	tracer trace.Tracer
	next   sandbox.Accel
}

func (a *accelSpans) LoadModel(ctx context.Context, name string) (*sandbox.AccelModel, error) {
	ctx, span := a.tracer.Start(ctx, "accel load", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(AttrModel.String(name)))
	m, err := a.next.LoadModel(ctx, name)
	End(span, err)
	return m, err
}

func (a *accelSpans) Infer(ctx context.Context, mod *sandbox.AccelModel, inputs []oip.Tensor) ([]oip.Tensor, error) {
	name := ""
	if mod != nil {
		name = mod.Name
	}
	ctx, span := a.tracer.Start(ctx, "accel infer", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(AttrModel.String(name)))
	out, err := a.next.Infer(ctx, mod, inputs)
	End(span, err)
	return out, err
}

type accelFilesSpans struct {
	*accelSpans
	files sandbox.AccelFiles
}

func (a *accelFilesSpans) ModelFile(ctx context.Context, model, path string) ([]byte, error) {
	return a.files.ModelFile(ctx, model, path)
}
