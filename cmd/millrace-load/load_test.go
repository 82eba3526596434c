package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

// The driver against a real server for two seconds: every call answered
// correctly, and the measurement complete. It asserts nothing about speed.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a real server; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the driver reads the server's memory and CPU from Linux's /proc")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	if _, err := os.Stat(filepath.Join(root, "server", "builtin", "wasm", "json_transform.wasm")); err != nil {
		t.Fatal("the built-in modules are not built: run make modules (make test does) so that the server embeds them")
	}
	bin := filepath.Join(t.TempDir(), "millrace")
	build := exec.Command("go", "build", "-o", bin, "./cmd/millrace")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	cfg, err := parseFlags([]string{"-server", bin, "-clients", "4", "-duration", "2s", "-warmup", "0s",
		// Generous, so that a busy machine gives no 202s: this test is
		// about correctness, not speed.
		"-timeout", "2m"}, io.Discard)
	require.NoError(t, err)
	var log bytes.Buffer
	res, err := run(context.Background(), cfg, &log)
	require.NoError(t, err, log.String())

	require.Zero(t, res.Errors, "%v %v", res.ErrorKinds, res.ErrorLog)
	require.Positive(t, res.Runs)
	require.Positive(t, res.PeakRSSMiB)
	require.GreaterOrEqual(t, res.P99MS, res.P50MS)
	require.Empty(t, res.ProfileError)
	require.NotNil(t, res.InstantiateShare)
	require.Positive(t, res.Profile.Samples, "the server was profiled while it worked")

	var printed bytes.Buffer
	res.print(&printed)
	lines := strings.Split(strings.TrimSpace(printed.String()), "\n")
	require.True(t, strings.HasPrefix(lines[len(lines)-1], `{"bench":"webhook-sync-3node"`), "the last line is the JSON")
	require.Contains(t, printed.String(), "instantiating modules")
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	c, err := parseFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 50, c.Clients)
	require.Equal(t, 30*time.Second, c.Duration)
	require.Equal(t, "sqlite", c.DB)
	for _, bad := range [][]string{
		{"-db", "mysql"}, {"-clients", "0"}, {"-duration", "10ms"}, {"-database-url", "postgres://x"},
		{"-profile=false", "-cpuprofile", "x.prof"}, {"extra"},
	} {
		_, err := parseFlags(bad, io.Discard)
		require.Error(t, err, "%v", bad)
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	require.Equal(t, 50*time.Millisecond, percentile(d, 0.50))
	require.Equal(t, 99*time.Millisecond, percentile(d, 0.99))
	require.Equal(t, 100*time.Millisecond, percentile(d, 1))
	require.Equal(t, time.Millisecond, percentile(d, 0))
	require.Equal(t, 7*time.Millisecond, percentile([]time.Duration{7 * time.Millisecond}, 0.99))
	require.Zero(t, percentile(nil, 0.5))
}

func TestProcFiles(t *testing.T) {
	t.Parallel()
	rss, peak, err := parseStatus([]byte("Name:\tmillrace\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t9\n"))
	require.NoError(t, err)
	require.Equal(t, int64(100<<20), rss)
	require.Equal(t, int64(200<<20), peak)
	_, _, err = parseStatus([]byte("Name:\tx\n"))
	require.Error(t, err)

	// A command name may hold spaces and parentheses.
	st, err := parseStat([]byte("4242 (a) b (c) S 17 4242 4242 0 -1 4194560 100 0 0 0 250 50 30 20 20 0 9 0 100 0 0\n"))
	require.NoError(t, err)
	require.Equal(t, 17, st.ppid)
	require.Equal(t, 3*time.Second, st.cpu)             // (250 + 50) ticks
	require.Equal(t, 500*time.Millisecond, st.children) // (30 + 20) ticks
	_, err = parseStat([]byte("1 (x) S 0"))
	require.Error(t, err)

	if runtime.GOOS == "linux" {
		_, _, err := memory(os.Getpid())
		require.NoError(t, err, "this kernel's /proc/PID/status has VmRSS and VmHWM")
		_, err = cpuTime(os.Getpid(), true)
		require.NoError(t, err)
	}
}

