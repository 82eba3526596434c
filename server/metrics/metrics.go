// Package metrics is the server's Prometheus instrumentation: run, node,
// sandbox, accelerator, queue and store metrics on a registry of its own
// (one per server, so that several servers in one test process do not
// collide), served at /metrics.
package metrics

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors. Its methods are safe for concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	runsFinished   *prometheus.CounterVec
	runsInFlight   prometheus.Gauge
	nodeDuration   *prometheus.HistogramVec
	instantiations *prometheus.CounterVec
	failures       *prometheus.CounterVec
	accelLatency   *prometheus.HistogramVec
	accelErrors    *prometheus.CounterVec
	storeLatency   *prometheus.HistogramVec
}

// New returns metrics registered on a fresh registry, with Go's runtime
// and process collectors beside them. role ("serve" or "worker") is a
// constant label, so that dashboards can tell the processes apart.
func New(role string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := prometheus.WrapRegistererWith(prometheus.Labels{"role": role}, reg)
	m := &Metrics{
		Registry: reg,
		runsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "millrace_runs_finished_total", Help: "Runs this process finished, by final status (succeeded, failed, canceled).",
		}, []string{"status"}),
		runsInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "millrace_runs_in_flight", Help: "Runs executing in this process now.",
		}),
		nodeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "millrace_node_duration_seconds", Help: "Module invocations (one per node attempt), by module and outcome (ok, or the failure kind).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1 ms .. ~4.4 min
		}, []string{"module", "outcome"}),
		instantiations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "millrace_sandbox_instantiations_total", Help: "Sandbox instances started (each invocation gets a fresh one), by module.",
		}, []string{"module"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "millrace_sandbox_failures_total", Help: "Failed invocations by reason: the sandbox's failure kind (timeout, memory_limit, trap, ...) or invoke (refused before it started).",
		}, []string{"reason"}),
		accelLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "millrace_accel_request_duration_seconds", Help: "Requests to the accelerator, by operation (load, infer).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"op"}),
		accelErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "millrace_accel_errors_total", Help: "Accelerator requests that failed, by operation and reason (not_found, busy, invalid_argument, other).",
		}, []string{"op", "reason"}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "millrace_store_operation_duration_seconds", Help: "Store operations on the run path, by class (read, write, lease).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9), // 0.1 ms .. 6.5 s
		}, []string{"op"}),
	}
	f.MustRegister(m.runsFinished, m.runsInFlight, m.nodeDuration, m.instantiations, m.failures, m.accelLatency, m.accelErrors, m.storeLatency)
	return m
}

// RunStarted, RunStopped and RunFinished make Metrics an
// engine.RunObserver.
func (m *Metrics) RunStarted() { m.runsInFlight.Inc() }

// RunStopped is called when an execution ends, finished or not.
func (m *Metrics) RunStopped() { m.runsInFlight.Dec() }

// RunFinished counts a run's final status.
func (m *Metrics) RunFinished(status string) { m.runsFinished.WithLabelValues(status).Inc() }

// QueueDepth registers a gauge of River's jobs by state (available,
// running, scheduled, retryable), read from the database at scrape time by
// count.
func (m *Metrics) QueueDepth(count func(ctx context.Context) (map[string]int64, error), role string) {
	prometheus.WrapRegistererWith(prometheus.Labels{"role": role}, m.Registry).MustRegister(&queueCollector{count: count,
		desc: prometheus.NewDesc("millrace_queue_jobs", "River jobs by state (available: waiting for a worker; running: being worked).", []string{"state"}, nil)})
}

type queueCollector struct {
	count func(ctx context.Context) (map[string]int64, error)
	desc  *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, state := range []string{"available", "running", "scheduled", "retryable"} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[state]), state)
	}
}

// Invoker is what the engine invokes modules through.
type Invoker interface {
	Invoke(ctx context.Context, req registry.InvokeRequest) (*sandbox.Result, *registry.Version, error)
}

type invoker struct {
	next Invoker
	m    *Metrics
}

// Invoker wraps next so that each invocation is timed and counted.
func (m *Metrics) Invoker(next Invoker) Invoker { return &invoker{next, m} }

func (i *invoker) Invoke(ctx context.Context, req registry.InvokeRequest) (*sandbox.Result, *registry.Version, error) {
	start := time.Now()
	res, v, err := i.next.Invoke(ctx, req)
	outcome := "ok"
	switch {
	case err != nil:
		outcome = "invoke" // refused before an instance started
	case res.Failure != nil:
		outcome = string(res.Failure.Kind)
	}
	if err == nil {
		i.m.instantiations.WithLabelValues(req.ModuleID).Inc()
	}
	if outcome != "ok" {
		i.m.failures.WithLabelValues(outcome).Inc()
	}
	i.m.nodeDuration.WithLabelValues(req.ModuleID, outcome).Observe(time.Since(start).Seconds())
	return res, v, err
}

type accelObserver struct {
	next sandbox.Accel
	m    *Metrics
}

// Accel wraps the accelerator the tensor ABI calls so that its requests
// are timed and its errors counted.
func (m *Metrics) Accel(next sandbox.Accel) sandbox.Accel { return &accelObserver{next, m} }

func (a *accelObserver) LoadModel(ctx context.Context, name string) (*sandbox.AccelModel, error) {
	start := time.Now()
	mod, err := a.next.LoadModel(ctx, name)
	a.m.observeAccel("load", start, err)
	return mod, err
}

func (a *accelObserver) Infer(ctx context.Context, mod *sandbox.AccelModel, inputs []oip.Tensor) ([]oip.Tensor, error) {
	start := time.Now()
	out, err := a.next.Infer(ctx, mod, inputs)
	a.m.observeAccel("infer", start, err)
	return out, err
}

func (m *Metrics) observeAccel(op string, start time.Time, err error) {
	m.accelLatency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err == nil {
		return
	}
	reason := "other"
	switch {
	case errors.Is(err, sandbox.ErrModelNotFound):
		reason = "not_found"
	case errors.Is(err, sandbox.ErrAccelBusy):
		reason = "busy"
	case errors.Is(err, sandbox.ErrAccelInput):
		reason = "invalid_argument"
	}
	m.accelErrors.WithLabelValues(op, reason).Inc()
}

// Guard decides who may scrape: a loopback client always may (a local
// Prometheus or an operator's curl); anyone else must present token as a
// bearer token, or a value authorize accepts (an API token with
// metrics:read). With neither configured, only loopback clients scrape.
type Guard struct {
	Token     string
	Authorize func(ctx context.Context, authorization string) bool
}

// Handler serves the registry's metrics behind g.
func (m *Metrics) Handler(g Guard) http.Handler {
	h := promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.allows(r) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.Header().Set("WWW-Authenticate", `Bearer realm="millrace-metrics"`)
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"title":"Unauthorized","status":401,"detail":"/metrics answers loopback clients; others send Authorization: Bearer <metrics.token>, or an API token with the metrics:read scope"}`))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (g Guard) allows(r *http.Request) bool {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			return true
		}
	}
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return false
	}
	if scheme, tok, ok := strings.Cut(authz, " "); g.Token != "" && ok && strings.EqualFold(scheme, "Bearer") && constantTimeEqual(strings.TrimSpace(tok), g.Token) {
		return true
	}
	return g.Authorize != nil && g.Authorize(r.Context(), authz)
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
