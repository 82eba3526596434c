// Package testguests holds no code: its subfolders are the guests that
// the server's sandbox tests and benchmarks run (hostile ones, capability
// probes, and benchmark loads), built with GOOS=wasip1 GOARCH=wasm by
// server/internal/testguests. They are fixtures, not examples.
package testguests
