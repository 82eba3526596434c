// Command logflood logs as much as it is asked to, input {"records": N,
// "bytes": M, "stdout": K}: N info records of M bytes through the log
// function, then K bytes on stdout. It checks that the host bounds logs.
package main

import (
	"context"
	"fmt"
	"strings"

	millrace "github.com/millrace/millrace/guest-sdk"
)

type input struct {
	Records int `json:"records"`
	Bytes   int `json:"bytes"`
	Stdout  int `json:"stdout"`
}

type output struct {
	OK bool `json:"ok"`
}

func init() {
	millrace.Handle(func(_ context.Context, in input) (output, error) {
		log := millrace.Logger()
		msg := strings.Repeat("l", in.Bytes)
		for range in.Records {
			log.Info(msg)
		}
		fmt.Print(strings.Repeat("s", in.Stdout))
		return output{OK: true}, nil
	})
}

func main() {}
