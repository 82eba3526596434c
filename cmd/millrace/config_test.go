package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// envMap is a getenv over a map.
func envMap(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func load(t *testing.T, file string, env map[string]string, args ...string) (Config, configSource, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := configFlags(fs)
	require.NoError(t, fs.Parse(args))
	if file != "" {
		p := filepath.Join(t.TempDir(), "millrace.yaml")
		require.NoError(t, os.WriteFile(p, []byte(file), 0o600))
		if *path == "" {
			*path = p
		}
	}
	return loadConfig(fs, *path, envMap(env))
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	c, src, err := load(t, "", nil)
	require.NoError(t, err)
	require.Equal(t, defaultConfig(), c)
	require.Equal(t, "default", src.of("server.addr"))
	sc := serverConfig(c, io.Discard)
	require.Equal(t, "127.0.0.1:8080", sc.Addr)
	require.Equal(t, 30*time.Second, sc.ShutdownGrace)
	require.Equal(t, 720*time.Hour, sc.Retention.MaxAge)
	require.Equal(t, 1000, sc.Retention.MaxRuns)
	require.Equal(t, int64(1<<20), sc.Limits.RunInputBytes)
}

// Flags win over the environment, which wins over the file, which wins
// over the defaults; each value remembers where it came from.
func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	file := "server:\n  addr: 127.0.0.1:1111\n  data: /srv/file\n  engine: wazero\nruns:\n  lease: 10s\n  retention: 0\nlog:\n  format: json\n"
	env := map[string]string{"MILLRACE_ADDR": "127.0.0.1:2222", "MILLRACE_DATA": "/srv/env", "MILLRACE_RUN_RETENTION_COUNT": "7"}
	c, src, err := load(t, file, env, "-addr", "127.0.0.1:3333")
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:3333", c.Server.Addr)
	require.Equal(t, "flag -addr", src.of("server.addr"))
	require.Equal(t, "/srv/env", c.Server.Data)
	require.Equal(t, "env MILLRACE_DATA", src.of("server.data"))
	require.Equal(t, Duration(10*time.Second), c.Runs.Lease)
	require.Contains(t, src.of("runs.lease"), "config ")
	require.Equal(t, Duration(0), c.Runs.Retention, "0 keeps runs of any age")
	require.Equal(t, 7, c.Runs.RetentionCount)
	require.Equal(t, "json", c.Log.Format)
	require.Equal(t, Duration(30*time.Second), c.Server.ShutdownGrace, "default")
}

