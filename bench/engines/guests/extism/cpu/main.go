//go:build wasip1

// Command cpu is the CPU-heavy workload as an Extism plug-in: the input is
// the number of MiB as decimal text; the output is the hex SHA-256 of 32
// zero bytes followed by that much generated data (as
// modules/testguests/cpu with rounds=1).
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/extism/go-pdk"
)

//go:wasmexport run
func run() int32 {
	mib, err := strconv.Atoi(pdk.InputString())
	if err != nil {
		pdk.SetError(err)
		return 1
	}
	data := make([]byte, mib<<20)
	for i := range data {
		data[i] = byte(i*31 + i>>11)
	}
	var sum [sha256.Size]byte
	h := sha256.New()
	h.Write(sum[:])
	h.Write(data)
	pdk.OutputString(hex.EncodeToString(h.Sum(sum[:0])))
	return 0
}

func main() {}
