// Command loop spins forever without calling the host, so only the
// sandbox's timeout can stop it.
package main

import (
	"context"

	millrace "github.com/millrace/millrace/guest-sdk"
)

// spins is global and read after the loop, so the compiler cannot drop
// the loop as dead code.
var spins uint64

func init() {
	millrace.Handle(func(context.Context, struct{}) (uint64, error) {
		for spins != 1 {
			spins += 2 // even values only, even when it wraps: never 1
		}
		return spins, nil
	})
}

func main() {}
