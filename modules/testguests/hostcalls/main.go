// Command hostcalls measures host-call overhead: input {"n": N} makes N
// progress calls, the cheapest host function.
package main

import (
	"context"

	millrace "github.com/millrace/millrace/guest-sdk"
)

type count struct {
	N int `json:"n"`
}

func init() {
	millrace.Handle(func(_ context.Context, in count) (count, error) {
		for i := range in.N {
			millrace.Progress(i+1, in.N, "")
		}
		return in, nil
	})
}

func main() {}
