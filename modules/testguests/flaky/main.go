// Command flaky counts its executions in the key-value store (key "runs"
// plus the input's "key") and fails until the count reaches the input's
// "succeed_on"; it then outputs the count. Workflow tests use it to see
// retries, and how often a node really ran.
package main

import (
	"context"
	"fmt"

	millrace "github.com/millrace/millrace/guest-sdk"
)

type input struct {
	Key       string `json:"key"`
	SucceedOn int64  `json:"succeed_on"`
}

type output struct {
	Runs int64 `json:"runs"`
}

func init() {
	millrace.Handle(func(ctx context.Context, in input) (output, error) {
		n, err := millrace.KVAdd("runs"+in.Key, 1)
		if err != nil {
			return output{}, err
		}
		if n < in.SucceedOn {
			return output{}, fmt.Errorf("run %d of %d: failing on purpose", n, in.SucceedOn)
		}
		return output{Runs: n}, nil
	})
}

func main() {}
