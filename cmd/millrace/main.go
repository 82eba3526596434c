// Command millrace is the Millrace server and its small toolbox.
//
//	millrace serve [-addr 127.0.0.1:8080] [-data ./data] [-database-url postgres://…] [-engine wazero|wasmtime]
//	millrace pack -manifest manifest.json -o out.wasm in.wasm
//	millrace version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/sandbox"
	// Cron triggers name IANA time zones; embed the database so they
	// work on machines without /usr/share/zoneinfo (containers).
	_ "time/tzdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "millrace:", err)
		os.Exit(1)
	}
}

const usage = `usage:
  millrace serve [-addr ADDR] [-data DIR] [-database-url URL] [-engine KIND] [-accel auto|on|off] [-accel-url URL]
                                             run the server (env: MILLRACE_ADDR, MILLRACE_DATA,
                                             DATABASE_URL, MILLRACE_ENGINE, MILLRACE_SECRET_KEY;
                                             MILLRACE_PPROF_ADDR serves Go's profiler on a
                                             loopback address; local AI: MILLRACE_ACCEL,
                                             MILLRACE_ACCEL_URL, MILLRACE_ACCEL_TOKEN,
                                             MILLRACE_ACCEL_BIN, MILLRACE_ORT_LIB)
  millrace pack -manifest FILE -o OUT IN     embed manifest.json in a module as a custom section
  millrace user create -username NAME -role ROLE
                                             create a console user (password on stdin; -data and
                                             -database-url as for serve)
  millrace version                           print the version
`

// Run executes one command line; main is only a shell around it, so the
// CLI is testable.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr)
	case "pack":
		return pack(args[1:], stderr)
	case "user":
		return user(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "millrace", server.Version, "ABI", abi.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr("MILLRACE_ADDR", "127.0.0.1:8080"), "listen address")
	data := fs.String("data", envOr("MILLRACE_DATA", "data"), "data directory (database, secret key, compiled-code cache)")
	// The env default is applied after parsing, not as the flag's default,
	// so that -h never prints a password.
	databaseURL := fs.String("database-url", "", "PostgreSQL URL, postgres://user:password@host/db (default $DATABASE_URL; empty keeps SQLite in the data directory)")
	engine := fs.String("engine", envOr("MILLRACE_ENGINE", sandbox.EngineWazero), fmt.Sprintf("sandbox engine: %s or %s (this binary has %s)", sandbox.EngineWazero, sandbox.EngineWasmtime, strings.Join(sandbox.EngineKinds(), ", ")))
	accelMode := fs.String("accel", envOr("MILLRACE_ACCEL", "auto"), "local AI: auto starts millrace-accel when it and the ONNX Runtime library are found, on requires them, off runs none")
	accelURL := fs.String("accel-url", envOr("MILLRACE_ACCEL_URL", ""), "a remote accelerator (millrace-accel, Triton, KServe: Open Inference Protocol v2) instead of a child; its token in MILLRACE_ACCEL_TOKEN")
	accelBin := fs.String("accel-bin", envOr("MILLRACE_ACCEL_BIN", ""), "the millrace-accel binary (default: beside this executable, then on PATH)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *databaseURL == "" {
		*databaseURL = os.Getenv("DATABASE_URL")
	}
	if err := sandbox.CheckEngine(*engine); err != nil {
		return fmt.Errorf("-engine %s: %w", *engine, err)
	}
	mode, err := accel.ParseMode(*accelMode)
	if err != nil {
		return fmt.Errorf("-accel / MILLRACE_ACCEL: %w", err)
	}
	cfg := server.Config{Addr: *addr, DataDir: *data, DatabaseURL: *databaseURL, Engine: *engine, SecretKey: os.Getenv("MILLRACE_SECRET_KEY"), Out: stdout,
		Accel: accel.Config{Mode: mode, URL: *accelURL, Token: os.Getenv("MILLRACE_ACCEL_TOKEN"), Binary: *accelBin}}
	if v := os.Getenv("MILLRACE_RUN_LEASE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return fmt.Errorf("MILLRACE_RUN_LEASE=%q: want a duration of at least 1s, such as 30s", v)
		}
		cfg.RunLeaseTTL = d
	}
	if err := retentionFromEnv(&cfg); err != nil {
		return err
	}
	if addr := os.Getenv("MILLRACE_PPROF_ADDR"); addr != "" {
		if err := servePprof(ctx, addr, stdout); err != nil {
			return err
		}
	}
	return server.Run(ctx, cfg)
}

// retentionFromEnv reads the run retention policy: MILLRACE_RUN_RETENTION
// (a duration; 0 keeps runs of any age) and MILLRACE_RUN_RETENTION_COUNT
// (finished runs kept per workflow; 0 keeps any number).
func retentionFromEnv(cfg *server.Config) error {
	age, count := os.Getenv("MILLRACE_RUN_RETENTION"), os.Getenv("MILLRACE_RUN_RETENTION_COUNT")
	if age == "" && count == "" {
		return nil
	}
	p := engine.DefaultRetention()
	if age != "" {
		d, err := time.ParseDuration(age)
		if err != nil || d < 0 {
			return fmt.Errorf("MILLRACE_RUN_RETENTION=%q: want a duration such as 720h (30 days), or 0 to keep runs of any age", age)
		}
		p.MaxAge = d
	}
	if count != "" {
		n, err := strconv.Atoi(count)
		if err != nil || n < 0 {
			return fmt.Errorf("MILLRACE_RUN_RETENTION_COUNT=%q: want a number of runs per workflow, or 0 to keep any number", count)
		}
		p.MaxRuns = n
	}
	cfg.Retention = &p
	return nil
}

func pack(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("pack", flag.ContinueOnError)
	fs.SetOutput(stderr)
	manifestPath := fs.String("manifest", "manifest.json", "the manifest to embed")
	out := fs.String("o", "", "output .wasm (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *out == "" {
		return errors.New("pack needs -o OUT and one input .wasm")
	}
	wasm, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	manifest, err := os.ReadFile(*manifestPath)
	if err != nil {
		return err
	}
	if _, err := abi.ParseManifest(manifest); err != nil {
		return fmt.Errorf("%s: %w", *manifestPath, err)
	}
	if _, has, err := abi.ManifestFromWasm(wasm); err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	} else if has {
		return fmt.Errorf("%s already carries a manifest", fs.Arg(0))
	}
	return os.WriteFile(*out, abi.AppendManifestSection(wasm, manifest), 0o644)
}
