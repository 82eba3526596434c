package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRatios(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"testdata/bench.txt"}, &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"Medians of 1 run(s) each.", // the fewest runs of any benchmark
		// wazero fresh is the median of 2, 4 and 3 ms; millrace/wazero = 6/3.
		"| trivial | 6.00 ms | 3.00 ms | — | — | — | — | 2.00× | — | — |",
		"| hostcalls | 26.00 ms | 13.00 ms | — | — | — | — | 2.00× | — | — |",
		"| trivial | 976.6 KiB | 4.8 MiB |",
		// Millrace fresh against wazero warm.
		"| trivial | 6.00 ms | 1.0 µs | — | — | 6000.00× | — | — |",
		// (26 - 6) ms / 100,000 calls = 200 ns; (13 - 3) ms / 100,000 = 100 ns.
		"| fresh | 200 ns | 100 ns | — | — | — |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

func TestRatiosNoResults(t *testing.T) {
	if err := run([]string{"main.go"}, new(bytes.Buffer)); err == nil {
		t.Fatal("want an error for a file with no results")
	}
}

func TestParseName(t *testing.T) {
	k, ok := parseName("BenchmarkEngines/workload=cpu/runtime=millrace-nopreempt/mode=fresh-16")
	if !ok || k != (key{"cpu", "millrace-nopreempt", "fresh"}) {
		t.Fatalf("got %+v, %v", k, ok)
	}
	if _, ok := parseName("BenchmarkEngines/workload=cpu/runtime=wazero"); ok {
		t.Fatal("a name without a mode is not a result")
	}
}
