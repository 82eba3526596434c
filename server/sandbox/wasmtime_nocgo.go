//go:build wasmtime && !cgo

package sandbox

// The wasmtime engine links wasmtime's C library through cgo: building it
// with CGO_ENABLED=0 stops here with a message that says so.
var _ = the_wasmtime_engine_needs_cgo__build_with_CGO_ENABLED_1
