package pgcluster

import "syscall"

// setParentDeathSignal makes the kernel shut the server down immediately
// (SIGQUIT) when the process that started it dies without stopping it.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGQUIT }
