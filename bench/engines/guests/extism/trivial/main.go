//go:build wasip1

// Command trivial is the "return at once" workload as an Extism plug-in:
// run outputs "42".
package main

import "github.com/extism/go-pdk"

//go:wasmexport run
func run() int32 {
	pdk.OutputString("42")
	return 0
}

func main() {}
