package engine

import (
	"context"

	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/tracing"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// nodeSpan starts the span of one node attempt, under the run's span in
// ctx; without a tracer it returns ctx and a nil span.
func (x *Executor) nodeSpan(ctx context.Context, st *runState, n *Node, attempt int) (context.Context, trace.Span) {
	if x.Tracer == nil {
		return ctx, nil
	}
	return x.Tracer.Start(ctx, "node "+n.ID, trace.WithAttributes(tracing.AttrRunID.String(st.run.ID),
		tracing.AttrNodeID.String(n.ID), tracing.AttrModule.String(n.Module), tracing.AttrAttempt.Int(attempt)))
}

// endNodeSpan records how the attempt went and ends its span.
func endNodeSpan(span trace.Span, res *sandbox.Result, err error) {
	if span == nil {
		return
	}
	if err == nil && res.Failure != nil {
		span.SetAttributes(attribute.String("millrace.failure", string(res.Failure.Kind)))
		err = res.Failure
	}
	tracing.End(span, err)
}
