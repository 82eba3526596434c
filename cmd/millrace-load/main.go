// Command millrace-load measures a Millrace server under webhook load:
// a sync webhook that runs a 3-node workflow of built-in modules
// (json_transform -> text_template -> echo), called by N concurrent
// clients for a fixed time, on SQLite or PostgreSQL.
//
//	millrace-load [-server ./bin/millrace] [-db sqlite|postgres] [-clients 50] [-duration 30s]
//
// It starts a real `millrace serve` from the given binary (build it with
// make build, which embeds the built-in modules) on a fresh data
// directory and a free loopback port; with -db postgres and no
// -database-url it also starts a throwaway PostgreSQL cluster. It sets up
// the workflow and trigger through the API, warms up, then measures:
// runs/s, latency percentiles, errors, the server's peak RSS and CPU
// time, and from a CPU profile of the server the share of CPU spent
// instantiating modules (see profile.go for the method). It prints a
// table and, last, one JSON line. Everything stays on loopback; the
// server and cluster are stopped and their files removed at the end.
//
// It is a measuring tool: it reports the targets of the load benchmark
// (no errors; on SQLite at least 250 runs/s with p99 under 250 ms) but
// does not fail on them. It exits non-zero only when it could not
// measure.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/millrace/millrace/internal/pgcluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "millrace-load:", err)
		os.Exit(2)
	}
	res, err := run(ctx, cfg, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "millrace-load:", err)
		os.Exit(1)
	}
	res.print(os.Stdout)
	if cfg.Append != "" {
		f, err := os.OpenFile(cfg.Append, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err == nil {
			res.print(f)
			err = f.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "millrace-load:", err)
			os.Exit(1)
		}
	}
}

// config is what the flags say.
type config struct {
	Server      string
	DB          string // sqlite or postgres
	DatabaseURL string // postgres: an existing database instead of a throwaway cluster
	PGDurable   bool
	Clients     int
	Duration    time.Duration
	Warmup      time.Duration
	Timeout     time.Duration
	Profile     bool
	CPUProfile  string // where to keep the raw profile; empty: nowhere
	Append      string // a file to append the results to; empty: none
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("millrace-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Server, "server", "./bin/millrace", "the millrace binary to start (make build makes it)")
	fs.StringVar(&c.DB, "db", "sqlite", "the server's database: sqlite or postgres")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "postgres: an empty database to use instead of a throwaway cluster (its CPU is then not measured)")
	fs.BoolVar(&c.PGDurable, "pg-durable", true, "postgres throwaway cluster: fsync and synchronous_commit on, as in production (false: the test suite's fast settings)")
	fs.StringVar(&workflowKind, "workflow", "light", "light: three echo nodes with CEL mappings; modules: json_transform, text_template, echo")
	fs.IntVar(&c.Clients, "clients", 50, "concurrent webhook clients")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "how long to measure")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "load before measuring, not counted (caches, connection pools)")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "the sync webhook's timeout: a run not done by then answers 202 and counts as an error")
	fs.BoolVar(&c.Profile, "profile", true, "take a CPU profile of the server during the measurement, for the instantiation share")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "also save the server's CPU profile to this file (for go tool pprof)")
	fs.StringVar(&c.Append, "append", "", "also append the results (table and JSON line) to this file")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: millrace-load [flags]\n\nLoad benchmark: a sync webhook running a 3-node workflow, N clients, on loopback.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	case c.DB != "sqlite" && c.DB != "postgres":
		return c, fmt.Errorf("-db %q: want sqlite or postgres", c.DB)
	case c.DatabaseURL != "" && c.DB != "postgres":
		return c, errors.New("-database-url goes with -db postgres")
	case c.Clients < 1 || c.Clients > 10000:
		return c, fmt.Errorf("-clients %d: want 1 to 10000", c.Clients)
	case c.Duration < time.Second || c.Duration > time.Hour:
		return c, fmt.Errorf("-duration %s: want 1s to 1h", c.Duration)
	case c.Warmup < 0 || c.Warmup > 10*time.Minute:
		return c, fmt.Errorf("-warmup %s: want 0 to 10m", c.Warmup)
	case c.Timeout < 100*time.Millisecond || c.Timeout > 5*time.Minute:
		return c, fmt.Errorf("-timeout %s: want 100ms to 5m (the webhook's limit)", c.Timeout)
	case c.CPUProfile != "" && !c.Profile:
		return c, errors.New("-cpuprofile needs -profile")
	}
	if workflowShapes[workflowKind] == "" {
		return c, fmt.Errorf("-workflow %q: want light or modules", workflowKind)
	}
	return c, nil
}

