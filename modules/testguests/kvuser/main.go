// Command kvuser runs one key-value operation, input {"op": "get" | "set"
// | "delete" | "add", "key", "value", "delta"}. Host errors fail the
// invocation with a message naming the errno ("kv_get: denied").
package main

import (
	"context"
	"fmt"

	millrace "github.com/millrace/millrace/guest-sdk"
)

type input struct {
	Op    string `json:"op"`
	Key   string `json:"key"`
	Value string `json:"value"`
	Delta int64  `json:"delta"`
}

type getOutput struct {
	Found bool   `json:"found"`
	Value string `json:"value"`
}

type addOutput struct {
	Value int64 `json:"value"`
}

type okOutput struct {
	OK bool `json:"ok"`
}

func init() {
	millrace.Handle(func(_ context.Context, in input) (any, error) {
		switch in.Op {
		case "get":
			v, found, err := millrace.KVGet(in.Key)
			return getOutput{Found: found, Value: string(v)}, err
		case "set":
			return okOutput{OK: true}, millrace.KVSet(in.Key, []byte(in.Value))
		case "delete":
			return okOutput{OK: true}, millrace.KVDelete(in.Key)
		case "add":
			v, err := millrace.KVAdd(in.Key, in.Delta)
			return addOutput{Value: v}, err
		}
		return nil, fmt.Errorf("unknown op %q: use get, set, delete or add", in.Op)
	})
}

func main() {}
