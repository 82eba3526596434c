package accel

import "syscall"

// setParentDeathSignal has the kernel kill the accelerator when the server
// dies without stopping it (kill -9, a crash), so no orphan keeps the GPU.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
