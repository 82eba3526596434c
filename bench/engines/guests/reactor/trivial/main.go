//go:build wasip1

// Command trivial is the "return at once" workload as a plain WASI reactor
// (-buildmode=c-shared): run returns 42 and does nothing else.
package main

//go:wasmexport run
func run() int32 { return 42 }

func main() {}
