//go:build linux

package sandbox

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
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

// memImage is the initial contents of a memory, in a sealed memfd, and a
// read-only view of it that resets copy from.
type memImage struct {
	fd   int
	size int
	view []byte
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
	if len(b) > 0 {
		if img.view, err = unix.Mmap(fd, 0, len(b), unix.PROT_READ, unix.MAP_SHARED); err != nil {
			img.close()
			return nil, fmt.Errorf("mapping the memory image: %w", err)
		}
	}
	return img, nil
}

func (i *memImage) len() int { return i.size }

func (i *memImage) close() {
	if i == nil {
		return
	}
	if i.view != nil {
		unix.Munmap(i.view)
		i.view = nil
	}
	if i.fd >= 0 {
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
	adviseHugePages(buf, img)
	if err := m.mapImage(); err != nil {
		unix.Munmap(buf)
		return nil
	}
	return m
}

// hugePage is the size of a transparent huge page on x86-64 and arm64.
const hugePage = 2 << 20

// adviseHugePages asks for transparent huge pages past the image, where
// a guest's heap grows. A guest that grows by tens of MiB (a tensor, an
// image) otherwise takes a page fault per 4 KiB, thousands per
// invocation; with huge pages it takes one per 2 MiB. The image itself
// keeps small pages: reset copies back exactly the pages a guest wrote.
// The advice is only that: where huge pages are off, nothing changes.
func adviseHugePages(buf []byte, img *memImage) {
	start := 0
	if img != nil {
		start = (img.size + hugePage - 1) / hugePage * hugePage
	}
	if start < len(buf) {
		_ = unix.Madvise(buf[start:], unix.MADV_HUGEPAGE)
	}
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
// has not grown the memory past the image, since the guest-visible size
// cannot shrink.
//
// Only the pages the guest wrote differ from the image, and the kernel
// says which they are: a written page of a private file mapping has become
// an anonymous page. reset copies the image back over those pages alone
// and keeps them, so the next invocation writes to them without a
// copy-on-write fault: a Go reactor writes the same few dozen pages every
// time, and re-mapping the image would make each of them fault again.
// When the page map cannot be read, the image is mapped afresh instead.
func (m *mmapMemory) reset() bool {
	if m.image == nil || m.size != uint64(m.image.size) {
		return false
	}
	if m.image.size == 0 {
		return true
	}
	restore := func(off, end int) { copy(m.buf[off:end], m.image.view[off:end]) }
	if scanWrittenPages(m.buf[:m.image.size], restore) {
		return true
	}
	pages := m.image.size / pageSize
	entries := make([]byte, pages*8)
	if !readPagemap(uintptr(unsafe.Pointer(&m.buf[0])), entries) {
		return m.mapImage() == nil
	}
	for p := range pages {
		e := binary.LittleEndian.Uint64(entries[p*8:])
		present, swapped, file := e&(1<<63) != 0, e&(1<<62) != 0, e&(1<<61) != 0
		if swapped || (present && !file) {
			restore(p*pageSize, (p+1)*pageSize)
		}
	}
	return true
}

const pageSize = 4096

var pagemap = sync.OnceValue(func() *os.File {
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return nil
	}
	return f
})

// readPagemap reads the page map entries (8 bytes each) of the pages from
// addr on into entries.
func readPagemap(addr uintptr, entries []byte) bool {
	f := pagemap()
	if f == nil || os.Getpagesize() != pageSize {
		return false
	}
	n, err := f.ReadAt(entries, int64(addr/pageSize)*8)
	return err == nil && n == len(entries)
}

// The PAGEMAP_SCAN ioctl (Linux 6.7) of /proc/self/pagemap, from
// include/uapi/linux/fs.h: it returns the ranges of pages in given
// categories instead of 8 bytes for every page, which for a 64 MiB image
// is ~5 µs instead of ~28 µs per reset (measured on this machine).
type pmScanArg struct {
	size, flags, start, end, walkEnd, vec, vecLen, maxPages       uint64
	categoryInverted, categoryMask, categoryAnyofMask, returnMask uint64
}

type pageRegion struct{ start, end, categories uint64 }

const (
	pageIsFile    = 1 << 2
	pageIsPresent = 1 << 3
	pageIsSwapped = 1 << 4
	// _IOWR('f', 16, struct pm_scan_arg)
	pagemapScanIoctl = 3<<30 | uint64(unsafe.Sizeof(pmScanArg{}))<<16 | uint64('f')<<8 | 16
)

// noPagemapScan is set once the kernel has refused PAGEMAP_SCAN (older
// than 6.7): the page map is read instead from then on.
var noPagemapScan atomic.Bool

// scanWrittenPages calls restore for each range of buf whose pages the
// guest wrote (anonymous now, present or swapped out) and reports whether
// the kernel could say; when it cannot, restore was not called.
func scanWrittenPages(buf []byte, restore func(off, end int)) bool {
	f := pagemap()
	if f == nil || noPagemapScan.Load() || os.Getpagesize() != pageSize {
		return false
	}
	var regions [64]pageRegion
	base := uint64(uintptr(unsafe.Pointer(&buf[0])))
	start, end := base, base+uint64(len(buf))
	for start < end {
		arg := pmScanArg{size: uint64(unsafe.Sizeof(pmScanArg{})), start: start, end: end,
			vec: uint64(uintptr(unsafe.Pointer(&regions[0]))), vecLen: uint64(len(regions)),
			// Not file-backed, and present or swapped.
			categoryInverted: pageIsFile, categoryMask: pageIsFile,
			categoryAnyofMask: pageIsPresent | pageIsSwapped, returnMask: pageIsPresent | pageIsSwapped}
		n, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(pagemapScanIoctl), uintptr(unsafe.Pointer(&arg)))
		if errno != 0 {
			if errno == unix.ENOTTY || errno == unix.EINVAL {
				noPagemapScan.Store(true) // a kernel without it
			}
			// The caller restores from the whole page map, which also
			// covers any ranges restored here already.
			return false
		}
		for _, r := range regions[:n] {
			restore(int(r.start-base), int(r.end-base))
		}
		if arg.walkEnd <= start {
			return false
		}
		start = arg.walkEnd
	}
	return true
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
