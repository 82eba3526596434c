// Package server wires Millrace together: storage, the sandbox engine, the
// module registry, the built-in modules and the HTTP API.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/audit"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/backup"
	"github.com/millrace/millrace/server/builtin"
	"github.com/millrace/millrace/server/datasets"
	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/httpapi"
	"github.com/millrace/millrace/server/metrics"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/secrets"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/postgres"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/millrace/millrace/server/tracing"
	"github.com/millrace/millrace/server/training"
	"github.com/millrace/millrace/server/trigger"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
)

// Version is the server's version, set at build time with -ldflags.
var Version = "0.1.0-dev"

// Config is everything `millrace serve` can be told.
type Config struct {
	Addr      string // listen address, default 127.0.0.1:8080
	DataDir   string // database, secret key and compiled-code cache
	SecretKey string // base64 AES-256 key; empty means DataDir/secret.key
	// DatabaseURL, if set, selects PostgreSQL (a postgres:// URL) instead
	// of the SQLite file in DataDir. Several servers may share one.
	DatabaseURL string
	// Engine is the sandbox engine: sandbox.EngineWazero (the default when
	// empty) or sandbox.EngineWasmtime, which needs a binary built with
	// -tags wasmtime.
	Engine   string
	Registry registry.Config
	// Out receives the one-time admin token and start-up messages.
	Out io.Writer
	// Listener, if set, is used instead of listening on Addr (tests).
	Listener net.Listener
	// Ready, if set, is called once the server serves and its built-in
	// modules are installed.
	Ready func(addr string)
	// RunLeaseTTL bounds how long a run whose worker died waits before it
	// resumes; default 30 s.
	RunLeaseTTL time.Duration
	// Limits cap run and node inputs and decide which values are stored
	// as artifacts; zero fields take engine.DefaultLimits.
	Limits engine.Limits
	// Retention says which finished runs are kept; nil means
	// engine.DefaultRetention (30 days, 1000 runs per workflow).
	Retention *engine.RetentionPolicy
	// Accel says whether and where the accelerator runs; the zero value
	// starts a millrace-accel child when its binary and the ONNX Runtime
	// library are found. Its Dir is always DataDir/accel.
	Accel accel.Config
	// Datasets sets the limits of dataset imports; its Dir is always
	// DataDir/datasets.
	Datasets datasets.Config
	// Backup schedules backups to a folder; the zero value makes none.
	// POST /v1/backups works either way.
	Backup backup.Schedule
	// TLS, if set, serves HTTPS (see TLSConfig).
	TLS *TLSConfig
	// ShutdownGrace is how long, once ctx ends, requests and nodes in
	// flight may take to finish before they are cut off and their runs
	// handed back; default 30 s.
	ShutdownGrace time.Duration
	// Workers is how many runs this process executes at once; default 64.
	Workers int
	// MetricsToken, if set, is a bearer token that lets non-loopback
	// clients scrape /metrics (an API token with metrics:read does too).
	MetricsToken string
	// Tracing exports OpenTelemetry traces (trigger → run → node →
	// accelerator) when its Endpoint is set; the zero value exports none.
	Tracing tracing.Config
}

