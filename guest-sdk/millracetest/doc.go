// Package millracetest runs Millrace module handlers natively, against a
// fake host, so modules can be unit-tested with plain go test:
//
//	h := millracetest.NewHost()
//	h.KV["visits"] = []byte("41")
//	out, err := millracetest.Call(h, run, Input{Key: "visits"})
//
// Call goes through the same code as millrace.Handle under the real host:
// the input and output make a JSON round trip and every host function
// follows ABI.md, including its errno results. A Host grants every
// capability until Grants narrows it. Models serves the tensor ABI
// (package nn) with Go functions in place of the accelerator.
//
// The package is empty under GOOS=wasip1, where the real host is used.
package millracetest
