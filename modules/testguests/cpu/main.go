// Command cpu is a CPU-bound benchmark load: input {"mib": N, "rounds": R}
// hashes N MiB of fixed data with SHA-256, R times, each round chained to
// the last so none can be skipped.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	millrace "github.com/millrace/millrace/guest-sdk"
)

type input struct {
	MiB    int `json:"mib"`
	Rounds int `json:"rounds"`
}

type output struct {
	Sum string `json:"sum"`
}

func init() {
	millrace.Handle(func(_ context.Context, in input) (output, error) {
		data := make([]byte, in.MiB<<20)
		for i := range data {
			data[i] = byte(i*31 + i>>11)
		}
		var sum [sha256.Size]byte
		for range max(in.Rounds, 1) {
			h := sha256.New()
			h.Write(sum[:])
			h.Write(data)
			h.Sum(sum[:0])
		}
		return output{Sum: hex.EncodeToString(sum[:])}, nil
	})
}

func main() {}
