//go:build unix && !linux

package pgcluster

import "syscall"

// setParentDeathSignal does nothing where the kernel has no parent-death
// signal: a killed process leaves its server running there (Stop
// still stops it after a normal run).
func setParentDeathSignal(*syscall.SysProcAttr) {}
