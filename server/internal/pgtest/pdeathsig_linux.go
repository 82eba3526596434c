package pgtest

import "syscall"

// setParentDeathSignal makes the kernel shut the server down immediately
// (SIGQUIT) when the test process dies without stopping it.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGQUIT }
