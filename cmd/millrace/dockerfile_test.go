package main

import (
	"encoding/json"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// No Docker engine runs here, so this checks what can be checked without
// one: the Dockerfile and docker-compose.yml agree with the repository,
// the Makefile, the server's defaults and routes, and the configuration.

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	stage string // the stage it belongs to
	op    string // FROM, COPY, RUN...
	args  string
}

func parseDockerfile(t *testing.T, text string) []instruction {
	var out []instruction
	stage := ""
	var cur string
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		cur += trimmed
		op, args, _ := strings.Cut(cur, " ")
		cur = ""
		op = strings.ToUpper(op)
		if op == "FROM" {
			if _, name, ok := strings.Cut(args, " AS "); ok {
				stage = strings.TrimSpace(name)
			}
		}
		out = append(out, instruction{stage: stage, op: op, args: strings.Join(strings.Fields(args), " ")})
	}
	return out
}

// makeRecipe returns the commands of a Makefile target, with $(GO),
// $(BIN) and $(CURDIR) substituted as the Dockerfile writes them.
func makeRecipe(t *testing.T, makefile, target string) []string {
	lines := strings.Split(makefile, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, target+":") {
			var out []string
			for _, r := range lines[i+1:] {
				if !strings.HasPrefix(r, "\t") {
					break
				}
				r = strings.TrimPrefix(strings.TrimSpace(r), "@")
				r = strings.NewReplacer("$(GO)", "go", "$(BIN)", "bin/millrace").Replace(r)
				out = append(out, r)
			}
			return out
		}
	}
	t.Fatalf("Makefile has no target %s", target)
	return nil
}

