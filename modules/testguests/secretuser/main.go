// Command secretuser reads one secret, input {"name"}, and returns
// {"value"}. It also logs the value, which the host must redact. Host
// errors fail the invocation with a message naming the errno
// ("secret_get: denied").
package main

import (
	"context"

	millrace "github.com/millrace/millrace/guest-sdk"
)

type input struct {
	Name string `json:"name"`
}

type output struct {
	Value string `json:"value"`
}

func init() {
	millrace.Handle(func(_ context.Context, in input) (output, error) {
		v, err := millrace.Secret(in.Name)
		if err != nil {
			return output{}, err
		}
		millrace.Logger().Info("read secret "+in.Name+": "+v, "value", v)
		return output{Value: v}, nil
	})
}

func main() {}
