package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/store/postgres"
	"github.com/millrace/millrace/server/tracing"
	"go.yaml.in/yaml/v3"
)

// Config is the server's configuration file (millrace.yaml), and the
// effective configuration once environment variables and flags are
// applied: flags win over the environment, which wins over the file, which
// wins over the defaults. Every leaf has an entry in settings below, which
// names its environment variable and flag.
type Config struct {
	Server   ServerConfig   `yaml:"server"`
	Database DatabaseConfig `yaml:"database"`
	Secrets  SecretsConfig  `yaml:"secrets"`
	Accel    AccelConfig    `yaml:"accel"`
	Runs     RunsConfig     `yaml:"runs"`
	Limits   LimitsConfig   `yaml:"limits"`
	Log      LogConfig      `yaml:"log"`
	Metrics  MetricsConfig  `yaml:"metrics"`
	Worker   WorkerConfig   `yaml:"worker"`
	TLS      TLSConfig      `yaml:"tls"`
	Backup   BackupConfig   `yaml:"backup"`
	Tracing  TracingConfig  `yaml:"tracing"`
}

// ServerConfig is how `millrace serve` listens.
type ServerConfig struct {
	Addr          string   `yaml:"addr"`
	Data          string   `yaml:"data"`
	Engine        string   `yaml:"engine"`
	ShutdownGrace Duration `yaml:"shutdown_grace"`
	PprofAddr     string   `yaml:"pprof_addr"`
}

// DatabaseConfig selects PostgreSQL; an empty URL keeps SQLite in the data
// directory.
type DatabaseConfig struct {
	URL string `yaml:"url"`
}

// SecretsConfig holds the key that encrypts secrets at rest.
type SecretsConfig struct {
	Key string `yaml:"key"`
}

// AccelConfig says whether and where the accelerator runs.
type AccelConfig struct {
	Mode   string `yaml:"mode"`
	URL    string `yaml:"url"`
	Token  string `yaml:"token"`
	Bin    string `yaml:"bin"`
	ORTLib string `yaml:"ort_lib"`
}

// RunsConfig tunes run execution and retention.
type RunsConfig struct {
	Lease          Duration `yaml:"lease"`
	Workers        int      `yaml:"workers"`
	Retention      Duration `yaml:"retention"`
	RetentionCount int      `yaml:"retention_count"`
}

// LimitsConfig caps the values that flow through runs (bytes).
type LimitsConfig struct {
	RunInputBytes  int64 `yaml:"run_input_bytes"`
	NodeInputBytes int64 `yaml:"node_input_bytes"`
	InlineBytes    int64 `yaml:"inline_bytes"`
}

// LogConfig shapes the server's log.
type LogConfig struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// MetricsConfig protects /metrics: loopback clients may always scrape;
// others need this bearer token (or an API token with metrics:read).
type MetricsConfig struct {
	Token string `yaml:"token"`
}

// WorkerConfig is how `millrace worker` serves its health and metrics.
type WorkerConfig struct {
	Addr string `yaml:"addr"`
}

// TLSConfig makes `millrace serve` speak HTTPS: a certificate and key,
// or a self-signed certificate kept in the data directory.
type TLSConfig struct {
	Cert       string   `yaml:"cert"`
	Key        string   `yaml:"key"`
	SelfSigned bool     `yaml:"self_signed"`
	Hosts      []string `yaml:"hosts"`
}

// BackupConfig schedules encrypted backups of the server into a folder.
type BackupConfig struct {
	Dir            string   `yaml:"dir"`
	Interval       Duration `yaml:"interval"`
	Keep           int      `yaml:"keep"`
	RecipientsFile string   `yaml:"recipients_file"`
	PassphraseFile string   `yaml:"passphrase_file"`
}

