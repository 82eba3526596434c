//go:build unix && !linux

package pgtest

import "syscall"

// setParentDeathSignal does nothing where the kernel has no parent-death
// signal: a killed test process leaves its server running there (Main
// still stops it after a normal run).
func setParentDeathSignal(*syscall.SysProcAttr) {}
