//go:build wasip1

package millrace

import (
	"errors"

	"github.com/millrace/millrace/guest-sdk/internal/hostcall"
)

// handleExport is the reactor's entry point for one invocation (ABI.md §1).
//
//go:wasmexport millrace_handle
func handleExport() {
	run := hostcall.Handler()
	if run == nil {
		fail(errors.New(errNoHandler))
		return
	}
	run()
}
