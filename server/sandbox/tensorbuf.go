package sandbox

import (
	"slices"
	"sync"
)

// tensorBuffers keeps the host's copies of large input tensors between
// invocations. set_input must copy a tensor out of guest memory (the
// guest may change or free it after the call), and a fresh 10 MiB buffer
// is mostly page faults: the Go heap hands back memory the scavenger
// returned to the kernel, and the copy into it ran at ~1 GB/s, the whole
// cost of the tensor ABI on a large input (BENCHMARKS.md, issue 4).
// Buffers kept here stay mapped, so the copy runs at memory speed.
var tensorBuffers = &bufferPool{max: 256 << 20}

// pooledMin is the smallest buffer worth keeping: below it the copy is
// cheap and the heap's own size classes do well.
const pooledMin = 64 << 10

// bufferPool is a bounded free list of byte buffers, handed out best fit.
type bufferPool struct {
	mu    sync.Mutex
	free  [][]byte // sorted by capacity
	bytes int64    // total capacity in free
	max   int64
}

// get returns a buffer of length n, reused when one of at most twice the
// capacity needed is free.
func (p *bufferPool) get(n int) []byte {
	if n < pooledMin {
		return make([]byte, n)
	}
	p.mu.Lock()
	i, _ := slices.BinarySearchFunc(p.free, n, func(b []byte, n int) int { return cap(b) - n })
	if i < len(p.free) && cap(p.free[i]) <= 2*n {
		b := p.free[i]
		p.free = slices.Delete(p.free, i, i+1)
		p.bytes -= int64(cap(b))
		p.mu.Unlock()
		return b[:n]
	}
	p.mu.Unlock()
	return make([]byte, n)
}

// put gives a buffer back. The caller must hold no other reference to it.
// When the pool is full the smallest buffers make way for a larger one,
// since large copies are the ones that pay for fresh pages.
func (p *bufferPool) put(b []byte) {
	if cap(b) < pooledMin || int64(cap(b)) > p.max {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.bytes+int64(cap(b)) > p.max && len(p.free) > 0 && cap(p.free[0]) < cap(b) {
		p.bytes -= int64(cap(p.free[0]))
		p.free = slices.Delete(p.free, 0, 1)
	}
	if p.bytes+int64(cap(b)) > p.max {
		return
	}
	i, _ := slices.BinarySearchFunc(p.free, cap(b), func(f []byte, n int) int { return cap(f) - n })
	p.free = slices.Insert(p.free, i, b[:0])
	p.bytes += int64(cap(b))
}
