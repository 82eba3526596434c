package main

import millrace "github.com/millrace/millrace/guest-sdk"

// The handler is registered only in the WebAssembly build: natively,
// Handle would run at once and panic for want of a host, and the tests call
// generate with their own runner instead.
func init() { millrace.Handle(run) }
