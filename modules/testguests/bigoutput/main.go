// Command bigoutput sets an output of the size asked for: a JSON string of
// N MiB, input {"mib": N}. It bypasses Handle so the document is built
// once, without a JSON encoding pass doubling the memory it needs.
package main

import (
	millrace "github.com/millrace/millrace/guest-sdk"
)

func main() {
	var in struct {
		MiB int `json:"mib"`
	}
	if err := millrace.Input(&in); err != nil {
		panic(err)
	}
	doc := make([]byte, in.MiB<<20+2)
	for i := range doc {
		doc[i] = 'x'
	}
	doc[0], doc[len(doc)-1] = '"', '"'
	// An output over the limit fails the invocation on the host's side;
	// exiting normally lets the host report exactly that.
	_ = millrace.WriteOutput(doc)
}
