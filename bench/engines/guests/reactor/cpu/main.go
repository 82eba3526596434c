//go:build wasip1

// Command cpu is the CPU-heavy workload as a plain WASI reactor
// (-buildmode=c-shared): run(mib) hashes mib MiB of generated data with
// SHA-256 and returns the address of the 32-byte digest in linear memory.
//
// The data and the chaining match modules/testguests/cpu with rounds=1
// (SHA-256 of 32 zero bytes followed by the data), so every runtime's guest
// must produce the same digest.
package main

import (
	"crypto/sha256"
	"unsafe"
)

var sum [sha256.Size]byte

//go:wasmexport run
func run(mib int32) uint32 {
	data := make([]byte, int(mib)<<20)
	for i := range data {
		data[i] = byte(i*31 + i>>11)
	}
	var zero [sha256.Size]byte
	h := sha256.New()
	h.Write(zero[:])
	h.Write(data)
	h.Sum(sum[:0])
	return uint32(uintptr(unsafe.Pointer(&sum[0])))
}

func main() {}
