// Package hostcall is the thinnest possible layer over the millrace_v1 host
// functions of ABI.md §4: one Go function per host function, with the same
// parameters and the same errno result, so the SDK above it reads like the
// spec.
//
// Under GOOS=wasip1 each function is a //go:wasmimport of the real host
// function. The Go linker emits an import only for functions that are
// reachable, so a module that never calls, say, KVGet does not import
// kv_get and need not be granted kv. Nothing here may gather the functions
// in a table or an interface in wasm builds, or every import would be
// linked into every module.
//
// Native builds (tests) forward to a fake host installed with Install; the
// pending-result protocol (ABI.md §3.1) is emulated here, so the SDK runs
// the same code path natively as under the real host.
package hostcall
