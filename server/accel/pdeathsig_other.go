//go:build !linux

package accel

import "syscall"

// setParentDeathSignal does nothing where the kernel has no parent-death
// signal: a killed server leaves its accelerator running until it is
// stopped by hand.
func setParentDeathSignal(*syscall.SysProcAttr) {}
