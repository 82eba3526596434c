//go:build wasip1

// Command hostcalls is the host-call-heavy workload as a plain WASI reactor
// (-buildmode=c-shared): run(n) calls the host function env.tick n times
// and returns the sum of its answers.
package main

// tick is the cheapest host function that crosses with an argument and a
// result: the host returns x+1 and counts the call.
//
//go:wasmimport env tick
func tick(x int32) int32

//go:wasmexport run
func run(n int32) int64 {
	var s int64
	for i := range n {
		s += int64(tick(i))
	}
	return s
}

func main() {}
