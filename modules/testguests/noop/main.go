// Command noop does nothing through the SDK: it measures the fixed cost of
// instantiating a module and running one invocation.
package main

import (
	"context"

	millrace "github.com/millrace/millrace/guest-sdk"
)

func init() {
	millrace.Handle(func(context.Context, struct{}) (struct{}, error) {
		return struct{}{}, nil
	})
}

func main() {}
