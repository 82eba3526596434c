package service

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// traced gives a request a server span, the child of the caller's span
// when the request carries a W3C traceparent (the Millrace server sends
// its node's), so the inference shows in the run's trace. Without a
// tracer it returns h itself.
func (s *Service) traced(op string, h http.HandlerFunc) http.HandlerFunc {
	tracer := s.cfg.Tracer
	if tracer == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, "accel.service "+op, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("millrace.model", r.PathValue("name")), attribute.String("http.route", r.Pattern)))
		defer span.End()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h(sw, r.WithContext(ctx))
		span.SetAttributes(attribute.Int("http.response.status_code", sw.status))
		if sw.status >= 400 {
			span.SetStatus(codes.Error, http.StatusText(sw.status))
		}
	}
}

// statusWriter remembers the status a handler wrote, for its span.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
