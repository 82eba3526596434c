package millrace

import (
	"runtime"
	"runtime/debug"
)

// reactor reports a module built with -buildmode=c-shared: the host runs
// its init functions once (_initialize) and then calls millrace_handle for
// each invocation, instead of running main.
var reactor = func() bool {
	if runtime.GOOS != "wasip1" {
		return false
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-buildmode" {
			return s.Value == "c-shared"
		}
	}
	return false
}()
