// Command panic panics inside its handler, as a buggy module would.
package main

import (
	"context"

	millrace "github.com/millrace/millrace/guest-sdk"
)

func init() {
	millrace.Handle(func(context.Context, struct{}) (struct{}, error) {
		panic("boom")
	})
}

func main() {}