// TracingConfig exports OpenTelemetry traces over OTLP/HTTP; an empty
// endpoint turns tracing off.
type TracingConfig struct {
	OTLPEndpoint string  `yaml:"otlp_endpoint"`
	SampleRatio  float64 `yaml:"sample_ratio"`
	ServiceName  string  `yaml:"service_name"`
	Headers      string  `yaml:"headers"`
}

// Duration is a time.Duration written as Go writes it ("30s", "720h").
type Duration time.Duration

// UnmarshalYAML reads "30s"; a bare number is refused, since its unit
// would be a guess.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as Go does.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func parseDuration(s string) (time.Duration, error) {
	if s == "0" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 30s or 720h", s)
	}
	return v, nil
}

// defaultConfig is what a server has when told nothing.
func defaultConfig() Config {
	return Config{
		Server:  ServerConfig{Addr: "127.0.0.1:8080", Data: "data", Engine: sandbox.EngineWazero, ShutdownGrace: Duration(30 * time.Second)},
		Accel:   AccelConfig{Mode: "auto"},
		Runs:    RunsConfig{Lease: Duration(30 * time.Second), Workers: 64, Retention: Duration(30 * 24 * time.Hour), RetentionCount: 1000},
		Limits:  LimitsConfig{RunInputBytes: 1 << 20, NodeInputBytes: 64 << 20, InlineBytes: 256 << 10},
		Log:     LogConfig{Format: "text", Level: "info"},
		Worker:  WorkerConfig{Addr: "127.0.0.1:9090"},
		Metrics: MetricsConfig{},
		Backup:  BackupConfig{Keep: 7},
		Tracing: TracingConfig{SampleRatio: 1, ServiceName: "millrace"},
	}
}

// setting is one configuration leaf: its key in the file, its environment
// variable, its flag (if any) and where its value lives.
type setting struct {
	key, env, flag, usage string
	// otelEnv is the OpenTelemetry SDK's standard variable for the same
	// value; it counts as the environment, below env.
	otelEnv string
	secret  bool
	field   func(*Config) any // a pointer into the Config
}

