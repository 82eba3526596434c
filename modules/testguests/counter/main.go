// Command counter keeps state in package variables: a call count and the
// inputs it has seen. Built as a reactor it must report one call and only
// its own input every time, since each invocation starts from the state
// init left.
package main

import (
	"context"

	millrace "github.com/millrace/millrace/guest-sdk"
)

var (
	calls int
	seen  []string
)

type input struct {
	Secret string `json:"secret"`
}

type output struct {
	Calls int      `json:"calls"`
	Seen  []string `json:"seen"`
}

func init() {
	millrace.Handle(func(_ context.Context, in input) (output, error) {
		calls++
		seen = append(seen, in.Secret)
		return output{Calls: calls, Seen: seen}, nil
	})
}

func main() {}
