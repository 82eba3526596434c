// Package server wires Millrace together: storage, the sandbox engine, the
// module registry, the built-in modules and the HTTP API.
package server

import (
	"context"
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
	"github.com/millrace/millrace/server/builtin"
	"github.com/millrace/millrace/server/datasets"
	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/httpapi"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/secrets"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/postgres"
	"github.com/millrace/millrace/server/store/sqlite"
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
}

// Run starts the server and blocks until ctx is done, then shuts down
// gracefully.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.DataDir == "" {
		cfg.DataDir = "data"
	}
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("creating data directory: %w", err)
	}
	db, newQueue, err := openDatabase(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()

	key, err := secrets.LoadOrCreateKey(filepath.Join(cfg.DataDir, "secret.key"), cfg.SecretKey)
	if err != nil {
		return err
	}
	vault, err := secrets.New(key, db)
	if err != nil {
		return err
	}
	// The cache holds native code that the server will execute: keep it
	// private to the server's user.
	cacheDir := filepath.Join(cfg.DataDir, "cache")
	if err := os.MkdirAll(cacheDir, 0o700); err != nil {
		return err
	}
	wasm, err := sandbox.NewEngine(ctx, sandbox.EngineConfig{Kind: cfg.Engine, CacheDir: cacheDir, MaxMemoryMB: registryMaxMemory(cfg.Registry)})
	if err != nil {
		return fmt.Errorf("sandbox engine: %w", err)
	}
	defer wasm.Close(context.Background())
	reg := registry.New(cfg.Registry, db, wasm, vault)

	// The accelerator serves the registered models (its model directory
	// is written from the store before it starts); it stops after the
	// queue, once no invocation can use it.
	accelCfg := cfg.Accel
	accelCfg.Dir = filepath.Join(cfg.DataDir, "accel")
	supervisor := accel.New(accelCfg)
	models := accel.NewModels(db, supervisor)
	if err := models.Sync(ctx); err != nil {
		slog.Warn("writing the accelerator's model directory", "err", err)
	}
	if names := models.RegisterBundled(ctx); len(names) > 0 {
		slog.Info("registered the bundled models", "models", names)
	}
	if err := supervisor.Start(ctx); err != nil {
		return err
	}
	defer supervisor.Stop()
	reg.SetAccel(models)

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

	workflows := engine.NewWorkflows(db, reg)
	events := engine.NewBus(10_000)
	executor := engine.NewExecutor(db, reg)
	executor.Events = events
	if cfg.RunLeaseTTL > 0 {
		executor.LeaseTTL = cfg.RunLeaseTTL
	}
	executor.Limits = cfg.Limits
	queue, err := newQueue(ctx, executor)
	if err != nil {
		return err
	}
	if err := queue.Start(ctx); err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		queue.Stop(stopCtx)
	}()

	runs := engine.NewRuns(db, workflows, queue, events)
	runs.Limits = cfg.Limits
	policy := engine.DefaultRetention()
	if cfg.Retention != nil {
		policy = *cfg.Retention
	}
	retention := engine.NewRetention(db, policy, nil)
	if err := retention.Start(ctx); err != nil {
		return err
	}
	defer retention.Stop()
	// Triggers start after the queue, so that the runs they start (missed
	// cron ticks among them) are worked, and stop before it.
	triggers := trigger.New(db, runs, vault, trigger.Config{})
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

	var ready atomic.Bool
	handler := httpapi.Handler(&httpapi.Deps{Registry: reg, Workflows: workflows, Runs: runs, Tokens: tokens, Vault: vault, Store: db, Version: Version, Ready: &ready, Triggers: triggers, Accel: supervisor, Models: models, Datasets: sets, Audit: auditLog},
		reg.Config().MaxModuleBytes+(1<<20))
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("listening on %s: %w (set MILLRACE_ADDR or -addr to use another address)", cfg.Addr, err)
		}
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
	fmt.Fprintf(cfg.Out, "Millrace %s serving http://%s (API reference at /docs, data in %s)\n", Version, ln.Addr(), cfg.DataDir)

	go func() {
		// Built-in modules compile on first start (seconds); later starts
		// read compiled code from the cache. Serve meanwhile; /readyz
		// says when this is done.
		installed, err := builtin.Install(ctx, reg)
		if err != nil {
			slog.Error("installing built-in modules", "err", err)
		}
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
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// openDatabase opens the database cfg selects, and returns with it how to
// make the job queue on it: River keeps its tables in the same database,
// through the driver that matches.
func openDatabase(ctx context.Context, cfg Config) (store.Store, func(context.Context, *engine.Executor) (*engine.Queue, error), error) {
	if cfg.DatabaseURL != "" {
		db, err := postgres.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, nil, fmt.Errorf("%w (the database is the one -database-url or DATABASE_URL names; leave both empty for SQLite)", err)
		}
		slog.Info("database", "kind", "postgresql", "url", postgres.Redact(cfg.DatabaseURL))
		return db, func(ctx context.Context, exec *engine.Executor) (*engine.Queue, error) {
			var q *engine.Queue
			// River's migrator takes no lock of its own: servers starting
			// together must not both create its tables.
			err := db.WithMigrationLock(ctx, func(ctx context.Context) error {
				var err error
				q, err = engine.NewQueue(ctx, riverpgxv5.New(db.Pool()), exec, engine.QueueConfig{})
				return err
			})
			return q, err
		}, nil
	}
	path := filepath.Join(cfg.DataDir, "millrace.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	slog.Info("database", "kind", "sqlite", "path", path)
	return db, func(ctx context.Context, exec *engine.Executor) (*engine.Queue, error) {
		return engine.NewQueue(ctx, riversqlite.New(db.SQL()), exec, engine.QueueConfig{})
	}, nil
}

func registryMaxMemory(c registry.Config) int {
	if c.Max.MemoryMB > 0 {
		return c.Max.MemoryMB
	}
	return registry.DefaultConfig().Max.MemoryMB
}
