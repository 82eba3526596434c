// Command echo is the Millrace module that returns its input unchanged. It
// is the smallest useful module: a template for new ones and a probe that
// the host, the ABI and the SDK agree.
package main

import (
	"context"
	"encoding/json"

	millrace "github.com/millrace/millrace/guest-sdk"
)

func init() { millrace.Handle(run) }

func main() {}

func run(_ context.Context, in json.RawMessage) (json.RawMessage, error) {
	millrace.Logger().Info("echo", "bytes", len(in))
	return in, nil
}
