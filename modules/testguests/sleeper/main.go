// Command sleeper sleeps for the time asked for, input {"ms": N}, and
// reports what the clocks saw, to check that sleep and clocks are real.
package main

import (
	"context"
	"time"

	millrace "github.com/millrace/millrace/guest-sdk"
)

type input struct {
	MS int `json:"ms"`
}

type output struct {
	SleptMS float64 `json:"slept_ms"` // measured with the monotonic clock
	Unix    int64   `json:"unix"`     // the wall clock after the sleep
}

func init() {
	millrace.Handle(func(_ context.Context, in input) (output, error) {
		start := time.Now()
		time.Sleep(time.Duration(in.MS) * time.Millisecond)
		slept := time.Since(start)
		return output{SleptMS: float64(slept) / float64(time.Millisecond), Unix: time.Now().Unix()}, nil
	})
}

func main() {}
