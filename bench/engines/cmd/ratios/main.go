// Command ratios reads the output of the engine benchmark (`make bench`
// writes it to build/bench-engines.txt) and prints Markdown tables of the
// medians and of Millrace's path relative to raw wazero, Extism and
// wasmtime-go, ready for BENCHMARKS.md:
//
//	go run ./bench/engines/cmd/ratios build/bench-engines.txt
//
// Medians are taken over every run of a benchmark in the files (-count),
// as benchstat does. Lines that are not benchmark results are ignored.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ratios:", err)
		os.Exit(1)
	}
}

// key names one sub-benchmark of BenchmarkEngines.
type key struct{ workload, runtime, mode string }

// samples holds every run's value of each unit.
type samples map[key]map[string][]float64

var (
	workloads = []string{"trivial", "cpu", "hostcalls"}
	// millrace is the path the ratios are about; others are the references.
	millrace = "millrace"
	others   = []string{"wazero", "extism", "wasmtime"}
	// extra columns shown, not used for ratios.
	extra = []string{"millrace-command", "millrace-nopreempt"}
)

// hostCalls is the size of the host-call workload (engines.HostCallCount).
const hostCalls = 100_000

func run(args []string, w io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: ratios FILE... (output of the engine benchmark, e.g. build/bench-engines.txt)")
	}
	s := samples{}
	for _, name := range args {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		err = s.read(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if len(s) == 0 {
		return fmt.Errorf("no BenchmarkEngines results in %s", strings.Join(args, ", "))
	}
	s.write(w)
	return nil
}

// read parses Go benchmark lines of the form
//
//	BenchmarkEngines/workload=cpu/runtime=wazero/mode=fresh-2  20  1.7e8 ns/op  1234 B/op ...
//
// This format is simple and fixed (the testing package's); it is parsed
// here rather than with golang.org/x/perf/benchfmt because that module's
// requirements would raise versions of modules the server itself builds
// with in the go.work workspace.
func (s samples) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "BenchmarkEngines/") {
			continue
		}
		k, ok := parseName(fields[0])
		if !ok {
			continue
		}
		if _, err := strconv.Atoi(fields[1]); err != nil {
			continue // not a result line (a log line that starts with the name)
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				return fmt.Errorf("%s: value %q: %w", fields[0], fields[i], err)
			}
			if s[k] == nil {
				s[k] = map[string][]float64{}
			}
			s[k][fields[i+1]] = append(s[k][fields[i+1]], v)
		}
	}
	return sc.Err()
}

// parseName splits a sub-benchmark name into its keys, dropping the
// -GOMAXPROCS suffix.
func parseName(name string) (key, bool) {
	var k key
	for _, part := range strings.Split(name, "/")[1:] {
		kv, v, ok := strings.Cut(part, "=")
		if !ok {
			return k, false
		}
		if i := strings.LastIndexByte(v, '-'); i >= 0 && kv == "mode" {
			if _, err := strconv.Atoi(v[i+1:]); err == nil {
				v = v[:i]
			}
		}
		switch kv {
		case "workload":
			k.workload = v
		case "runtime":
			k.runtime = v
		case "mode":
			k.mode = v
		}
	}
	return k, k.workload != "" && k.runtime != "" && k.mode != ""
}

// median returns the median of a unit's runs and how many runs there were.
func (s samples) median(k key, unit string) (float64, int, bool) {
	vs := slices.Clone(s[k][unit])
	if len(vs) == 0 {
		return 0, 0, false
	}
	slices.Sort(vs)
	m := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		m = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	return m, len(vs), true
}

func (s samples) write(w io.Writer) {
	runs := 0
	for k := range s {
		if _, n, ok := s.median(k, "ns/op"); ok && (runs == 0 || n < runs) {
			runs = n
		}
	}
	fmt.Fprintf(w, "Medians of %d run(s) each.\n\n", runs)

	cols := append(append([]string{millrace}, others...), extra...)
	for _, t := range []struct {
		title, unit string
		format      func(float64) string
	}{
		{"Time per operation, fresh instance (instantiate + initialise + run + close)", "ns/op", formatTime},
		{"Go heap allocated per operation, fresh instance (B/op; misses wasmtime's native allocations)", "B/op", formatBytes},
	} {
		fmt.Fprintf(w, "#### %s\n\n", t.title)
		header := []string{"workload"}
		header = append(header, cols...)
		for _, o := range others {
			header = append(header, millrace+" / "+o)
		}
		row(w, header...)
		row(w, dashes(len(header))...)
		for _, wl := range workloads {
			cells := []string{wl}
			for _, c := range cols {
				cells = append(cells, s.cell(key{wl, c, "fresh"}, t.unit, t.format))
			}
			for _, o := range others {
				cells = append(cells, s.ratio(key{wl, millrace, "fresh"}, key{wl, o, "fresh"}, t.unit))
			}
			row(w, cells...)
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "#### Warm instance (initialised before timing: what a pool gives); Millrace has no warm path, its fresh time is compared\n\n")
	header := []string{"workload", millrace + " (fresh)"}
	for _, o := range others {
		header = append(header, o+" warm")
	}
	for _, o := range others {
		header = append(header, millrace+" fresh / "+o+" warm")
	}
	row(w, header...)
	row(w, dashes(len(header))...)
	for _, wl := range workloads {
		cells := []string{wl, s.cell(key{wl, millrace, "fresh"}, "ns/op", formatTime)}
		for _, o := range others {
			cells = append(cells, s.cell(key{wl, o, "warm"}, "ns/op", formatTime))
		}
		for _, o := range others {
			cells = append(cells, s.ratio(key{wl, millrace, "fresh"}, key{wl, o, "warm"}, "ns/op"))
		}
		row(w, cells...)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "#### Per host call: (hostcalls − trivial) / %d, same mode\n\n", hostCalls)
	header = []string{"mode"}
	header = append(header, cols...)
	row(w, header...)
	row(w, dashes(len(header))...)
	for _, mode := range []string{"fresh", "warm"} {
		cells := []string{mode}
		for _, c := range cols {
			hc, _, ok1 := s.median(key{"hostcalls", c, mode}, "ns/op")
			tr, _, ok2 := s.median(key{"trivial", c, mode}, "ns/op")
			if ok1 && ok2 {
				cells = append(cells, fmt.Sprintf("%.0f ns", (hc-tr)/hostCalls))
			} else {
				cells = append(cells, "—")
			}
		}
		row(w, cells...)
	}
}

func (s samples) cell(k key, unit string, format func(float64) string) string {
	v, _, ok := s.median(k, unit)
	if !ok {
		return "—"
	}
	return format(v)
}

func (s samples) ratio(num, den key, unit string) string {
	a, _, ok1 := s.median(num, unit)
	b, _, ok2 := s.median(den, unit)
	if !ok1 || !ok2 || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func row(w io.Writer, cells ...string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

func dashes(n int) []string {
	d := make([]string, n)
	for i := range d {
		d[i] = "---"
	}
	return d
}

func formatTime(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func formatBytes(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
