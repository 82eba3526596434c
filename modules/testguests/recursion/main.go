// Command recursion recurses without bound, growing the goroutine stack
// until the sandbox's memory limit (or Go's stack limit) stops it.
package main

import (
	"context"

	millrace "github.com/millrace/millrace/guest-sdk"
)

// deep cannot be inlined, and its frame holds a buffer whose contents
// feed the result, so every level really takes stack.
//
//go:noinline
func deep(n int) int {
	var frame [256]byte
	frame[n%len(frame)] = byte(n)
	return deep(n+1) + int(frame[(n+1)%len(frame)])
}

func init() {
	millrace.Handle(func(context.Context, struct{}) (int, error) {
		return deep(0), nil
	})
}

func main() {}