// Result is one measurement; its JSON is the machine-readable line.
type Result struct {
	Bench    string `json:"bench"`
	Workflow string `json:"workflow"`
	DB       string `json:"db"`
	DBSetup  string `json:"db_setup"`
	Clients  int    `json:"clients"`
	// DurationS is the measurement asked for; ElapsedS runs from the
	// first call to the last answer (calls in flight at the end finish).
	DurationS float64 `json:"duration_s"`
	ElapsedS  float64 `json:"elapsed_s"`
	WarmupS   float64 `json:"warmup_s"`
	TimeoutMS int64   `json:"timeout_ms"`

	Runs       int            `json:"runs"`
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	ErrorLog   []string       `json:"error_examples,omitempty"`
	RunsPerS   float64        `json:"runs_per_s"`
	P50MS      float64        `json:"p50_ms"`
	P90MS      float64        `json:"p90_ms"`
	P99MS      float64        `json:"p99_ms"`
	MaxMS      float64        `json:"max_ms"`

	// PeakRSSMiB is the server's VmHWM after resetting it at the start
	// of the window (so it is the window's peak, not the first start's
	// compilation); RSSMethod says so, or says the peak is the highest
	// VmRSS sampled every 100 ms where the reset was refused.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	EndRSSMiB  float64 `json:"end_rss_mib"`
	RSSMethod  string  `json:"rss_method"`
	// CPU seconds over the window: the server process; PostgreSQL (the
	// postmaster and its backends), throwaway cluster only; the driver
	// itself, which shares the machine.
	ServerCPUS     float64  `json:"server_cpu_s"`
	ServerCPUMSRun float64  `json:"server_cpu_ms_per_run"`
	DBCPUS         *float64 `json:"db_cpu_s"`
	DriverCPUS     float64  `json:"driver_cpu_s"`
	// InstantiateShare is the share of the server's CPU samples under
	// wazero's InstantiateModule or in guest code (profile.go); null
	// without a profile.
	InstantiateShare *float64   `json:"instantiate_cpu_share"`
	Profile          *cpuShares `json:"cpu_profile,omitempty"`
	ProfileError     string     `json:"cpu_profile_error,omitempty"`

	NProc         int    `json:"nproc"`
	CPUModel      string `json:"cpu_model"`
	GoVersion     string `json:"go_version"`
	ServerVersion string `json:"server_version"`
	Date          string `json:"date"`
}

