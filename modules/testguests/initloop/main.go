// Command initloop never finishes initialising: its init function loops
// forever. The host must stop it (at upload, where a reactor is
// initialised once) and say why.
package main

import (
	"context"

	millrace "github.com/millrace/millrace/guest-sdk"
)

var spins uint64

func init() {
	for spins != 1 {
		spins += 2 // even values only, even when it wraps: never 1
	}
	millrace.Handle(func(context.Context, struct{}) (uint64, error) { return spins, nil })
}

func main() {}
