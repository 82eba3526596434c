// Command secretuser reads one secret, input {"name"}, and returns
// {"value"}. It also logs the value, which the host must redact. Host
// errors fail the invocation with a message naming the errno
// ("secret_get: denied"). With {"fail": true} it fails instead, with the
// value in its error message, which the host must redact too.
package main

import (
	"context"
	"errors"

	millrace "github.com/millrace/millrace/guest-sdk"
)

type input struct {
	Name string `json:"name"`
	Fail bool   `json:"fail"`
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
		if in.Fail {
			return output{}, errors.New("the upstream refused the key " + v)
		}
		return output{Value: v}, nil
	})
}

func main() {}
