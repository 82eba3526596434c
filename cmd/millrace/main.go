// Command millrace is the Millrace server, its worker, and a command-line
// client of its REST API. `millrace help` lists the commands (the command
// table in main.go); docs/configuration.md lists the configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/tracing"
	// Cron triggers name IANA time zones; embed the database so they
	// work on machines without /usr/share/zoneinfo (containers).
	_ "time/tzdata"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "millrace:", err)
		os.Exit(1)
	}
}

// env is what a command gets besides its arguments: its output streams and
// how to read the environment (tests substitute it).
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// stdin is read by commands that take a file named "-".
	stdin io.Reader
}

// command is one entry of the command table: `millrace NAME ...`. Adding a
// subcommand is one line in commands.
type command struct {
	name    string
	args    string   // synopsis of the arguments, for usage
	summary string   // one line, for usage
	subs    []string // its own subcommands, for completion
	run     func(ctx context.Context, e *env, args []string) error
}

// commands is the command table, in the order usage lists it. It is
// filled in init: completion reads it, and so refers to it.
var commands []command

func init() {
	commands = []command{
		{name: "serve", args: "[-config FILE] [-addr ADDR] [-data DIR] [flags]", summary: "run the server: API, console, run workers and the accelerator child", run: serve},
		{name: "worker", args: "[-config FILE] [-worker-addr ADDR] [flags]", summary: "execute runs only, from a shared PostgreSQL (health and metrics on worker.addr)", run: worker},
		{name: "config", args: "print [-config FILE] [flags]", summary: "show the effective configuration, secrets masked, with each value's source", subs: []string{"print"}, run: configCmd},
		{name: "migrate", args: "up|down|status [-to N]", summary: "move the database schema (upgrade, rollback)", subs: []string{"up", "down", "status"}, run: migrate},
		{name: "module", args: "init|build|push", summary: "scaffold, build and upload a module", subs: []string{"init", "build", "push"}, run: moduleCmd},
		{name: "workflow", args: "apply|run", summary: "create or update a workflow from a file; start a run", subs: []string{"apply", "run"}, run: workflowCmd},
		{name: "runs", args: "list|get|logs [-follow]", summary: "list runs, show one, print or follow its events", subs: []string{"list", "get", "logs"}, run: runsCmd},
		{name: "token", args: "create|list|revoke", summary: "manage API tokens", subs: []string{"create", "list", "revoke"}, run: tokenCmd},
		{name: "backup", args: "create|restore (millrace backup -h)", summary: "end-to-end-encrypted backups of a data directory (README, Backups)", subs: []string{"create", "restore"}, run: withStreams(backupCmd)},
		{name: "secrets", args: "rotate-key -data DIR", summary: "re-encrypt every secret under a new key (server stopped)", subs: []string{"rotate-key"}, run: withStreams(secretsCmd)},
		{name: "user", args: "create -username NAME -role ROLE [-data DIR | -database-url URL]", summary: "create a console user (password on stdin)", subs: []string{"create"}, run: withStreams(user)},
		{name: "pack", args: "-manifest FILE -o OUT IN", summary: "embed manifest.json in a module as a custom section", run: func(ctx context.Context, e *env, args []string) error { return pack(args, e.stderr) }},
		{name: "healthcheck", args: "[-url URL]", summary: "exit 0 when a health URL answers 200 (container health checks)", run: healthcheck},
		{name: "completion", args: "bash|zsh|fish", summary: "print a shell completion script", subs: []string{"bash", "zsh", "fish"}, run: completion},
		{name: "version", summary: "print the version", run: func(ctx context.Context, e *env, args []string) error {
			fmt.Fprintln(e.stdout, "millrace", server.Version, "ABI", abi.Version)
			return nil
		}},
		{name: "help", summary: "print this help", run: func(ctx context.Context, e *env, args []string) error {
			printUsage(e.stdout)
			return nil
		}},
	}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: millrace COMMAND [ARGS]")
	fmt.Fprintln(w)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
		if c.args != "" {
			fmt.Fprintf(w, "  %-12s   millrace %s %s\n", "", c.name, c.args)
		}
	}
	fmt.Fprintln(w, "\nConfiguration: flags > environment > file (-config or $MILLRACE_CONFIG) > defaults;")
	fmt.Fprintln(w, "`millrace config print` shows it, docs/configuration.md lists every key.")
	fmt.Fprintln(w, "Client commands talk to $MILLRACE_URL with $MILLRACE_TOKEN (or ~/.config/millrace/cli.yaml).")
}

// Run executes one command line; main is only a shell around it, so the
// CLI is testable.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return run(ctx, &env{stdout: stdout, stderr: stderr, getenv: os.Getenv, stdin: os.Stdin}, args)
}

