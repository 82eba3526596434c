//go:build wasip1

// Command hostcalls is the host-call-heavy workload as an Extism plug-in:
// the input is N as decimal text; run calls the host function tick N times
// and outputs the sum of its answers as decimal text.
package main

import (
	"strconv"

	"github.com/extism/go-pdk"
)

// tick is an Extism host function (namespace extism:host/user): the host
// returns x+1 and counts the call.
//
//go:wasmimport extism:host/user tick
func tick(x int32) int32

//go:wasmexport run
func run() int32 {
	n, err := strconv.Atoi(pdk.InputString())
	if err != nil {
		pdk.SetError(err)
		return 1
	}
	var s int64
	for i := range int32(n) {
		s += int64(tick(i))
	}
	pdk.OutputString(strconv.FormatInt(s, 10))
	return 0
}

func main() {}