// run makes one measurement. Progress goes to log.
func run(ctx context.Context, cfg config, log io.Writer) (*Result, error) {
	bin, err := filepath.Abs(cfg.Server)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		return nil, fmt.Errorf("-server %s: no such binary (make build makes ./bin/millrace)", cfg.Server)
	}
	r := &Result{
		Bench: "webhook-sync-3node", Workflow: workflowShapes[workflowKind], DB: cfg.DB, Clients: cfg.Clients,
		DurationS: cfg.Duration.Seconds(), WarmupS: cfg.Warmup.Seconds(), TimeoutMS: cfg.Timeout.Milliseconds(),
		NProc: runtime.NumCPU(), CPUModel: cpuModel(), GoVersion: runtime.Version(),
		Date: time.Now().UTC().Format(time.RFC3339), DBSetup: "SQLite file in a fresh data directory (WAL, synchronous NORMAL)",
	}
	if out, err := exec.CommandContext(ctx, bin, "version").Output(); err == nil {
		r.ServerVersion = strings.TrimSpace(string(out))
	}
	dir, err := os.MkdirTemp("", "millrace-load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	databaseURL, dbPid := cfg.DatabaseURL, 0
	if cfg.DB == "postgres" {
		if databaseURL != "" {
			r.DBSetup = "PostgreSQL given by -database-url (its CPU not measured)"
		} else {
			fmt.Fprintln(log, "millrace-load: starting a throwaway PostgreSQL cluster")
			var settings []string
			r.DBSetup = "throwaway PostgreSQL cluster on loopback, fsync off (test settings)"
			if cfg.PGDurable {
				settings = []string{"fsync=on", "synchronous_commit=on", "full_page_writes=on"}
				r.DBSetup = "throwaway PostgreSQL cluster on loopback, fsync and synchronous_commit on"
			}
			c, err := pgcluster.Start(ctx, settings...)
			if err != nil {
				return nil, err
			}
			defer c.Stop()
			databaseURL, dbPid = c.URL, c.Pid()
		}
	}

	fmt.Fprintf(log, "millrace-load: starting %s serve (%s)\n", cfg.Server, cfg.DB)
	srv, err := startServer(ctx, bin, dir, databaseURL, cfg.Profile)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	path, secret, err := setUp(ctx, srv.base, srv.token, cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("setting up: %w", err)
	}
	url := srv.base + path
	// The client waits a little longer than the webhook, so that a run
	// still going at the webhook's timeout shows as the server's 202.
	hc := newClient(cfg.Clients, cfg.Timeout+5*time.Second)
	defer hc.CloseIdleConnections()

	if cfg.Warmup > 0 {
		fmt.Fprintf(log, "millrace-load: warming up for %s\n", cfg.Warmup)
		w := drive(ctx, hc, url, secret, cfg.Clients, cfg.Warmup)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if w.ok == 0 {
			return nil, fmt.Errorf("no webhook call succeeded while warming up (%v): %s", w.errors, strings.Join(w.examples, "; "))
		}
	}

	fmt.Fprintf(log, "millrace-load: measuring %d clients for %s\n", cfg.Clients, cfg.Duration)
	pid := srv.pid()
	cpu0, err := cpuTime(pid, false)
	if err != nil {
		return nil, fmt.Errorf("reading the server's CPU time: %w", err)
	}
	var db0 time.Duration
	if dbPid != 0 {
		db0, _ = cpuTime(dbPid, true)
	}
	self0 := selfCPU()
	r.RSSMethod = "VmHWM, reset at the start of the window"
	if err := resetPeak(pid); err != nil {
		r.RSSMethod = "highest VmRSS sampled every 100 ms (resetting VmHWM failed: " + err.Error() + ")"
	}

	// The profile and the RSS sampler run beside the load and end on
	// their own: the profile after its seconds, the sampler when told.
	var wg sync.WaitGroup
	var prof []byte
	var profErr error
	if cfg.Profile {
		secs := int(cfg.Duration.Seconds())
		wg.Go(func() { prof, profErr = fetchProfile(ctx, srv.pprofBase, secs) })
	}
	var sampledPeak int64
	stopSampling := make(chan struct{})
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, _, err := memory(pid); err == nil {
				sampledPeak = max(sampledPeak, rss)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	})

	t := drive(ctx, hc, url, secret, cfg.Clients, cfg.Duration)
	close(stopSampling)
	cpu1, cpuErr := cpuTime(pid, false)
	self1 := selfCPU()
	rss, hwm, memErr := memory(pid)
	var db1 time.Duration
	if dbPid != 0 {
		db1, _ = cpuTime(dbPid, true)
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if cpuErr != nil || memErr != nil {
		return nil, fmt.Errorf("reading the server's /proc files after the load: %v", errors.Join(cpuErr, memErr))
	}

	lat := latencies(t)
	r.ElapsedS = t.elapsed.Seconds()
	r.Runs, r.Errors = t.ok, t.errorCount()
	if r.Errors > 0 {
		r.ErrorKinds, r.ErrorLog = t.errors, t.examples
	}
	r.RunsPerS = float64(t.ok) / t.elapsed.Seconds()
	r.P50MS, r.P90MS, r.P99MS, r.MaxMS = ms(lat.p50), ms(lat.p90), ms(lat.p99), ms(lat.max)
	if strings.HasPrefix(r.RSSMethod, "VmHWM") {
		r.PeakRSSMiB = mib(hwm)
	} else {
		r.PeakRSSMiB = mib(max(sampledPeak, rss))
	}
	r.EndRSSMiB = mib(rss)
	r.ServerCPUS = (cpu1 - cpu0).Seconds()
	if t.ok > 0 {
		r.ServerCPUMSRun = r.ServerCPUS * 1000 / float64(t.ok)
	}
	if dbPid != 0 {
		v := (db1 - db0).Seconds()
		r.DBCPUS = &v
	}
	r.DriverCPUS = (self1 - self0).Seconds()
	if cfg.Profile {
		if profErr == nil {
			r.Profile, profErr = analyzeProfile(prof)
		}
		if profErr == nil {
			r.InstantiateShare = &r.Profile.Instantiate
			if cfg.CPUProfile != "" {
				profErr = os.WriteFile(cfg.CPUProfile, prof, 0o644)
			}
		}
		if profErr != nil {
			r.ProfileError = profErr.Error()
		}
	}
	return r, nil
}

