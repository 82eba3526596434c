// Command kv_counter is the Millrace module that keeps named counters in
// the module's key-value store. kv_add is atomic on the host, so
// concurrent invocations never lose an increment.
package main

import (
	"context"

	millrace "github.com/millrace/millrace/guest-sdk"
)

func init() { millrace.Handle(run) }

func main() {}

type input struct {
	Key   string `json:"key"`   // "default" when empty
	Delta *int64 `json:"delta"` // 1 when absent; 0 reads the counter
}

type output struct {
	Key   string `json:"key"`
	Value int64  `json:"value"`
}

func run(_ context.Context, in input) (output, error) {
	key := in.Key
	if key == "" {
		key = "default"
	}
	delta := int64(1)
	if in.Delta != nil {
		delta = *in.Delta
	}
	v, err := millrace.KVAdd(key, delta)
	if err != nil {
		return output{}, err
	}
	return output{Key: key, Value: v}, nil
}
