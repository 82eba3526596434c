//go:build !linux

package main

import "syscall"

// setParentDeathSignal does nothing where the kernel has no parent-death
// signal; the driver still stops its server when it ends normally.
func setParentDeathSignal(*syscall.SysProcAttr) {}
