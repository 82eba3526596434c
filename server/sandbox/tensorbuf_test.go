package sandbox

import "testing"

func TestBufferPoolReusesWithinBounds(t *testing.T) {
	p := &bufferPool{max: 4 << 20}
	a := p.get(1 << 20)
	if len(a) != 1<<20 {
		t.Fatalf("len %d", len(a))
	}
	a[0] = 7
	p.put(a)
	if p.bytes != 1<<20 {
		t.Fatalf("pool holds %d bytes, want %d", p.bytes, 1<<20)
	}
	// A smaller request within a factor of two reuses the buffer.
	b := p.get(600 << 10)
	if &b[:1][0] != &a[:1][0] || len(b) != 600<<10 {
		t.Fatal("the free buffer was not reused")
	}
	if p.bytes != 0 {
		t.Fatalf("pool holds %d bytes after handing its buffer out", p.bytes)
	}
	// Much smaller requests do not take a large buffer.
	p.put(b)
	if c := p.get(100 << 10); cap(c) == cap(b) {
		t.Fatal("a 100 KiB request took a 1 MiB buffer")
	}
	// Small buffers are not pooled at all.
	p.put(make([]byte, 1024))
	if len(p.free) != 1 {
		t.Fatalf("%d free buffers, want 1", len(p.free))
	}
}

func TestBufferPoolStaysBounded(t *testing.T) {
	p := &bufferPool{max: 3 << 20}
	for range 3 {
		p.put(make([]byte, 1<<20))
	}
	if p.bytes != 3<<20 {
		t.Fatalf("pool holds %d bytes", p.bytes)
	}
	// A larger buffer evicts smaller ones rather than being dropped.
	p.put(make([]byte, 2<<20))
	if p.bytes > p.max {
		t.Fatalf("pool holds %d bytes, over its bound %d", p.bytes, p.max)
	}
	if cap(p.free[len(p.free)-1]) != 2<<20 {
		t.Fatal("the larger buffer was not kept")
	}
	// One larger than the whole bound is never kept.
	p.put(make([]byte, 4<<20))
	if p.bytes > p.max {
		t.Fatalf("pool holds %d bytes, over its bound %d", p.bytes, p.max)
	}
	for i := 1; i < len(p.free); i++ {
		if cap(p.free[i-1]) > cap(p.free[i]) {
			t.Fatal("free list not sorted by capacity")
		}
	}
}
