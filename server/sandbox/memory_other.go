//go:build !linux

package sandbox

import "github.com/tetratelabs/wazero/experimental"

// memImage is the initial contents of a memory. Off Linux there is no
// memfd to map copy-on-write, so instances copy it.
type memImage struct{ b []byte }

func newMemImage(b []byte) (*memImage, error) { return &memImage{b: append([]byte(nil), b...)}, nil }
func (i *memImage) len() int                  { return len(i.b) }
func (i *memImage) close()                    {}

// newLinearMemory has no mapping to offer off Linux: memory comes from the
// Go heap (limitedMemory), which copies the image in.
func newLinearMemory(*limitedAllocator, uint64, *memImage) experimental.LinearMemory { return nil }

// copyTo fills b with the image.
func (i *memImage) copyTo(b []byte) { copy(b, i.b) }