// A profile made by hand, with the encodings Go's runtime uses: shares
// are by CPU time, guest code counts as instantiation, and inlined
// frames are seen.
func TestAnalyzeProfile(t *testing.T) {
	t.Parallel()
	strs := []string{"", "samples", "count", "cpu", "nanoseconds", fnInstantiate, fnInvoke, fnExternal, "runtime._System", "runtime.gcBgMarkWorker", "main.other", "net/http.serve"}
	idx := func(s string) uint64 {
		for i, x := range strs {
			if x == s {
				return uint64(i)
			}
		}
		t.Fatalf("no string %q", s)
		return 0
	}
	var b []byte
	msg := func(num protowire.Number, m []byte) {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendBytes(b, m)
	}
	varint := func(m []byte, num protowire.Number, v uint64) []byte {
		m = protowire.AppendTag(m, num, protowire.VarintType)
		return protowire.AppendVarint(m, v)
	}
	packed := func(m []byte, num protowire.Number, vs ...uint64) []byte {
		var p []byte
		for _, v := range vs {
			p = protowire.AppendVarint(p, v)
		}
		m = protowire.AppendTag(m, num, protowire.BytesType)
		return protowire.AppendBytes(m, p)
	}
	msg(1, varint(varint(nil, 1, idx("samples")), 2, idx("count")))
	msg(1, varint(varint(nil, 1, idx("cpu")), 2, idx("nanoseconds")))
	// Functions 1..7, one per name.
	names := []string{fnInstantiate, fnInvoke, fnExternal, "runtime._System", "runtime.gcBgMarkWorker", "main.other", "net/http.serve"}
	for i, n := range names {
		msg(5, varint(varint(nil, 1, uint64(i+1)), 2, idx(n)))
	}
	// Locations: 1 = main.other inlined into InstantiateModule (two
	// lines, innermost first), 2 = Invoke, 3 = guest code, 4 = _System,
	// 5 = GC, 6 = net/http.
	line := func(fn uint64) []byte { return varint(nil, 1, fn) }
	loc := func(id uint64, fns ...uint64) {
		m := varint(nil, 1, id)
		for _, f := range fns {
			m = protowire.AppendTag(m, 4, protowire.BytesType)
			m = protowire.AppendBytes(m, line(f))
		}
		msg(4, m)
	}
	loc(1, 6, 1)
	loc(2, 2)
	loc(3, 3)
	loc(4, 4)
	loc(5, 5)
	loc(6, 7)
	// Samples: leaf first. Values: count, nanoseconds.
	sample := func(ns uint64, locs ...uint64) {
		var m []byte
		if len(locs) > 2 {
			m = packed(m, 1, locs...)
		} else {
			for _, l := range locs {
				m = varint(m, 1, l)
			}
		}
		msg(2, packed(m, 2, ns/10_000_000, ns))
	}
	sample(40_000_000, 1, 2, 6) // instantiation, within Invoke
	sample(30_000_000, 3, 4)    // guest code
	sample(10_000_000, 2, 6)    // Invoke, outside instantiation
	sample(10_000_000, 5)       // GC
	sample(10_000_000, 6)       // other
	for _, s := range strs {
		msg(6, []byte(s))
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(b)
	zw.Close()

	s, err := analyzeProfile(gz.Bytes())
	require.NoError(t, err)
	require.EqualValues(t, 10, s.Samples)
	require.InDelta(t, 0.1, s.Total, 1e-9)
	require.InDelta(t, 0.7, s.Instantiate, 1e-9)
	require.InDelta(t, 0.3, s.Guest, 1e-9)
	require.InDelta(t, 0.8, s.Sandbox, 1e-9)
	require.InDelta(t, 0.1, s.GC, 1e-9)

	_, err = analyzeProfile([]byte("not gzip"))
	require.Error(t, err)
}

// What Go's own profiler writes decodes: this is the format the server's
// /debug/pprof/profile serves.
func TestParseRuntimeProfile(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, pprof.StartCPUProfile(&buf))
	pprof.StopCPUProfile()
	p, err := parseProfile(buf.Bytes())
	require.NoError(t, err)
	var types []string
	for _, st := range p.sampleTypes {
		types = append(types, p.str(st[0])+"/"+p.str(st[1]))
	}
	require.Equal(t, []string{"samples/count", "cpu/nanoseconds"}, types)
}