// Errors name the source and the key, and say what is wanted.
func TestConfigErrorsNameTheField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		file string
		env  map[string]string
		args []string
		want string
	}{
		{file: "server:\n  adress: x\n", want: "field adress not found"},
		{file: "server:\n  addr: nowhere\n", want: "config "},
		{file: "server:\n  addr: nowhere\n", want: `server.addr: "nowhere": want host:port`},
		{file: "runs:\n  lease: 30\n", want: `"30" is not a duration`},
		{file: "runs:\n  workers: many\n", want: "cannot unmarshal"},
		{file: "server: [1, 2]\n", want: "cannot unmarshal"},
		{file: "log:\n  format: xml\n", want: `log.format: "xml": want text or json`},
		{file: "a: 1\n---\nb: 2\n", want: "field a not found"},
		{env: map[string]string{"MILLRACE_RUN_LEASE": "500ms"}, want: "env MILLRACE_RUN_LEASE: runs.lease: want a duration of at least 1s"},
		{env: map[string]string{"MILLRACE_RUN_RETENTION": "30d"}, want: "env MILLRACE_RUN_RETENTION: runs.retention: \"30d\" is not a duration"},
		{env: map[string]string{"MILLRACE_RUN_RETENTION_COUNT": "-1"}, want: "runs.retention_count: want a number of runs per workflow"},
		{env: map[string]string{"DATABASE_URL": "mysql://x"}, want: "env DATABASE_URL: database.url: want a postgres:// URL"},
		{env: map[string]string{"MILLRACE_PPROF_ADDR": "0.0.0.0:6060"}, want: "server.pprof_addr: \"0.0.0.0:6060\": the profiler listens on loopback only"},
		{env: map[string]string{"MILLRACE_ACCEL_URL": "unix:/x"}, want: "accel.url"},
		{args: []string{"-workers", "0"}, want: "flag -workers: runs.workers: want at least 1"},
		{args: []string{"-log-level", "loud"}, want: "flag -log-level: log.level"},
		{args: []string{"-shutdown-grace", "soon"}, want: "flag -shutdown-grace: server.shutdown_grace"},
		{file: "tls:\n  cert: c.pem\n", want: "tls.key: is required with tls.cert"},
		{file: "tls:\n  self_signed: maybe\n", want: "cannot unmarshal"},
		{env: map[string]string{"MILLRACE_TLS_SELF_SIGNED": "yes please"}, want: "env MILLRACE_TLS_SELF_SIGNED: tls.self_signed: \"yes please\": want true or false"},
		{env: map[string]string{"MILLRACE_TLS_HOSTS": "nas.lan"}, want: "tls.hosts: names the self-signed certificate's hosts"},
		{env: map[string]string{"MILLRACE_BACKUP_DIR": "/backups"}, want: "default: backup.interval: is required with backup.dir"},
		{env: map[string]string{"MILLRACE_BACKUP_DIR": "/b", "MILLRACE_BACKUP_INTERVAL": "30s"}, want: "env MILLRACE_BACKUP_INTERVAL: backup.interval: 30s: want at least 1m"},
		{env: map[string]string{"MILLRACE_BACKUP_DIR": "/b", "MILLRACE_BACKUP_INTERVAL": "1h"}, want: "backup.recipients_file: scheduled backups are encrypted"},
		{env: map[string]string{"MILLRACE_BACKUP_DIR": "/b", "MILLRACE_BACKUP_INTERVAL": "1h", "MILLRACE_BACKUP_KEEP": "0", "MILLRACE_BACKUP_PASSPHRASE_FILE": "p"}, want: "env MILLRACE_BACKUP_KEEP: backup.keep: want a number of backups"},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, want: "env OTEL_EXPORTER_OTLP_ENDPOINT: tracing.otlp_endpoint: \"collector:4318\": want an http:// or https:// URL"},
		{args: []string{"-trace-sample-ratio", "2"}, want: "flag -trace-sample-ratio: tracing.sample_ratio: 2: want a number from 0"},
		{args: []string{"-trace-sample-ratio", "half"}, want: "flag -trace-sample-ratio: tracing.sample_ratio: \"half\" is not a number"},
		{file: "tracing:\n  headers: justakey\n", want: "tracing.headers: want key=value pairs"},
	} {
		_, _, err := load(t, tc.file, tc.env, tc.args...)
		require.ErrorContains(t, err, tc.want, "%+v", tc)
	}
	_, _, err := load(t, "", nil, "-config", filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorContains(t, err, "missing.yaml")
}

// config print shows every key with its source, and never a secret.
func TestConfigPrintMasksSecrets(t *testing.T) {
	t.Parallel()
	file := "database:\n  url: postgres://millrace:hunter2@db.example:5432/millrace\naccel:\n  token: tok-secret-accel\n"
	vars := map[string]string{"MILLRACE_SECRET_KEY": "c2VjcmV0LWtleS1iYXNlNjQ=", "MILLRACE_METRICS_TOKEN": "scrape-secret", "OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=hc-secret"}
	p := filepath.Join(t.TempDir(), "m.yaml")
	require.NoError(t, os.WriteFile(p, []byte(file), 0o600))
	var out bytes.Buffer
	err := run(context.Background(), &env{stdout: &out, stderr: io.Discard, getenv: envMap(vars)}, []string{"config", "print", "-config", p, "-addr", "127.0.0.1:9999"})
	require.NoError(t, err)
	s := out.String()
	for _, secret := range []string{"hunter2", "tok-secret-accel", "c2VjcmV0LWtleS1iYXNlNjQ=", "scrape-secret", "hc-secret"} {
		require.NotContains(t, s, secret)
	}
	require.Contains(t, s, "postgres://millrace@db.example:5432/millrace (password hidden)")
	require.Contains(t, s, "addr: 127.0.0.1:9999 # flag -addr")
	require.Contains(t, s, "# env MILLRACE_SECRET_KEY")
	require.Contains(t, s, "# config "+p)
	// What it prints is a configuration file the server reads back.
	printed := strings.ReplaceAll(s, "postgres://millrace@db.example:5432/millrace (password hidden)", "postgres://db.example/millrace")
	printed = strings.ReplaceAll(printed, "(set, hidden)", "x")
	var c Config
	require.NoError(t, parseConfigFile("printed", []byte(printed), &c))
	require.Equal(t, "127.0.0.1:9999", c.Server.Addr)
}

