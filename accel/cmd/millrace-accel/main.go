// Command millrace-accel is Millrace's accelerator service: ONNX Runtime
// behind the Open Inference Protocol v2. See accel/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/millrace/millrace/accel/modeldir"
	"github.com/millrace/millrace/accel/service"
	"github.com/millrace/millrace/accel/sessions"
	"github.com/millrace/millrace/accel/training"
)

// version is set at build time (-ldflags -X main.version=…).
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "millrace-accel:", err)
		os.Exit(1)
	}
}

// run parses args (with environment fallbacks from getenv), serves until
// ctx ends, and reports the listener's address on listening when given.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, listening chan<- net.Addr) error {
	fs := flag.NewFlagSet("millrace-accel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	listen := fs.String("listen", env("MILLRACE_ACCEL_LISTEN", "127.0.0.1:8089"), "`address`: host:port, or unix:/path/to.sock (env MILLRACE_ACCEL_LISTEN)")
	models := fs.String("models", env("MILLRACE_ACCEL_MODELS", "models"), "model `directory`: NAME/model.onnx (+ metadata.json) or NAME.onnx (env MILLRACE_ACCEL_MODELS)")
	ortLib := fs.String("ort-lib", env("MILLRACE_ORT_LIB", defaultLibrary()), "ONNX Runtime shared library `path` (env MILLRACE_ORT_LIB)")
	provider := fs.String("provider", env("MILLRACE_ACCEL_PROVIDER", "cpu"), "execution `provider`: cpu, cuda or tensorrt (env MILLRACE_ACCEL_PROVIDER)")
	device := fs.Int("device", 0, "GPU `id` for cuda and tensorrt")
	providerOpts := fs.String("provider-options", "", "`k=v,k=v` passed to the cuda/tensorrt provider, e.g. gpu_mem_limit=8589934592")
	intra := fs.Int("intra-op-threads", 0, "threads per session for one operator (0: one per core)")
	inter := fs.Int("inter-op-threads", 0, "threads per session across operators (0: ONNX Runtime's default)")
	idle := fs.Duration("idle-unload", 10*time.Minute, "unload a model unused this `long` (0: never)")
	maxBody := fs.Int64("max-body", service.DefaultMaxBodyBytes, "largest request body in `bytes`")
	token := fs.String("token", "", "bearer `token` required on every endpoint but health (env MILLRACE_ACCEL_TOKEN)")
	// OpenTelemetry's standard variable is the last fallback, unless the
	// SDK's off switch is set; a server passes its own choice as a flag.
	otelEndpoint := getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		otelEndpoint = ""
	}
	otlpEndpoint := fs.String("otlp-endpoint", env("MILLRACE_ACCEL_OTLP_ENDPOINT", otelEndpoint), "export traces over OTLP/HTTP to this base `URL`, such as http://localhost:4318; /v1/traces is appended (env MILLRACE_ACCEL_OTLP_ENDPOINT, then OTEL_EXPORTER_OTLP_ENDPOINT; empty: no tracing)")
	sampleRatio := fs.Float64("trace-sample-ratio", 1, "share of traces begun here that are recorded, 0 to 1 (a request carrying a traceparent follows its caller's decision)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *token == "" {
		*token = getenv("MILLRACE_ACCEL_TOKEN")
	}
	opts := map[string]string{}
	for _, kv := range strings.Split(*providerOpts, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("-provider-options: %q is not k=v", kv)
		}
		opts[k] = v
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	mgr := sessions.New(modeldir.New(*models), sessions.Config{
		LibraryPath: *ortLib, Provider: sessions.Provider(*provider), DeviceID: *device,
		ProviderOptions: opts, IntraOpThreads: *intra, InterOpThreads: *inter, IdleTimeout: *idle,
	})
	defer mgr.Close()
	if err := mgr.Ready(); err != nil {
		// Serve anyway: /v2/health/ready says what is wrong until it is fixed.
		log.Warn("not ready", "err", err)
	} else {
		log.Info("ONNX Runtime loaded", "version", sessions.RuntimeVersion(), "provider", *provider)
	}
	jobs := training.NewJobs(log)
	defer jobs.Close()
	tracer, stopTracing, err := startTracing(*otlpEndpoint, *sampleRatio)
	if err != nil {
		return err
	}
	// After the server's shutdown (deferred calls run last first), so the
	// spans of the last requests are sent.
	defer stopTracing()
	svc := service.New(mgr, service.Config{Token: *token, MaxBodyBytes: *maxBody, Version: version, Logger: log, Jobs: jobs, Tracer: tracer})

	ln, err := service.Listen(*listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: svc, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("serving the Open Inference Protocol v2", "listen", ln.Addr().String(), "models", *models, "auth", *token != "")
	if listening != nil {
		listening <- ln.Addr()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// defaultLibrary is the library `make accel-deps` fetched, looked for in
// the working directory and beside the binary (bin/../build/cache/…);
// failing both, the loader's search path.
func defaultLibrary() string {
	candidates := []string{sessions.DefaultLibraryPath}
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "..", sessions.DefaultLibraryPath))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			if abs, err := filepath.Abs(c); err == nil {
				return abs
			}
			return c
		}
	}
	return sessions.DefaultLibraryPath
}
