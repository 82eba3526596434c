package main

import "syscall"

// setParentDeathSignal makes the kernel stop the server when the driver
// dies without stopping it (Ctrl-C twice, a test timeout): no measurement
// leaves a server behind.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