// settings lists every leaf, in the order `config print` and -h show them.
// Adding a setting is one line here and a field above.
var settings = []setting{
	{key: "server.addr", env: "MILLRACE_ADDR", flag: "addr", usage: "listen address of the API and console", field: func(c *Config) any { return &c.Server.Addr }},
	{key: "server.data", env: "MILLRACE_DATA", flag: "data", usage: "data directory (database, secret key, compiled-code cache)", field: func(c *Config) any { return &c.Server.Data }},
	{key: "server.engine", env: "MILLRACE_ENGINE", flag: "engine", usage: fmt.Sprintf("sandbox engine: %s or %s (this binary has %s)", sandbox.EngineWazero, sandbox.EngineWasmtime, strings.Join(sandbox.EngineKinds(), ", ")), field: func(c *Config) any { return &c.Server.Engine }},
	{key: "server.shutdown_grace", env: "MILLRACE_SHUTDOWN_GRACE", flag: "shutdown-grace", usage: "on SIGTERM, how long in-flight nodes may take to finish before they are handed back", field: func(c *Config) any { return &c.Server.ShutdownGrace }},
	{key: "server.pprof_addr", env: "MILLRACE_PPROF_ADDR", usage: "serve Go's profiler on this loopback address", field: func(c *Config) any { return &c.Server.PprofAddr }},
	{key: "database.url", env: "DATABASE_URL", flag: "database-url", secret: true, usage: "PostgreSQL URL, postgres://user:password@host/db (empty keeps SQLite in the data directory)", field: func(c *Config) any { return &c.Database.URL }},
	{key: "secrets.key", env: "MILLRACE_SECRET_KEY", secret: true, usage: "base64 AES-256 key for secrets at rest (empty: DATA/secret.key)", field: func(c *Config) any { return &c.Secrets.Key }},
	{key: "accel.mode", env: "MILLRACE_ACCEL", flag: "accel", usage: "local AI: auto starts millrace-accel when it and the ONNX Runtime library are found, on requires them, off runs none", field: func(c *Config) any { return &c.Accel.Mode }},
	{key: "accel.url", env: "MILLRACE_ACCEL_URL", flag: "accel-url", usage: "a remote accelerator (millrace-accel, Triton, KServe: Open Inference Protocol v2) instead of a child", field: func(c *Config) any { return &c.Accel.URL }},
	{key: "accel.token", env: "MILLRACE_ACCEL_TOKEN", secret: true, usage: "bearer token of the remote accelerator", field: func(c *Config) any { return &c.Accel.Token }},
	{key: "accel.bin", env: "MILLRACE_ACCEL_BIN", flag: "accel-bin", usage: "the millrace-accel binary (default: beside this executable, then on PATH)", field: func(c *Config) any { return &c.Accel.Bin }},
	{key: "accel.ort_lib", env: "MILLRACE_ORT_LIB", usage: "the ONNX Runtime shared library", field: func(c *Config) any { return &c.Accel.ORTLib }},
	{key: "runs.lease", env: "MILLRACE_RUN_LEASE", usage: "how long a run whose worker died waits before it resumes (at least 1s)", field: func(c *Config) any { return &c.Runs.Lease }},
	{key: "runs.workers", env: "MILLRACE_RUN_WORKERS", flag: "workers", usage: "runs executed at once by this process", field: func(c *Config) any { return &c.Runs.Workers }},
	{key: "runs.retention", env: "MILLRACE_RUN_RETENTION", usage: "delete finished runs older than this (0 keeps runs of any age)", field: func(c *Config) any { return &c.Runs.Retention }},
	{key: "runs.retention_count", env: "MILLRACE_RUN_RETENTION_COUNT", usage: "finished runs kept per workflow (0 keeps any number)", field: func(c *Config) any { return &c.Runs.RetentionCount }},
	{key: "limits.run_input_bytes", env: "MILLRACE_LIMIT_RUN_INPUT_BYTES", usage: "largest run input", field: func(c *Config) any { return &c.Limits.RunInputBytes }},
	{key: "limits.node_input_bytes", env: "MILLRACE_LIMIT_NODE_INPUT_BYTES", usage: "largest node input", field: func(c *Config) any { return &c.Limits.NodeInputBytes }},
	{key: "limits.inline_bytes", env: "MILLRACE_LIMIT_INLINE_BYTES", usage: "largest value kept inline in a checkpoint (larger ones become artifacts)", field: func(c *Config) any { return &c.Limits.InlineBytes }},
	{key: "log.format", env: "MILLRACE_LOG_FORMAT", flag: "log-format", usage: "log format: text or json", field: func(c *Config) any { return &c.Log.Format }},
	{key: "log.level", env: "MILLRACE_LOG_LEVEL", flag: "log-level", usage: "log level: debug, info, warn or error", field: func(c *Config) any { return &c.Log.Level }},
	{key: "metrics.token", env: "MILLRACE_METRICS_TOKEN", secret: true, usage: "bearer token that non-loopback clients present to scrape /metrics", field: func(c *Config) any { return &c.Metrics.Token }},
	{key: "worker.addr", env: "MILLRACE_WORKER_ADDR", flag: "worker-addr", usage: "millrace worker: address of its health and metrics endpoints", field: func(c *Config) any { return &c.Worker.Addr }},
	{key: "tls.cert", env: "MILLRACE_TLS_CERT", flag: "tls-cert", usage: "serve HTTPS with this PEM certificate (chain) file", field: func(c *Config) any { return &c.TLS.Cert }},
	{key: "tls.key", env: "MILLRACE_TLS_KEY", flag: "tls-key", usage: "the PEM private key of tls.cert", field: func(c *Config) any { return &c.TLS.Key }},
	{key: "tls.self_signed", env: "MILLRACE_TLS_SELF_SIGNED", flag: "tls-self-signed", usage: "serve HTTPS with a self-signed certificate kept in DATA/tls (for a LAN)", field: func(c *Config) any { return &c.TLS.SelfSigned }},
	{key: "tls.hosts", env: "MILLRACE_TLS_HOSTS", flag: "tls-host", usage: "more names or addresses for the self-signed certificate (comma-separated; the flag repeats)", field: func(c *Config) any { return &c.TLS.Hosts }},
	{key: "backup.dir", env: "MILLRACE_BACKUP_DIR", usage: "scheduled backups: the folder they are written to", field: func(c *Config) any { return &c.Backup.Dir }},
	{key: "backup.interval", env: "MILLRACE_BACKUP_INTERVAL", usage: "scheduled backups: how often, at least 1m, such as 24h (0: none)", field: func(c *Config) any { return &c.Backup.Interval }},
	{key: "backup.keep", env: "MILLRACE_BACKUP_KEEP", usage: "scheduled backups kept in backup.dir (older ones are deleted)", field: func(c *Config) any { return &c.Backup.Keep }},
	{key: "backup.recipients_file", env: "MILLRACE_BACKUP_RECIPIENTS_FILE", usage: "scheduled backups are encrypted to the age public keys in this file", field: func(c *Config) any { return &c.Backup.RecipientsFile }},
	{key: "backup.passphrase_file", env: "MILLRACE_BACKUP_PASSPHRASE_FILE", usage: "or to the passphrase on this file's first line", field: func(c *Config) any { return &c.Backup.PassphraseFile }},
	{key: "tracing.otlp_endpoint", env: "MILLRACE_OTLP_ENDPOINT", otelEnv: "OTEL_EXPORTER_OTLP_ENDPOINT", flag: "otlp-endpoint", usage: "export OpenTelemetry traces to this OTLP/HTTP base URL, such as http://localhost:4318 (empty: tracing off)", field: func(c *Config) any { return &c.Tracing.OTLPEndpoint }},
	{key: "tracing.sample_ratio", env: "MILLRACE_TRACE_SAMPLE_RATIO", flag: "trace-sample-ratio", usage: "share of runs traced, from 0 to 1", field: func(c *Config) any { return &c.Tracing.SampleRatio }},
	{key: "tracing.service_name", env: "MILLRACE_TRACE_SERVICE_NAME", otelEnv: "OTEL_SERVICE_NAME", usage: "the service.name of this process's spans", field: func(c *Config) any { return &c.Tracing.ServiceName }},
	{key: "tracing.headers", env: "MILLRACE_OTLP_HEADERS", otelEnv: "OTEL_EXPORTER_OTLP_HEADERS", secret: true, usage: "headers sent with every export, key=value,key=value (a hosted backend's API key)", field: func(c *Config) any { return &c.Tracing.Headers }},
}

// configSource says where a value came from, for errors that point at it.
type configSource map[string]string

func (s configSource) of(key string) string {
	if v, ok := s[key]; ok {
		return v
	}
	return "default"
}

// FieldError is a configuration value that is not valid; it names where
// the value came from and its key.
type FieldError struct {
	Source, Key, Msg string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s: %s", e.Source, e.Key, e.Msg) }

// parseConfigFile decodes a configuration file strictly: unknown keys and
// values of the wrong type are errors naming the line. Fields the file
// leaves out keep their value in c.
func parseConfigFile(name string, data []byte, c *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.ReplaceAll(strings.TrimPrefix(msg, "unmarshal errors:\n  "), "\n  ", "; ")
		return fmt.Errorf("config %s: %s", name, msg)
	}
	// A second document would be ignored silently; refuse it.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return fmt.Errorf("config %s: one YAML document expected", name)
	}
	return nil
}

// setValue sets one leaf from its text form (env or flag).
func setValue(s setting, c *Config, text string) error {
	switch p := s.field(c).(type) {
	case *string:
		*p = text
	case *Duration:
		d, err := parseDuration(text)
		if err != nil {
			return err
		}
		*p = Duration(d)
	case *int:
		n, err := strconv.Atoi(text)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", text)
		}
		*p = n
	case *int64:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", text)
		}
		*p = n
	case *float64:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", text)
		}
		*p = f
	case *bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return fmt.Errorf("%q: want true or false (or 1 or 0)", text)
		}
		*p = b
	case *[]string:
		*p = nil
		for _, v := range strings.Split(text, ",") {
			if v = strings.TrimSpace(v); v != "" {
				*p = append(*p, v)
			}
		}
	default:
		panic(fmt.Sprintf("setting %s: unsupported type %T", s.key, p))
	}
	return nil
}