// Run starts the server and blocks until ctx is done, then shuts down
// gracefully: it stops accepting requests and jobs, lets the nodes
// executing now finish within cfg.ShutdownGrace, and hands the rest back
// (see engine.Queue.Stop).
func Run(ctx context.Context, cfg Config) error {
	cfg = withDefaults(cfg)
	c, err := openCore(ctx, cfg, "serve")
	if err != nil {
		return err
	}
	defer c.close()
	db, reg, supervisor, models, vault := c.db, c.reg, c.supervisor, c.models, c.vault
	// TLS is checked before anything serves: a wrong certificate path
	// fails at start.
	var tlsCfg *tls.Config
	if cfg.TLS != nil {
		addr := cfg.Addr
		if cfg.Listener != nil {
			addr = cfg.Listener.Addr().String()
		}
		var fingerprint string
		if tlsCfg, fingerprint, err = cfg.TLS.serverTLS(cfg.DataDir, addr); err != nil {
			return err
		}
		fmt.Fprintf(cfg.Out, "TLS certificate SHA-256 fingerprint: %s\n", fingerprint)
	}
	// Rotation is for the key file; a key from the environment is
	// rotated where it is kept.
	keyPath := filepath.Join(cfg.DataDir, "secret.key")
	var rotateKey func(context.Context) (int, error)
	if cfg.SecretKey == "" {
		if resumed, n, err := secrets.ResumeRotation(ctx, vault, keyPath); err != nil {
			return err
		} else if resumed {
			slog.Info("finished an interrupted secret-key rotation", "reencrypted", n)
		}
		rotateKey = func(ctx context.Context) (int, error) { return secrets.RotateKeyFile(ctx, vault, keyPath) }
	}

	tokens := auth.New(db)
	adminToken, err := tokens.Bootstrap(ctx)
	if err != nil {
		return err
	}
	if adminToken != "" {
		fmt.Fprintf(cfg.Out, "\nMillrace created the admin user and an API token for it. The token is shown only this once; keep it safe:\n\n    %s\n\n"+
			"Sign in to the console with it, or give the admin a password (PATCH /v1/users/{id}), or create a console user with `millrace user create`.\n\n", adminToken)
	}
	auditLog := audit.New(db)

	// Datasets live on this server's disk. The sweep removes what a crash
	// left mid-import or mid-delete; on a shared PostgreSQL another server
	// may be importing into a shared folder, so it spares recent entries.
	dsCfg := cfg.Datasets
	dsCfg.Dir = filepath.Join(cfg.DataDir, "datasets")
	sets := datasets.New(db, dsCfg)
	grace := time.Duration(0)
	if cfg.DatabaseURL != "" {
		grace = 15 * time.Minute
	}
	if removed, err := sets.Sweep(ctx, grace); err != nil {
		slog.Warn("sweeping unfinished dataset imports", "err", err)
	} else if len(removed) > 0 {
		slog.Info("removed unfinished dataset imports", "paths", removed)
	}

	// Training jobs run on the accelerator child and read dataset
	// versions from the data dir; their drivers stop before the child.
	trainer := training.New(db, supervisor, models, sets, training.Config{Dir: filepath.Join(cfg.DataDir, "training")})
	sets.InUse = trainer.InUse
	if err := trainer.Start(ctx); err != nil {
		return err
	}
	defer trainer.Stop()

	if err := c.startQueue(ctx); err != nil {
		return err
	}
	runs := c.runs
	retention := engine.NewRetention(db, retentionPolicy(cfg), nil)
	if err := retention.Start(ctx); err != nil {
		return err
	}
	defer retention.Stop()
	// Triggers start after the queue, so that the runs they start (missed
	// cron ticks among them) are worked, and stop before it.
	triggers := trigger.New(db, runs, vault, trigger.Config{Tracer: c.tracing.Tracer()})
	follower := trigger.NewFollower(triggers)
	if err := follower.Start(ctx); err != nil {
		return err
	}
	defer follower.Stop()
	scheduler := trigger.NewScheduler(triggers, trigger.SchedulerConfig{})
	if err := scheduler.Start(ctx); err != nil {
		return err
	}
	defer scheduler.Stop()

	backups := backup.NewService(backup.Source{DataDir: cfg.DataDir, DB: db, ServerVersion: Version}, cfg.Backup)
	backups.Audit = auditLog
	if err := backups.Start(ctx); err != nil {
		return err
	}
	defer backups.Stop()

	var ready atomic.Bool
	api := httpapi.Handler(&httpapi.Deps{Registry: reg, Workflows: c.workflows, Runs: runs, Tokens: tokens, Vault: vault, Store: db, Version: Version, Ready: &ready, Triggers: triggers, Accel: supervisor, Models: models, Datasets: sets, Training: trainer, Audit: auditLog, Backups: backups, RotateKey: rotateKey, Tracer: c.tracing.Tracer()},
		reg.Config().MaxModuleBytes+(1<<20))
	metricsHandler := c.metrics.Handler(metrics.Guard{Token: cfg.MetricsToken, Authorize: func(ctx context.Context, authz string) bool {
		tok, err := tokens.Verify(ctx, authz)
		return err == nil && auth.Has(tok, auth.ScopeMetricsRead)
	}})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" && r.Method == http.MethodGet {
			metricsHandler.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("listening on %s: %w (set MILLRACE_ADDR or -addr to use another address)", cfg.Addr, err)
		}
	}
	scheme := "http"
	if tlsCfg != nil {
		ln, scheme = tls.NewListener(ln, tlsCfg), "https"
	}
	maxTimeout := time.Duration(reg.Config().Max.TimeoutMS) * time.Millisecond
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute, // large uploads on slow links
		WriteTimeout:      maxTimeout + time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(cfg.Out, "Millrace %s serving %s://%s (API reference at /docs, data in %s)\n", Version, scheme, ln.Addr(), cfg.DataDir)

	go func() {
		// Built-in modules compile on first start (seconds); later starts
		// read compiled code from the cache. Serve meanwhile; /readyz
		// says when this is done.
		installed, kept, err := builtin.Install(ctx, reg)
		if err != nil {
			slog.Error("installing built-in modules", "err", err)
		}
		logKeptBuiltins(kept)
		if err := reg.Warm(ctx); err != nil {
			slog.Warn("compiling stored modules", "err", err)
		}
		ready.Store(true)
		slog.Info("ready", "builtin_modules", installed)
		if cfg.Ready != nil {
			cfg.Ready(ln.Addr().String())
		}
	}()

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	// One grace period for everything: requests in flight (a synchronous
	// webhook waits for its run) and nodes in flight finish together.
	// A string: JSON logs would show a duration as nanoseconds.
	slog.Info("shutting down", "grace", cfg.ShutdownGrace.String())
	graceCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Shutdown(graceCtx) }()
	scheduler.Stop()
	follower.Stop()
	c.stopQueue(graceCtx)
	if err := <-httpDone; err != nil {
		// Streams (logs followed live) stay open until the end: close them.
		srv.Close()
	}
	slog.Info("stopped")
	return nil
}