// Every setting has a unique key, env and flag, and the key's section and
// leaf are the YAML names of its field (the table and the struct agree).
func TestSettingsTable(t *testing.T) {
	t.Parallel()
	keys, envs, flags := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, s := range settings {
		require.False(t, keys[s.key], s.key)
		require.False(t, envs[s.env], s.env)
		keys[s.key], envs[s.env] = true, true
		if s.flag != "" {
			require.False(t, flags[s.flag], s.flag)
			flags[s.flag] = true
		}
		c := defaultConfig()
		section, leaf, _ := strings.Cut(s.key, ".")
		var probe string
		switch p := s.field(&c).(type) {
		case *string:
			*p, probe = "probe-value", "probe-value"
		case *Duration:
			*p, probe = Duration(1234*time.Second), "20m34s"
		case *int:
			*p, probe = 4321, "4321"
		case *int64:
			*p, probe = 4321, "4321"
		case *float64:
			*p, probe = 0.25, "0.25"
		case *bool:
			*p, probe = true, "true"
		case *[]string:
			*p, probe = []string{"probe-value"}, "# default\n    - probe-value"
		default:
			t.Fatalf("%s: no probe for %T", s.key, p)
		}
		var out bytes.Buffer
		require.NoError(t, printConfig(&out, c, configSource{}))
		require.Contains(t, out.String(), section+":", s.key)
		if s.secret {
			require.NotContains(t, out.String(), probe, s.key)
			require.Regexp(t, "(?m)^  "+leaf+`: "?\(`, out.String(), s.key)
			continue
		}
		require.Regexp(t, "(?m)^  "+leaf+`: "?`+probe, out.String(), s.key)
	}
}

// TLS, scheduled backups and tracing are keys like the others: in the
// file, overridden by their variables and flags; -tls-self-signed stays
// a flag without a value and -tls-host repeats.
func TestConfigTLSBackupTracingKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	require.NoError(t, os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600))
	file := "tls:\n  self_signed: true\n  hosts: [nas.lan, 192.168.1.9]\nbackup:\n  dir: " + dir + "\n  interval: 24h\n  passphrase_file: " + pass +
		"\ntracing:\n  otlp_endpoint: http://collector:4318\n  sample_ratio: 0.5\n"
	c, src, err := load(t, file, map[string]string{"MILLRACE_BACKUP_KEEP": "3", "OTEL_SERVICE_NAME": "from-otel"}, "-tls-host", "a.lan", "-tls-host", "b.lan")
	require.NoError(t, err)
	require.True(t, c.TLS.SelfSigned)
	require.Equal(t, []string{"a.lan", "b.lan"}, c.TLS.Hosts, "the flag replaces the file's list")
	require.Equal(t, "flag -tls-host", src.of("tls.hosts"))
	require.Equal(t, 3, c.Backup.Keep)
	require.Equal(t, "env OTEL_SERVICE_NAME", src.of("tracing.service_name"))
	sc := serverConfig(c, io.Discard)
	require.Equal(t, []string{"a.lan", "b.lan"}, sc.TLS.Hosts)
	require.Equal(t, "http://collector:4318", sc.Tracing.Endpoint)
	require.Equal(t, 0.5, sc.Tracing.SampleRatio)
	require.Equal(t, "from-otel", sc.Tracing.ServiceName)
	sched, err := backupSchedule(c.Backup, src)
	require.NoError(t, err)
	require.Equal(t, 24*time.Hour, sched.Interval)
	require.Len(t, sched.Recipients, 1)

	c, _, err = load(t, "", map[string]string{"MILLRACE_TLS_CERT": "c.pem", "MILLRACE_TLS_KEY": "k.pem"}, "-tls-self-signed")
	require.ErrorContains(t, err, "env MILLRACE_TLS_CERT: tls.cert: cannot be combined with tls.self_signed")
	c, _, err = load(t, "tls:\n  cert: c.pem\n  key: k.pem\n", map[string]string{"MILLRACE_TLS_SELF_SIGNED": "0"})
	require.NoError(t, err)
	require.Equal(t, "c.pem", tlsConfig(c.TLS).CertFile)
	require.Nil(t, tlsConfig(defaultConfig().TLS), "no TLS key: plain HTTP")

	// A recipients file that cannot be read is named by its key.
	c, src, err = load(t, "backup:\n  dir: /tmp\n  interval: 1h\n  recipients_file: "+filepath.Join(dir, "missing")+"\n", nil)
	require.NoError(t, err)
	_, err = backupSchedule(c.Backup, src)
	require.ErrorContains(t, err, "backup.recipients_file: reading the recipients file")
}