// configFlags registers the configuration flags on fs: -config and one
// flag per setting that has one. Their defaults are empty, so that -h
// never prints a secret and an unset flag is told apart from a set one.
func configFlags(fs *flag.FlagSet) *string {
	path := fs.String("config", "", "configuration file (YAML; default $MILLRACE_CONFIG; see docs/configuration.md)")
	def := defaultConfig()
	for _, s := range settings {
		if s.flag != "" {
			usage := s.usage + " (" + s.key + ", $" + s.env
			if s.otelEnv != "" {
				usage += " or $" + s.otelEnv
			}
			if !s.secret {
				var v string
				switch p := s.field(&def).(type) {
				case *string:
					v = *p
				case *Duration:
					v = time.Duration(*p).String()
				case *int:
					v = strconv.Itoa(*p)
				case *int64:
					v = strconv.FormatInt(*p, 10)
				case *float64:
					v = strconv.FormatFloat(*p, 'g', -1, 64)
				}
				if v != "" {
					usage += ", default " + v
				}
			}
			switch s.field(&def).(type) {
			case *bool:
				fs.Bool(s.flag, false, usage+")")
			case *[]string:
				fs.Var(&listFlag{}, s.flag, usage+")")
			default:
				fs.String(s.flag, "", usage+")")
			}
		}
	}
	return path
}

// loadConfig builds the effective configuration: defaults, then the file
// (the -config flag, else $MILLRACE_CONFIG), then the environment, then
// the flags fs parsed. getenv is os.Getenv outside tests.
func loadConfig(fs *flag.FlagSet, path string, getenv func(string) string) (Config, configSource, error) {
	c := defaultConfig()
	src := configSource{}
	if path == "" {
		path = getenv("MILLRACE_CONFIG")
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return c, src, fmt.Errorf("config: %w", err)
		}
		if err := parseConfigFile(path, data, &c); err != nil {
			return c, src, err
		}
		// Which keys the file set, for errors that name it.
		var tree map[string]any
		if yaml.Unmarshal(data, &tree) == nil {
			for _, s := range settings {
				section, leaf, _ := strings.Cut(s.key, ".")
				if m, ok := tree[section].(map[string]any); ok {
					if _, ok := m[leaf]; ok {
						src[s.key] = "config " + path
					}
				}
			}
		}
	}
	for _, s := range settings {
		name := s.env
		v := getenv(name)
		if v == "" && s.otelEnv != "" {
			name = s.otelEnv
			v = getenv(name)
		}
		if v != "" {
			if err := setValue(s, &c, v); err != nil {
				return c, src, &FieldError{"env " + name, s.key, err.Error()}
			}
			src[s.key] = "env " + name
		}
	}
	// The SDK's off switch, for a process that inherits an
	// OTEL_EXPORTER_OTLP_ENDPOINT meant for others; a flag still wins.
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		c.Tracing.OTLPEndpoint = ""
		src["tracing.otlp_endpoint"] = "env OTEL_SDK_DISABLED"
	}
	if fs != nil {
		var err error
		fs.Visit(func(f *flag.Flag) {
			for _, s := range settings {
				if s.flag == f.Name && err == nil {
					if e := setValue(s, &c, f.Value.String()); e != nil {
						err = &FieldError{"flag -" + s.flag, s.key, e.Error()}
					}
					src[s.key] = "flag -" + s.flag
				}
			}
		})
		if err != nil {
			return c, src, err
		}
	}
	return c, src, c.validate(src)
}