// RunWorker starts a worker: it executes runs from the shared queue (with
// the recovery and cron loops) and serves only /healthz, /readyz and
// /metrics on cfg.Addr; the API is the servers'. It needs PostgreSQL:
// SQLite is one process's database. It blocks until ctx is done, then
// shuts down as Run does.
func RunWorker(ctx context.Context, cfg Config) error {
	if cfg.DatabaseURL == "" {
		return errors.New("a worker needs PostgreSQL (database.url, -database-url or DATABASE_URL): SQLite is one process's database, and `millrace serve` already executes its runs")
	}
	cfg = withDefaults(cfg)
	c, err := openCore(ctx, cfg, "worker")
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.startQueue(ctx); err != nil {
		return err
	}
	retention := engine.NewRetention(c.db, retentionPolicy(cfg), nil)
	if err := retention.Start(ctx); err != nil {
		return err
	}
	defer retention.Stop()
	// Cron ticks are claimed in the store, so every process may run the
	// scheduler: a tick starts one run whoever claims it.
	scheduler := trigger.NewScheduler(trigger.New(c.db, c.runs, c.vault, trigger.Config{Tracer: c.tracing.Tracer()}), trigger.SchedulerConfig{})
	if err := scheduler.Start(ctx); err != nil {
		return err
	}
	defer scheduler.Stop()

	var ready atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := c.db.Ping(r.Context()); err != nil || !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"status":"starting"}`))
			return
		}
		w.Write([]byte(`{"status":"ready"}`))
	})
	tokens := auth.New(c.db)
	mux.Handle("GET /metrics", c.metrics.Handler(metrics.Guard{Token: cfg.MetricsToken, Authorize: func(ctx context.Context, authz string) bool {
		tok, err := tokens.Verify(ctx, authz)
		return err == nil && auth.Has(tok, auth.ScopeMetricsRead)
	}}))
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("listening on %s: %w (set worker.addr, MILLRACE_WORKER_ADDR or -worker-addr to use another address)", cfg.Addr, err)
		}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	fmt.Fprintf(cfg.Out, "Millrace %s worker: health and metrics on http://%s\n", Version, ln.Addr())
	go func() {
		_, kept, err := builtin.Install(ctx, c.reg)
		if err != nil {
			slog.Error("installing built-in modules", "err", err)
		}
		logKeptBuiltins(kept)
		if err := c.reg.Warm(ctx); err != nil {
			slog.Warn("compiling stored modules", "err", err)
		}
		ready.Store(true)
		slog.Info("ready")
		if cfg.Ready != nil {
			cfg.Ready(ln.Addr().String())
		}
	}()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	slog.Info("shutting down", "grace", cfg.ShutdownGrace.String())
	graceCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace)
	defer cancel()
	scheduler.Stop()
	c.stopQueue(graceCtx)
	srv.Close()
	slog.Info("stopped")
	return nil
}

func withDefaults(cfg Config) Config {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "data"
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 30 * time.Second
	}
	return cfg
}

func retentionPolicy(cfg Config) engine.RetentionPolicy {
	if cfg.Retention != nil {
		return *cfg.Retention
	}
	return engine.DefaultRetention()
}

// core is what serve and worker share: storage, secrets, the sandbox, the
// module registry, the accelerator and the run queue.
type core struct {
	db         store.Store
	vault      *secrets.Vault
	reg        *registry.Registry
	supervisor *accel.Supervisor
	models     *accel.Models
	workflows  *engine.Workflows
	executor   *engine.Executor
	queue      *engine.Queue
	runs       *engine.Runs
	metrics    *metrics.Metrics
	tracing    *tracing.Tracing // nil: tracing off
	closers    []func()
	started    bool
}

func openCore(ctx context.Context, cfg Config, role string) (c *core, err error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data directory: %w", err)
	}
	c = &core{metrics: metrics.New(role)}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	tc := cfg.Tracing
	tc.Role, tc.Version = role, Version
	if c.tracing, err = tracing.Start(tc); err != nil {
		return c, err
	}
	// The first closer runs last: the spans of the runs the queue
	// finishes while stopping are exported.
	c.closers = append(c.closers, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.tracing.Shutdown(ctx); err != nil {
			slog.Warn("exporting the last spans", "err", err)
		}
	})
	if c.tracing != nil {
		slog.Info("tracing", "otlp_endpoint", cfg.Tracing.Endpoint, "sample_ratio", cfg.Tracing.SampleRatio)
	}
	db, newQueue, queueDepth, err := openDatabase(ctx, cfg)
	if err != nil {
		return c, err
	}
	c.db = db
	c.closers = append(c.closers, func() { db.Close() })
	c.metrics.QueueDepth(queueDepth, role)
	// The run path goes through the timed store; everything else through
	// db itself.
	timed := c.metrics.Store(db)

	key, err := secrets.LoadOrCreateKey(filepath.Join(cfg.DataDir, "secret.key"), cfg.SecretKey)
	if err != nil {
		return c, err
	}
	if c.vault, err = secrets.New(key, db); err != nil {
		return c, err
	}
	// The cache holds native code that the server will execute: keep it
	// private to the server's user.
	cacheDir := filepath.Join(cfg.DataDir, "cache")
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return c, err
	}
	wasm, err := sandbox.NewEngine(ctx, sandbox.EngineConfig{Kind: cfg.Engine, CacheDir: cacheDir, MaxMemoryMB: registryMaxMemory(cfg.Registry)})
	if err != nil {
		return c, fmt.Errorf("sandbox engine: %w", err)
	}
	c.closers = append(c.closers, func() { wasm.Close(context.Background()) })
	c.reg = registry.New(cfg.Registry, timed, wasm, c.vault)

	// The accelerator serves the registered models (its model directory
	// is written from the store before it starts); it stops after the
	// queue, once no invocation can use it.
	accelCfg := cfg.Accel
	accelCfg.Dir = filepath.Join(cfg.DataDir, "accel")
	accelCfg.Args = append(accelCfg.Args, c.tracing.AccelArgs()...)
	c.supervisor = accel.New(accelCfg)
	c.models = accel.NewModels(db, c.supervisor)
	if err := c.models.Sync(ctx); err != nil {
		slog.Warn("writing the accelerator's model directory", "err", err)
	}
	if names := c.models.RegisterBundled(ctx); len(names) > 0 {
		slog.Info("registered the bundled models", "models", names)
	}
	if err := c.supervisor.Start(ctx); err != nil {
		return c, err
	}
	c.closers = append(c.closers, c.supervisor.Stop)
	c.reg.SetAccel(tracing.Accel(c.tracing.Tracer(), c.metrics.Accel(c.models)))

	c.workflows = engine.NewWorkflows(db, c.reg)
	events := engine.NewBus(10_000)
	c.executor = engine.NewExecutor(timed, c.metrics.Invoker(c.reg))
	c.executor.Events = events
	c.executor.Observer = c.metrics
	c.executor.Tracer = c.tracing.Tracer()
	if cfg.RunLeaseTTL > 0 {
		c.executor.LeaseTTL = cfg.RunLeaseTTL
	}
	c.executor.Limits = cfg.Limits
	if c.queue, err = newQueue(ctx, c.executor, engine.QueueConfig{Workers: cfg.Workers, Tracer: c.tracing.Tracer()}); err != nil {
		return c, err
	}
	c.runs = engine.NewRuns(timed, c.workflows, c.queue, events)
	c.runs.Limits = cfg.Limits
	return c, nil
}

// logKeptBuiltins says which built-in modules this data directory keeps
// from an earlier build (see builtin.Install).
func logKeptBuiltins(kept []string) {
	if len(kept) > 0 {
		slog.Warn("built-in modules kept as first installed: this build's copy of the same version differs (versions are immutable; workflows keep running what they ran)", "modules", kept)
	}
}

// startQueue starts working runs; close (or stopQueue) stops it.
func (c *core) startQueue(ctx context.Context) error {
	if err := c.queue.Start(ctx); err != nil {
		return err
	}
	c.started = true
	return nil
}

// stopQueue drains the queue within ctx (see engine.Queue.Stop).
func (c *core) stopQueue(ctx context.Context) {
	if !c.started {
		return
	}
	c.started = false
	if err := c.queue.Stop(ctx); err != nil {
		slog.Warn("stopping the run queue", "err", err)
	}
}

// close stops what openCore and startQueue started, in reverse order.
func (c *core) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.stopQueue(ctx)
	for i := len(c.closers) - 1; i >= 0; i-- {
		c.closers[i]()
	}
}

// openDatabase opens the database cfg selects, and returns with it how to
// make the job queue on it: River keeps its tables in the same database,
// through the driver that matches.
func openDatabase(ctx context.Context, cfg Config) (store.Store, func(context.Context, *engine.Executor, engine.QueueConfig) (*engine.Queue, error), func(context.Context) (map[string]int64, error), error) {
	if cfg.DatabaseURL != "" {
		db, err := postgres.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w (the database is the one -database-url or DATABASE_URL names; leave both empty for SQLite)", err)
		}
		slog.Info("database", "kind", "postgresql", "url", postgres.Redact(cfg.DatabaseURL))
		depth := func(ctx context.Context) (map[string]int64, error) {
			rows, err := db.Pool().Query(ctx, queueDepthSQL)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			return scanDepth(rows)
		}
		return db, func(ctx context.Context, exec *engine.Executor, qc engine.QueueConfig) (*engine.Queue, error) {
			var q *engine.Queue
			// River's migrator takes no lock of its own: servers starting
			// together must not both create its tables.
			err := db.WithMigrationLock(ctx, func(ctx context.Context) error {
				var err error
				q, err = engine.NewQueue(ctx, riverpgxv5.New(db.Pool()), exec, qc)
				return err
			})
			return q, err
		}, depth, nil
	}
	path := filepath.Join(cfg.DataDir, "millrace.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, nil, nil, err
	}
	slog.Info("database", "kind", "sqlite", "path", path)
	depth := func(ctx context.Context) (map[string]int64, error) {
		rows, err := db.SQL().QueryContext(ctx, queueDepthSQL)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		return scanDepth(rows)
	}
	return db, func(ctx context.Context, exec *engine.Executor, qc engine.QueueConfig) (*engine.Queue, error) {
		return engine.NewQueue(ctx, riversqlite.New(db.SQL()), exec, qc)
	}, depth, nil
}

// scanDepth reads queueDepthSQL's rows, from either database's driver.
func scanDepth(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
}) (map[string]int64, error) {
	out := map[string]int64{}
	for rows.Next() {
		var state string
		var n int64
		if err := rows.Scan(&state, &n); err != nil {
			return nil, err
		}
		out[state] = n
	}
	return out, rows.Err()
}

// queueDepthSQL counts River's unfinished jobs by state, for the
// millrace_queue_jobs gauge; the same SQL on both databases.
const queueDepthSQL = `SELECT state, count(*) FROM river_job WHERE state IN ('available', 'running', 'scheduled', 'retryable') GROUP BY state`

func registryMaxMemory(c registry.Config) int {
	if c.Max.MemoryMB > 0 {
		return c.Max.MemoryMB
	}
	return registry.DefaultConfig().Max.MemoryMB
}
