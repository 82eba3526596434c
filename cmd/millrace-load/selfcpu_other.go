//go:build !unix

package main

import "time"

// selfCPU is unknown here: the driver is built for Linux, where it also
// reads the server's /proc files; elsewhere it reports 0.
func selfCPU() time.Duration { return 0 }
