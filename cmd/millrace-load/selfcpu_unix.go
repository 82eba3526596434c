//go:build unix

package main

import (
	"syscall"
	"time"
)

// selfCPU is the driver's own CPU time: on a small machine the load
// generator competes with the server, and the reader should know how much.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
