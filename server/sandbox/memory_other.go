//go:build !linux

package sandbox

import "github.com/tetratelabs/wazero/experimental"

// newLinearMemory has no mapping to offer off Linux: memory comes from the
// Go heap (limitedMemory).
func newLinearMemory(*limitedAllocator, uint64) experimental.LinearMemory { return nil }