// validate checks every value, naming the first bad one and its source.
func (c *Config) validate(src configSource) error {
	bad := func(key, format string, args ...any) error {
		return &FieldError{src.of(key), key, fmt.Sprintf(format, args...)}
	}
	if err := checkAddr(c.Server.Addr); err != nil {
		return bad("server.addr", "%v", err)
	}
	if c.Server.Data == "" {
		return bad("server.data", "is required (a directory)")
	}
	if err := sandbox.CheckEngine(c.Server.Engine); err != nil {
		return bad("server.engine", "%v", err)
	}
	if c.Server.ShutdownGrace < 0 {
		return bad("server.shutdown_grace", "must not be negative")
	}
	if a := c.Server.PprofAddr; a != "" {
		host, _, err := net.SplitHostPort(a)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			return bad("server.pprof_addr", "%q: the profiler listens on loopback only, such as 127.0.0.1:6060", a)
		}
	}
	if u := c.Database.URL; u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		return bad("database.url", "want a postgres:// URL (or nothing, for SQLite)")
	}
	if _, err := accel.ParseMode(c.Accel.Mode); err != nil {
		return bad("accel.mode", "%v", err)
	}
	if u := c.Accel.URL; u != "" {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return bad("accel.url", "%q: want an http:// or https:// URL", u)
		}
	}
	if time.Duration(c.Runs.Lease) < time.Second {
		return bad("runs.lease", "want a duration of at least 1s, such as 30s")
	}
	if c.Runs.Workers < 1 {
		return bad("runs.workers", "want at least 1")
	}
	if c.Runs.Retention < 0 {
		return bad("runs.retention", "want a duration such as 720h (30 days), or 0 to keep runs of any age")
	}
	if c.Runs.RetentionCount < 0 {
		return bad("runs.retention_count", "want a number of runs per workflow, or 0 to keep any number")
	}
	for key, v := range map[string]int64{"limits.run_input_bytes": c.Limits.RunInputBytes, "limits.node_input_bytes": c.Limits.NodeInputBytes, "limits.inline_bytes": c.Limits.InlineBytes} {
		if v < 1 {
			return bad(key, "want a number of bytes, at least 1")
		}
	}
	if f := c.Log.Format; f != "text" && f != "json" {
		return bad("log.format", "%q: want text or json", f)
	}
	if _, err := parseLevel(c.Log.Level); err != nil {
		return bad("log.level", "%v", err)
	}
	if err := checkAddr(c.Worker.Addr); err != nil {
		return bad("worker.addr", "%v", err)
	}
	switch t := c.TLS; {
	case t.SelfSigned && t.Cert != "":
		return bad("tls.cert", "cannot be combined with tls.self_signed: choose a certificate or a self-signed one")
	case t.SelfSigned && t.Key != "":
		return bad("tls.key", "cannot be combined with tls.self_signed: choose a certificate or a self-signed one")
	case t.Cert != "" && t.Key == "":
		return bad("tls.key", "is required with tls.cert (the certificate's PEM private key)")
	case t.Key != "" && t.Cert == "":
		return bad("tls.cert", "is required with tls.key (the PEM certificate, or its chain)")
	case len(t.Hosts) > 0 && !t.SelfSigned:
		return bad("tls.hosts", "names the self-signed certificate's hosts: set tls.self_signed too, or drop it")
	}
	if err := c.Backup.check(bad); err != nil {
		return err
	}
	if e := c.Tracing.OTLPEndpoint; e != "" {
		if _, err := tracing.TracesURL(e); err != nil {
			return bad("tracing.otlp_endpoint", "%v", err)
		}
	}
	if r := c.Tracing.SampleRatio; !(r >= 0 && r <= 1) {
		return bad("tracing.sample_ratio", "%v: want a number from 0 (none) to 1 (every run)", r)
	}
	if c.Tracing.ServiceName == "" {
		return bad("tracing.service_name", "must not be empty (default millrace)")
	}
	if _, err := parseHeaders(c.Tracing.Headers); err != nil {
		return bad("tracing.headers", "%v", err)
	}
	return nil
}

