// Command porter leaves by the output port named in its input ({"port":
// "yes"}), or by the default port when the input names none.
package main

import (
	"context"

	millrace "github.com/millrace/millrace/guest-sdk"
)

type input struct {
	Port string `json:"port"`
}

func init() {
	millrace.Handle(func(ctx context.Context, in input) (input, error) {
		if in.Port != "" {
			if err := millrace.SetPort(in.Port); err != nil {
				return in, err
			}
		}
		return in, nil
	})
}

func main() {}
