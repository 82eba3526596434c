//go:build linux

package sandbox

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tetratelabs/wazero/experimental"
)

// mmapMemory backs a guest's linear memory with an anonymous private
// mapping that reserves the invocation's whole memory limit up front.
// Growing is then free (no copy: the kernel hands out zeroed pages as the
// guest touches them), and the memory is outside the Go heap, so a fresh
// instance per invocation adds nothing for the garbage collector to scan.
// A profile of the webhook benchmark put copying on growth and GC at a
// quarter of the server's CPU before this.
//
// When the instance starts from an image (the module's data, or a snapshot
// taken after _initialize), the image's memfd is mapped privately over the
// start of the reservation: pages are shared with every other instance
// until the guest writes to them (copy-on-write), so starting costs a
// mapping, not a copy.
type mmapMemory struct {
	alloc *limitedAllocator
	buf   []byte // the whole reservation
	size  uint64 // the guest-visible size
	image *memImage
}

// memImage is the initial contents of a memory, in a sealed memfd.
type memImage struct {
	fd   int
	size int
}

func newMemImage(b []byte) (*memImage, error) {
	fd, err := unix.MemfdCreate("millrace-memory-image", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	img := &memImage{fd: fd, size: len(b)}
	if err := unix.Ftruncate(fd, int64(len(b))); err != nil {
		img.close()
		return nil, fmt.Errorf("ftruncate: %w", err)
	}
	for off := 0; off < len(b); {
		n, err := unix.Pwrite(fd, b[off:], int64(off))
		if err != nil {
			img.close()
			return nil, fmt.Errorf("writing the memory image: %w", err)
		}
		off += n
	}
	// Sealed, the image cannot change under the instances mapping it.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		img.close()
		return nil, fmt.Errorf("sealing the memory image: %w", err)
	}
	return img, nil
}

func (i *memImage) len() int { return i.size }

func (i *memImage) close() {
	if i != nil && i.fd >= 0 {
		unix.Close(i.fd)
		i.fd = -1
	}
}

// newLinearMemory reserves max bytes and maps img (if any) over its start,
// or returns nil when the kernel refuses (the caller falls back to heap
// memory).
func newLinearMemory(a *limitedAllocator, max uint64, img *memImage) experimental.LinearMemory {
	if max == 0 || (img != nil && uint64(img.size) > max) {
		return nil
	}
	buf, err := unix.Mmap(-1, 0, int(max), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON|unix.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	m := &mmapMemory{alloc: a, buf: buf, image: img}
	if err := m.mapImage(); err != nil {
		unix.Munmap(buf)
		return nil
	}
	return m
}

// mapImage maps the image over the start of the reservation, discarding
// whatever the guest wrote there.
func (m *mmapMemory) mapImage() error {
	if m.image == nil || m.image.size == 0 {
		return nil
	}
	_, err := unix.MmapPtr(m.image.fd, 0, unsafe.Pointer(&m.buf[0]), uintptr(m.image.size),
		unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_FIXED)
	return err
}

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		m.alloc.refused.Store(true)
		return nil
	}
	m.size = size
	return m.buf[:size:size]
}

// reset returns the memory to its image. It works only while the guest
// has not grown the memory past the image (the caller checks), since the
// guest-visible size cannot shrink.
func (m *mmapMemory) reset() bool {
	return m.image != nil && m.size == uint64(m.image.size) && m.mapImage() == nil
}

func (m *mmapMemory) Free() {
	if m.buf != nil {
		unix.Munmap(m.buf)
		m.buf = nil
	}
}

// copyTo fills b with the image, for memory that cannot map it.
func (i *memImage) copyTo(b []byte) {
	n := min(len(b), i.size)
	for off := 0; off < n; {
		r, err := unix.Pread(i.fd, b[off:n], int64(off))
		if err != nil || r == 0 {
			return
		}
		off += r
	}
}