// check validates the backup schedule: a folder and an interval
// together, and what to encrypt to.
func (b BackupConfig) check(bad func(key, format string, args ...any) error) error {
	if b.Dir == "" && b.Interval == 0 {
		return nil
	}
	switch {
	case b.Dir == "":
		return bad("backup.dir", "is required with backup.interval (the folder backups go to)")
	case b.Interval == 0:
		return bad("backup.interval", "is required with backup.dir: a duration such as 24h")
	case time.Duration(b.Interval) < time.Minute:
		return bad("backup.interval", "%s: want at least 1m, such as 24h", time.Duration(b.Interval))
	case b.Keep < 1:
		return bad("backup.keep", "want a number of backups, at least 1")
	case b.RecipientsFile == "" && b.PassphraseFile == "":
		return bad("backup.recipients_file", "scheduled backups are encrypted: set backup.recipients_file (age public keys) or backup.passphrase_file")
	case b.RecipientsFile != "" && b.PassphraseFile != "":
		return bad("backup.passphrase_file", "cannot be combined with backup.recipients_file: choose one")
	}
	return nil
}

// parseHeaders reads tracing.headers, written as OTEL_EXPORTER_OTLP_HEADERS
// is: key=value pairs separated by commas, values URL-encoded.
func parseHeaders(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if k = strings.TrimSpace(k); !ok || k == "" {
			return nil, fmt.Errorf("want key=value pairs separated by commas (the pair %d is not one)", len(out)+1)
		}
		dec, err := url.QueryUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("the value of %s: %v", k, err)
		}
		out[k] = dec
	}
	return out, nil
}

func checkAddr(a string) error {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q: want host:port, such as 127.0.0.1:8080", a)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: the port must be a number from 0 to 65535", a)
	}
	return nil
}

// masked returns a copy of c with every secret hidden: the database URL
// keeps everything but its password.
func (c Config) masked() Config {
	for _, s := range settings {
		if !s.secret {
			continue
		}
		p := s.field(&c).(*string)
		switch {
		case *p == "":
		case s.key == "database.url":
			*p = postgres.Redact(*p) + " (password hidden)"
		default:
			*p = "(set, hidden)"
		}
	}
	return c
}

// printConfig writes the effective configuration as a file `-config` would
// read (secrets masked), each value's source beside it.
func printConfig(w io.Writer, c Config, src configSource) error {
	var node yaml.Node
	if err := node.Encode(c.masked()); err != nil {
		return err
	}
	for _, sec := range node.Content {
		_ = sec
	}
	// Annotate each leaf with where it came from.
	for i := 0; i+1 < len(node.Content); i += 2 {
		section := node.Content[i].Value
		m := node.Content[i+1]
		for j := 0; j+1 < len(m.Content); j += 2 {
			key := section + "." + m.Content[j].Value
			if v := m.Content[j+1]; v.Kind == yaml.SequenceNode && len(v.Content) > 0 {
				// A block list's own comment would land after its last
				// item; the key's stays on the key's line.
				m.Content[j].LineComment = src.of(key)
			} else {
				v.LineComment = src.of(key)
			}
		}
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&node); err != nil {
		return err
	}
	return enc.Close()
}

// envNames lists the environment variables the configuration reads, for
// the Dockerfile test and the docs.
func envNames() []string {
	out := []string{"MILLRACE_CONFIG", "OTEL_SDK_DISABLED"}
	for _, s := range settings {
		out = append(out, s.env)
		if s.otelEnv != "" {
			out = append(out, s.otelEnv)
		}
	}
	sort.Strings(out)
	return out
}
