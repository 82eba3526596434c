package millrace

import "github.com/millrace/millrace/guest-sdk/internal/hostcall"

// ForgetHandler drops the handler a test registered, so it cannot run in
// the tests after it.
func ForgetHandler() { hostcall.SetHandler(nil) }