// fetchProfile takes a CPU profile of secs seconds from the server's
// profiler.
func fetchProfile(ctx context.Context, base string, secs int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, max(secs, 1)), nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 256<<20))
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("CPU profile: %s: %.200s", res.Status, b)
	}
	return b, err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func mib(b int64) float64        { return float64(b) / (1 << 20) }

// Targets of the load benchmark, reported and never enforced.
const (
	targetRunsPerS = 250
	targetP99MS    = 250
)

// print writes the table, then the JSON line.
func (r *Result) print(w io.Writer) {
	fmt.Fprintf(w, "millrace-load  %s\n", r.Workflow)
	fmt.Fprintf(w, "  database      %s (%s)\n", r.DB, r.DBSetup)
	fmt.Fprintf(w, "  load          %d clients, %.0f s measured (%.1f s to the last answer) after %.0f s warm-up; webhook timeout %d ms\n",
		r.Clients, r.DurationS, r.ElapsedS, r.WarmupS, r.TimeoutMS)
	fmt.Fprintf(w, "  runs          %d succeeded, %d errors: %.1f runs/s\n", r.Runs, r.Errors, r.RunsPerS)
	if r.Errors > 0 {
		kinds := make([]string, 0, len(r.ErrorKinds))
		for k, n := range r.ErrorKinds {
			kinds = append(kinds, fmt.Sprintf("%s: %d", k, n))
		}
		sort.Strings(kinds)
		fmt.Fprintf(w, "  errors        %s\n", strings.Join(kinds, ", "))
		for _, e := range r.ErrorLog {
			fmt.Fprintf(w, "                e.g. %s\n", e)
		}
	}
	fmt.Fprintf(w, "  latency       p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (successful calls)\n", r.P50MS, r.P90MS, r.P99MS, r.MaxMS)
	fmt.Fprintf(w, "  server RSS    peak %.1f MiB, at the end %.1f MiB (%s)\n", r.PeakRSSMiB, r.EndRSSMiB, r.RSSMethod)
	fmt.Fprintf(w, "  server CPU    %.2f s (%.2f cores, %.2f ms per run)\n", r.ServerCPUS, r.ServerCPUS/r.ElapsedS, r.ServerCPUMSRun)
	if r.DBCPUS != nil {
		fmt.Fprintf(w, "  PostgreSQL    %.2f s CPU (postmaster and backends)\n", *r.DBCPUS)
	}
	fmt.Fprintf(w, "  driver CPU    %.2f s (this load generator, on the same machine)\n", r.DriverCPUS)
	switch {
	case r.Profile != nil:
		p := r.Profile
		fmt.Fprintf(w, "  CPU profile   instantiating modules %.1f%% of the server's CPU (of which guest code %.1f%%); whole sandbox %.1f%%; GC background %.1f%% [%d samples, %.1f s]\n",
			100*p.Instantiate, 100*p.Guest, 100*p.Sandbox, 100*p.GC, p.Samples, p.Total)
	case r.ProfileError != "":
		fmt.Fprintf(w, "  CPU profile   failed: %s\n", r.ProfileError)
	}
	fmt.Fprintf(w, "  machine       nproc %d, %s, %s, server %s, %s\n", r.NProc, r.CPUModel, r.GoVersion, r.ServerVersion, r.Date)
	check := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	note := ""
	if r.DB != "sqlite" {
		note = " (the throughput and latency targets are set for SQLite)"
	}
	fmt.Fprintf(w, "  targets       no errors: %s; >= %d runs/s: %s; p99 < %d ms: %s%s\n",
		check(r.Errors == 0), targetRunsPerS, check(r.RunsPerS >= targetRunsPerS), targetP99MS, check(r.Runs > 0 && r.P99MS < targetP99MS), note)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // "->" stays readable
	enc.Encode(r)
}