func run(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		printUsage(e.stderr)
		return errors.New("no command given")
	}
	name := args[0]
	if name == "-h" || name == "--help" {
		name = "help"
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, e, args[1:])
		}
	}
	printUsage(e.stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

// serverFlags parses a server command's flags into the effective
// configuration.
func serverFlags(name string, e *env, args []string) (Config, configSource, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	path := configFlags(fs)
	if err := fs.Parse(args); err != nil {
		return Config{}, nil, err
	}
	if fs.NArg() > 0 {
		return Config{}, nil, fmt.Errorf("%s takes no arguments (got %q)", name, fs.Args())
	}
	return loadConfig(fs, *path, e.getenv)
}

// serverConfig turns the file's shape into the server's.
func serverConfig(c Config, out io.Writer) server.Config {
	mode, _ := accel.ParseMode(c.Accel.Mode) // validated
	retention := engine.DefaultRetention()
	retention.MaxAge, retention.MaxRuns = time.Duration(c.Runs.Retention), c.Runs.RetentionCount
	headers, _ := parseHeaders(c.Tracing.Headers) // validated
	return server.Config{
		Addr: c.Server.Addr, DataDir: c.Server.Data, DatabaseURL: c.Database.URL, Engine: c.Server.Engine,
		SecretKey: c.Secrets.Key, Out: out,
		Accel:         accel.Config{Mode: mode, URL: c.Accel.URL, Token: c.Accel.Token, Binary: c.Accel.Bin, Library: c.Accel.ORTLib},
		RunLeaseTTL:   time.Duration(c.Runs.Lease),
		Limits:        engine.Limits{RunInputBytes: c.Limits.RunInputBytes, NodeInputBytes: c.Limits.NodeInputBytes, InlineBytes: c.Limits.InlineBytes},
		Retention:     &retention,
		ShutdownGrace: time.Duration(c.Server.ShutdownGrace),
		Workers:       c.Runs.Workers,
		MetricsToken:  c.Metrics.Token,
		TLS:           tlsConfig(c.TLS),
		Tracing:       tracing.Config{Endpoint: c.Tracing.OTLPEndpoint, SampleRatio: c.Tracing.SampleRatio, ServiceName: c.Tracing.ServiceName, Headers: headers},
	}
}

// tlsConfig is the server's HTTPS configuration; nil serves HTTP.
func tlsConfig(t TLSConfig) *server.TLSConfig {
	if t.Cert == "" && t.Key == "" && !t.SelfSigned {
		return nil
	}
	return &server.TLSConfig{CertFile: t.Cert, KeyFile: t.Key, SelfSigned: t.SelfSigned, Hosts: t.Hosts}
}

func serve(ctx context.Context, e *env, args []string) error {
	c, src, err := serverFlags("serve", e, args)
	if err != nil {
		return err
	}
	setupLogging(c.Log, e.stderr)
	if c.Server.PprofAddr != "" {
		if err := servePprof(ctx, c.Server.PprofAddr, e.stdout); err != nil {
			return err
		}
	}
	sc := serverConfig(c, e.stdout)
	if sc.Backup, err = backupSchedule(c.Backup, src); err != nil {
		return err
	}
	return server.Run(ctx, sc)
}

// withStreams adapts a command written against plain output streams.
func withStreams(run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) func(context.Context, *env, []string) error {
	return func(ctx context.Context, e *env, args []string) error { return run(ctx, args, e.stdout, e.stderr) }
}

func worker(ctx context.Context, e *env, args []string) error {
	c, _, err := serverFlags("worker", e, args)
	if err != nil {
		return err
	}
	if c.Database.URL == "" {
		return &FieldError{"worker", "database.url", "is empty (set it in the file, DATABASE_URL or -database-url): a worker needs PostgreSQL; SQLite is one process's database, and `millrace serve` already executes its runs"}
	}
	setupLogging(c.Log, e.stderr)
	sc := serverConfig(c, e.stdout)
	sc.Addr = c.Worker.Addr
	return server.RunWorker(ctx, sc)
}

func configCmd(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "print" {
		return errors.New("usage: millrace config print [-config FILE] [flags]")
	}
	c, src, err := serverFlags("config print", e, args[1:])
	if err != nil {
		return err
	}
	return printConfig(e.stdout, c, src)
}

// parseLevel reads log.level.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q: want debug, info, warn or error", s)
	}
	return l, nil
}

// setupLogging makes the process's default logger: text for people, JSON
// (one object a line, with run_id and node_id on run and node lines) for
// log collectors.
func setupLogging(c LogConfig, w io.Writer) {
	level, _ := parseLevel(c.Level) // validated
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	slog.SetDefault(slog.New(h))
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

// envOr returns the environment variable key, or def when it is unset.
func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
