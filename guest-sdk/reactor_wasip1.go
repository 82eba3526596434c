//go:build wasip1

package millrace

import "errors"

// handleExport is the reactor's entry point for one invocation (ABI.md §1).
//
//go:wasmexport millrace_handle
func handleExport() {
	if registered == nil {
		fail(errors.New(errNoHandler))
		return
	}
	registered()
}