// OTEL_EXPORTER_OTLP_ENDPOINT counts as the environment, below
// MILLRACE_OTLP_ENDPOINT and above the file; OTEL_SDK_DISABLED turns
// tracing off unless a flag turns it on.
func TestConfigTracingStandardEnv(t *testing.T) {
	t.Parallel()
	file := "tracing:\n  otlp_endpoint: http://file:4318\n"
	c, src, err := load(t, file, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318"})
	require.NoError(t, err)
	require.Equal(t, "http://otel:4318", c.Tracing.OTLPEndpoint)
	require.Equal(t, "env OTEL_EXPORTER_OTLP_ENDPOINT", src.of("tracing.otlp_endpoint"))
	c, _, err = load(t, file, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318", "MILLRACE_OTLP_ENDPOINT": "http://mine:4318"})
	require.NoError(t, err)
	require.Equal(t, "http://mine:4318", c.Tracing.OTLPEndpoint)
	c, src, err = load(t, file, map[string]string{"OTEL_SDK_DISABLED": "true"})
	require.NoError(t, err)
	require.Empty(t, c.Tracing.OTLPEndpoint)
	require.Equal(t, "env OTEL_SDK_DISABLED", src.of("tracing.otlp_endpoint"))
	c, _, err = load(t, file, map[string]string{"OTEL_SDK_DISABLED": "true"}, "-otlp-endpoint", "http://flag:4318")
	require.NoError(t, err)
	require.Equal(t, "http://flag:4318", c.Tracing.OTLPEndpoint)
	require.Empty(t, serverConfig(defaultConfig(), io.Discard).Tracing.Endpoint, "off by default")
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("server:\n  addr: 127.0.0.1:8080\n  data: data\nruns:\n  lease: 30s\n"))
	f.Add([]byte("database:\n  url: postgres://u:p@h/db\nlimits:\n  run_input_bytes: 1048576\n"))
	f.Add([]byte("log: {format: json, level: debug}\n"))
	f.Add([]byte("server:\n  shutdown_grace: -5s\n"))
	f.Add([]byte("&a [*a]"))
	f.Add([]byte("server: !!binary aGVsbG8=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := defaultConfig()
		if err := parseConfigFile("fuzz.yaml", data, &c); err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "config fuzz.yaml: "), err.Error())
			return
		}
		// A file that parses either validates or names a field.
		if err := c.validate(configSource{}); err != nil {
			require.Contains(t, err.Error(), "default: ")
			return
		}
		var out bytes.Buffer
		require.NoError(t, printConfig(&out, c, configSource{}))
	})
}

// docs/configuration.md lists every setting with its environment variable
// and flag.
func TestConfigurationDocListsEverySetting(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "configuration.md"))
	require.NoError(t, err)
	for _, s := range settings {
		row := "| `" + s.key + "` | `" + s.env + "` | "
		if s.flag != "" {
			row += "`-" + s.flag + "`"
		}
		require.Contains(t, string(doc), row, "docs/configuration.md: the row of %s", s.key)
	}
}
