// Command random returns two values from crypto/rand, to check that the
// host's random source is real: they must differ between and within runs.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"

	millrace "github.com/millrace/millrace/guest-sdk"
)

type output struct {
	A string `json:"a"`
	B string `json:"b"`
}

func init() {
	millrace.Handle(func(context.Context, struct{}) (output, error) {
		var a, b [16]byte
		rand.Read(a[:]) // never fails since Go 1.24: it crashes the program instead
		rand.Read(b[:])
		return output{A: hex.EncodeToString(a[:]), B: hex.EncodeToString(b[:])}, nil
	})
}

func main() {}
