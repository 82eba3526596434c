// Command reactor is a test guest built as a WASI reactor
// (GOOS=wasip1 go build -buildmode=c-shared): the host calls _initialize,
// then millrace_handle, once per invocation. It uses the ABI directly, as
// the SDK only makes commands. Input {"panic":true} panics, {"loop":true}
// spins forever; anything else comes back as {"reactor": input}.
package main

import (
	"bytes"
	"unsafe"
)

//go:wasmimport millrace_v1 input
func input(outLen unsafe.Pointer) uint32

//go:wasmimport millrace_v1 result_read
func resultRead(buf unsafe.Pointer, n uint32) uint32

//go:wasmimport millrace_v1 output_set
func outputSet(buf unsafe.Pointer, n uint32) uint32

func main() {}

var spins uint64

//go:wasmexport millrace_handle
func handle() {
	var n uint32
	input(unsafe.Pointer(&n))
	in := make([]byte, n+1) // never empty, so the pointer is never nil
	resultRead(unsafe.Pointer(&in[0]), n)
	in = in[:n]
	switch {
	case bytes.Contains(in, []byte(`"panic"`)):
		panic("reactor boom")
	case bytes.Contains(in, []byte(`"loop"`)):
		for spins != 1 {
			spins += 2
		}
	}
	out := append(append([]byte(`{"reactor":`), in...), '}')
	outputSet(unsafe.Pointer(&out[0]), uint32(len(out)))
}