func portOf(t *testing.T, addr string) string {
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return port
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	ins := parseDockerfile(t, string(df))

	stages := map[string]bool{}
	var runs []string
	for _, in := range ins {
		switch in.op {
		case "FROM":
			stages[in.stage] = true
			// A stage built FROM another stage names one defined above.
			base := strings.Fields(in.args)[0]
			if !strings.Contains(base, "/") && !strings.Contains(base, ":") {
				require.True(t, stages[base], "FROM %s: no such stage above", base)
			}
		case "COPY":
			fields := strings.Fields(in.args)
			if strings.HasPrefix(fields[0], "--from=") {
				require.True(t, stages[strings.TrimPrefix(fields[0], "--from=")], "COPY %s: no such stage above", in.args)
				continue
			}
			// Every source exists in the repository.
			for _, src := range fields[:len(fields)-1] {
				matches, _ := filepath.Glob(filepath.Join(root, src))
				require.NotEmpty(t, matches, "COPY source %s does not exist in the repository", src)
			}
		case "RUN":
			runs = append(runs, in.stage+": "+in.args)
		}
	}
	for _, want := range []string{"console", "onnxruntime", "source", "server-build", "accel-build", "server", "accel"} {
		require.True(t, stages[want], "stage %s", want)
	}
	hasRun := func(stage, cmd string) {
		t.Helper()
		for _, r := range runs {
			if strings.HasPrefix(r, stage+": ") && strings.Contains(r, cmd) {
				return
			}
		}
		require.Failf(t, "the Dockerfile does not run the Makefile's command", "stage %s: %q\nruns: %q", stage, cmd, runs)
	}
	// The build commands are the Makefile's.
	build := makeRecipe(t, string(mk), "build")
	require.Len(t, build, 1)
	hasRun("server-build", "CGO_ENABLED=0 "+build[0])
	hasRun("server-build", "make modules")
	web := makeRecipe(t, string(mk), "web/node_modules/.installed")
	hasRun("console", strings.TrimPrefix(web[0], "cd web && "))
	hasRun("console", strings.TrimPrefix(makeRecipe(t, string(mk), "web/dist/index.html")[0], "cd web && "))
	accelBin := makeRecipe(t, string(mk), "accel-bin")[0]
	accelBin = strings.TrimSpace(strings.Split(accelBin, "2>/dev/null")[0])
	hasRun("accel-build", accelBin)
	hasRun("onnxruntime", makeRecipe(t, string(mk), "accel-deps")[0])

	// Final images: a non-root user, a health check through `millrace
	// healthcheck` on a URL the process serves, the ports it listens on.
	def := defaultConfig()
	final := map[string]struct{ port, health string }{
		"server": {portOf(t, def.Server.Addr), "http://127.0.0.1:" + portOf(t, def.Server.Addr) + "/readyz"},
		"accel":  {"8089", "http://127.0.0.1:8089/v2/health/ready"},
	}
	for stage, want := range final {
		var user, health, expose string
		env := map[string]string{}
		for _, in := range ins {
			if in.stage != stage {
				continue
			}
			switch in.op {
			case "USER":
				user = in.args
			case "HEALTHCHECK":
				health = in.args
			case "EXPOSE":
				expose = in.args
			case "ENV":
				for _, kv := range strings.Fields(in.args) {
					k, v, _ := strings.Cut(kv, "=")
					env[k] = v
				}
			}
		}
		require.NotEmpty(t, user, stage)
		require.NotContains(t, []string{"root", "0", "0:0"}, user, stage)
		require.Contains(t, strings.Fields(expose), want.port, stage)
		require.Contains(t, health, `"/usr/local/bin/millrace", "healthcheck", "-url", "`+want.health+`"`, stage)
		if stage == "server" {
			// The container listens on every interface, on the default
			// ports; every ENV is a configuration variable.
			require.Equal(t, "0.0.0.0:"+want.port, env["MILLRACE_ADDR"])
			require.Equal(t, "0.0.0.0:"+portOf(t, def.Worker.Addr), env["MILLRACE_WORKER_ADDR"])
			require.Contains(t, strings.Fields(expose), portOf(t, def.Worker.Addr))
			for k := range env {
				require.Contains(t, envNames(), k, "ENV %s is not a configuration variable", k)
			}
		}
	}
	// The health check is a command of this binary, and the routes it asks
	// for are the server's (the OpenAPI document) and the accelerator's.
	require.True(t, slices.ContainsFunc(commands, func(c command) bool { return c.name == "healthcheck" }))
	var openapi struct{ Paths map[string]any }
	raw, err := os.ReadFile(filepath.Join(root, "openapi.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &openapi))
	require.Contains(t, openapi.Paths, "/readyz")
	accelMain, err := os.ReadFile(filepath.Join(root, "accel", "cmd", "millrace-accel", "main.go"))
	require.NoError(t, err)
	require.Contains(t, string(accelMain), `"127.0.0.1:8089"`, "the accelerator's default port")
	accelService, err := os.ReadFile(filepath.Join(root, "accel", "service", "service.go"))
	require.NoError(t, err)
	require.Contains(t, string(accelService), `"/v2/health/ready"`)
	for _, in := range ins {
		if in.stage == "accel" && in.op == "ENV" {
			for _, kv := range strings.Fields(in.args) {
				k, _, _ := strings.Cut(kv, "=")
				require.Contains(t, string(accelMain), `"`+k+`"`, "the accelerator reads no %s", k)
			}
		}
	}
}

func TestCompose(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	require.NoError(t, err)
	var compose struct {
		Services map[string]struct {
			Build *struct {
				Context string `yaml:"context"`
				Target  string `yaml:"target"`
			} `yaml:"build"`
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Ports       []string          `yaml:"ports"`
			Healthcheck *struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &compose))
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	stages := map[string]bool{}
	for _, in := range parseDockerfile(t, string(df)) {
		stages[in.stage] = true
	}
	for _, name := range []string{"postgres", "server", "worker", "accel"} {
		require.Contains(t, compose.Services, name)
	}
	built := map[string]string{} // image -> target
	for name, s := range compose.Services {
		if s.Build != nil {
			require.True(t, stages[s.Build.Target], "service %s builds target %q, which the Dockerfile does not define", name, s.Build.Target)
			require.Equal(t, ".", s.Build.Context)
			built[s.Image] = s.Build.Target
		}
	}
	names := map[string]bool{}
	for _, c := range commands {
		names[c.name] = true
	}
	def := defaultConfig()
	for _, name := range []string{"server", "worker"} {
		s := compose.Services[name]
		require.Equal(t, "server", built[s.Image], "%s runs the server image", name)
		require.Len(t, s.Command, 1)
		require.True(t, names[s.Command[0]], "%s runs `millrace %s`, not a command", name, s.Command[0])
		for k := range s.Environment {
			require.Contains(t, envNames(), k, "service %s sets %s, which the configuration does not read", name, k)
		}
		// The accelerator URL points at the accel service's port.
		u, err := url.Parse(s.Environment["MILLRACE_ACCEL_URL"])
		require.NoError(t, err)
		require.Equal(t, "accel:8089", u.Host)
		require.True(t, strings.HasPrefix(s.Environment["DATABASE_URL"], "postgres://"), name)
		require.Contains(t, s.Environment["DATABASE_URL"], "@postgres:5432/")
	}
	require.Equal(t, "accel", built[compose.Services["accel"].Image])
	require.Equal(t, []string{"8080:" + portOf(t, def.Server.Addr)}, compose.Services["server"].Ports)
	require.Equal(t, []string{"CMD", "/usr/local/bin/millrace", "healthcheck", "-url", "http://127.0.0.1:" + portOf(t, def.Worker.Addr) + "/readyz"},
		compose.Services["worker"].Healthcheck.Test)
}
