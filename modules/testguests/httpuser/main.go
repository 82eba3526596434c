// Command httpuser sends one request, input {"url", "method"}, and returns
// {"status", "body"}. Host errors fail the invocation with a message
// naming the errno ("http_send: denied").
package main

import (
	"context"

	"github.com/millrace/millrace/abi"
	millrace "github.com/millrace/millrace/guest-sdk"
)

type input struct {
	URL    string `json:"url"`
	Method string `json:"method"`
}

type output struct {
	Status int    `json:"status"`
	Body   string `json:"body"`
}

func init() {
	millrace.Handle(func(_ context.Context, in input) (output, error) {
		resp, err := millrace.HTTPSend(abi.HTTPRequest{Method: in.Method, URL: in.URL})
		if err != nil {
			return output{}, err
		}
		return output{Status: resp.Status, Body: string(resp.Body)}, nil
	})
}

func main() {}
