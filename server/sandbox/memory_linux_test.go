//go:build linux

package sandbox

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// reset finds the pages a guest wrote with PAGEMAP_SCAN where the kernel
// has it, and from the whole page map otherwise; both must find the same
// pages, and either way the memory must equal the image afterwards.
func TestResetRestoresWrittenPages(t *testing.T) {
	const pages = 2048 // 8 MiB
	image := make([]byte, pages*pageSize)
	for i := range image {
		image[i] = byte(i*7 + i/pageSize)
	}
	img, err := newMemImage(image)
	require.NoError(t, err)
	defer img.close()

	for _, scan := range []bool{true, false} {
		mem := newLinearMemory(&limitedAllocator{}, 4*uint64(len(image)), img).(*mmapMemory)
		buf := mem.Reallocate(uint64(len(image)))
		rng := rand.New(rand.NewPCG(1, 2))
		written := map[int]bool{}
		for range 300 {
			p := rng.IntN(pages)
			written[p] = true
			buf[p*pageSize+rng.IntN(pageSize)] ^= 0xff
		}
		for p := 0; p < pages; p += 97 {
			_ = buf[p*pageSize] // read, not written: stays the image's page
		}

		fromMap := writtenPagesFromPagemap(t, buf)
		require.Equal(t, written, fromMap, "the page map shows exactly the written pages")
		if scan {
			fromScan := map[int]bool{}
			if scanWrittenPages(buf, func(off, end int) {
				for p := off / pageSize; p < end/pageSize; p++ {
					fromScan[p] = true
				}
			}) {
				require.Equal(t, fromMap, fromScan, "PAGEMAP_SCAN finds the same pages")
			} else {
				t.Log("this kernel has no PAGEMAP_SCAN: only the page map path is checked")
			}
		} else {
			noPagemapScan.Store(true)
			t.Cleanup(func() { noPagemapScan.Store(false) })
		}
		require.True(t, mem.reset())
		require.True(t, bytes.Equal(image, buf), "scan %v: the memory is the image again", scan)
		mem.Free()
	}
}

func writtenPagesFromPagemap(t *testing.T, buf []byte) map[int]bool {
	t.Helper()
	entries := make([]byte, len(buf)/pageSize*8)
	require.True(t, readPagemap(uintptr(unsafe.Pointer(&buf[0])), entries))
	out := map[int]bool{}
	for p := range len(buf) / pageSize {
		e := binary.LittleEndian.Uint64(entries[p*8:])
		if e&(1<<62) != 0 || (e&(1<<63) != 0 && e&(1<<61) == 0) {
			out[p] = true
		}
	}
	return out
}
