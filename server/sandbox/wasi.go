package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"time"
)

// Our own wasi_snapshot_preview1, for engines that do not bring one we can
// configure as ABI.md §5 requires (wasmtime-go's WasiConfig sends stdout
// only to a file and has no cancelable sleep). Like host.go it is written
// against Memory, so it is engine-independent and fuzzed without one.
//
// What it grants is what ABI.md §5 promises and no more: stdout and stderr
// become log records, stdin is at end of file, the clocks are real, sleep is
// real but ends with the invocation, random bytes are crypto/rand's. There
// are no arguments, no environment, no directory and no socket: every
// function on another file descriptor fails with EBADF, and what is not
// supported on the standard streams fails with ENOSYS (ESPIPE for seeking).
// No function ever traps except proc_exit, which ends the invocation.

// WASI preview1 errno values (the witx "errno" enum).
const (
	wasiESUCCESS uint32 = 0
	wasiEBADF    uint32 = 8
	wasiEFAULT   uint32 = 21
	wasiEINVAL   uint32 = 28
	wasiENOSYS   uint32 = 52
	wasiENOTSOCK uint32 = 57
	wasiESPIPE   uint32 = 70
)

// WASI clock ids, file types, event types and rights used below.
const (
	wasiClockRealtime  = 0
	wasiClockMonotonic = 1

	wasiFiletypeCharacterDevice = 2

	wasiEventClock   = 0
	wasiEventFdRead  = 1
	wasiEventFdWrite = 2

	wasiRightFdRead          = 1 << 1
	wasiRightFdWrite         = 1 << 6
	wasiRightPollFdReadwrite = 1 << 27
)

// monotonicBase is the origin of the monotonic clock guests see.
var monotonicBase = time.Now()

// wasi is the WASI state of one invocation.
type wasi struct {
	ctx    context.Context // the invocation's: sleeps end with it
	stdout *streamWriter
	stderr *streamWriter

	exited   bool // proc_exit was called
	exitCode uint32
}

func newWASI(ctx context.Context, logs *logBuffer) *wasi {
	return &wasi{
		ctx:    ctx,
		stdout: &streamWriter{logs: logs, level: "info", source: "stdout"},
		stderr: &streamWriter{logs: logs, level: "warn", source: "stderr"},
	}
}

// flush turns what is left of a line on stdout or stderr into a record.
func (w *wasi) flush() {
	w.stdout.flush()
	w.stderr.flush()
}

// wasiFunc is one function of wasi_snapshot_preview1: its parameters, one
// letter each ('i' i32, 'I' i64), and its implementation, which gets the
// parameters as wazero passes them (i32 in the low 32 bits) and returns the
// errno. Every function returns an i32 errno except proc_exit, which
// returns nothing.
type wasiFunc struct {
	params string
	call   func(w *wasi, mem Memory, p []uint64) uint32
}

// wasiFuncs is the whole of wasi_snapshot_preview1 (abi.WASIFunctions),
// with the signatures of the witx definition.
var wasiFuncs = map[string]wasiFunc{
	"args_get":          {"ii", func(*wasi, Memory, []uint64) uint32 { return wasiESUCCESS }},
	"args_sizes_get":    {"ii", func(_ *wasi, m Memory, p []uint64) uint32 { return writeZeroSizes(m, u32(p[0]), u32(p[1])) }},
	"environ_get":       {"ii", func(*wasi, Memory, []uint64) uint32 { return wasiESUCCESS }},
	"environ_sizes_get": {"ii", func(_ *wasi, m Memory, p []uint64) uint32 { return writeZeroSizes(m, u32(p[0]), u32(p[1])) }},

	"clock_res_get":  {"ii", func(_ *wasi, m Memory, p []uint64) uint32 { return clockResGet(m, u32(p[0]), u32(p[1])) }},
	"clock_time_get": {"iIi", func(_ *wasi, m Memory, p []uint64) uint32 { return clockTimeGet(m, u32(p[0]), u32(p[2])) }},

	"fd_advise":             {"iIIi", stdioOnly(wasiENOSYS)},
	"fd_allocate":           {"iII", stdioOnly(wasiENOSYS)},
	"fd_close":              {"i", stdioOnly(wasiENOSYS)},
	"fd_datasync":           {"i", stdioOnly(wasiENOSYS)},
	"fd_fdstat_get":         {"ii", func(_ *wasi, m Memory, p []uint64) uint32 { return fdFdstatGet(m, u32(p[0]), u32(p[1])) }},
	"fd_fdstat_set_flags":   {"ii", stdioOnly(wasiENOSYS)},
	"fd_fdstat_set_rights":  {"iII", stdioOnly(wasiENOSYS)},
	"fd_filestat_get":       {"ii", func(_ *wasi, m Memory, p []uint64) uint32 { return fdFilestatGet(m, u32(p[0]), u32(p[1])) }},
	"fd_filestat_set_size":  {"iI", stdioOnly(wasiENOSYS)},
	"fd_filestat_set_times": {"iIIi", stdioOnly(wasiENOSYS)},
	"fd_pread":              {"iiiIi", stdioOnly(wasiESPIPE)},
	"fd_prestat_get":        {"ii", noFd},  // no directory is preopened
	"fd_prestat_dir_name":   {"iii", noFd}, // so the guest finds none
	"fd_pwrite":             {"iiiIi", stdioOnly(wasiESPIPE)},
	"fd_read": {"iiii", func(_ *wasi, m Memory, p []uint64) uint32 {
		return fdRead(m, u32(p[0]), u32(p[1]), u32(p[2]), u32(p[3]))
	}},
	"fd_readdir":  {"iiiIi", stdioOnly(wasiENOSYS)},
	"fd_renumber": {"ii", stdioOnly(wasiENOSYS)},
	"fd_seek":     {"iIii", stdioOnly(wasiESPIPE)},
	"fd_sync":     {"i", stdioOnly(wasiENOSYS)},
	"fd_tell":     {"ii", stdioOnly(wasiESPIPE)},
	"fd_write": {"iiii", func(w *wasi, m Memory, p []uint64) uint32 {
		return w.fdWrite(m, u32(p[0]), u32(p[1]), u32(p[2]), u32(p[3]))
	}},

	// Every path is relative to a directory descriptor, and there is none.
	"path_create_directory":   {"iii", noFd},
	"path_filestat_get":       {"iiiii", noFd},
	"path_filestat_set_times": {"iiiiIIi", noFd},
	"path_link":               {"iiiiiii", noFd},
	"path_open":               {"iiiiiIIii", noFd},
	"path_readlink":           {"iiiiii", noFd},
	"path_remove_directory":   {"iii", noFd},
	"path_rename":             {"iiiiii", noFd},
	"path_symlink":            {"iiiii", noFd},
	"path_unlink_file":        {"iii", noFd},

	"poll_oneoff": {"iiii", func(w *wasi, m Memory, p []uint64) uint32 {
		return w.pollOneoff(m, u32(p[0]), u32(p[1]), u32(p[2]), u32(p[3]))
	}},
	"proc_exit": {"i", func(w *wasi, _ Memory, p []uint64) uint32 {
		w.exited, w.exitCode = true, u32(p[0])
		return wasiESUCCESS
	}},
	"proc_raise":  {"i", func(*wasi, Memory, []uint64) uint32 { return wasiENOSYS }},
	"sched_yield": {"", func(*wasi, Memory, []uint64) uint32 { return wasiESUCCESS }},
	"random_get":  {"ii", func(_ *wasi, m Memory, p []uint64) uint32 { return randomGet(m, u32(p[0]), u32(p[1])) }},

	"sock_accept":   {"iii", stdioOnly(wasiENOTSOCK)},
	"sock_recv":     {"iiiiii", stdioOnly(wasiENOTSOCK)},
	"sock_send":     {"iiiii", stdioOnly(wasiENOTSOCK)},
	"sock_shutdown": {"ii", stdioOnly(wasiENOTSOCK)},
}

func u32(v uint64) uint32 { return uint32(v) }

// stdioOnly fails a call on a standard stream with errno and on any other
// descriptor (none exists) with EBADF. The descriptor is the first
// parameter.
func stdioOnly(errno uint32) func(*wasi, Memory, []uint64) uint32 {
	return func(_ *wasi, _ Memory, p []uint64) uint32 {
		if u32(p[0]) <= 2 {
			return errno
		}
		return wasiEBADF
	}
}

func noFd(*wasi, Memory, []uint64) uint32 { return wasiEBADF }

func writeZeroSizes(m Memory, countPtr, bufSizePtr uint32) uint32 {
	if !m.WriteUint32Le(countPtr, 0) || !m.WriteUint32Le(bufSizePtr, 0) {
		return wasiEFAULT
	}
	return wasiESUCCESS
}

func clockResGet(m Memory, id, resultPtr uint32) uint32 {
	var res uint64
	switch id {
	case wasiClockRealtime:
		res = uint64(time.Microsecond)
	case wasiClockMonotonic:
		res = 1
	default:
		return wasiEINVAL
	}
	if !m.WriteUint64Le(resultPtr, res) {
		return wasiEFAULT
	}
	return wasiESUCCESS
}

func clockTimeGet(m Memory, id, resultPtr uint32) uint32 {
	var t int64
	switch id {
	case wasiClockRealtime:
		t = time.Now().UnixNano()
	case wasiClockMonotonic:
		t = int64(time.Since(monotonicBase))
	default:
		return wasiEINVAL
	}
	if !m.WriteUint64Le(resultPtr, uint64(t)) {
		return wasiEFAULT
	}
	return wasiESUCCESS
}

// fdFdstatGet describes the standard streams as character devices.
//
//	fdstat, 24 bytes: filetype u8 | pad | flags u16 | pad u32 | rights_base u64 | rights_inheriting u64
func fdFdstatGet(m Memory, fd, resultPtr uint32) uint32 {
	if fd > 2 {
		return wasiEBADF
	}
	var b [24]byte
	b[0] = wasiFiletypeCharacterDevice
	rights := uint64(wasiRightFdWrite | wasiRightPollFdReadwrite)
	if fd == 0 {
		rights = wasiRightFdRead | wasiRightPollFdReadwrite
	}
	binary.LittleEndian.PutUint64(b[8:], rights)
	if !m.Write(resultPtr, b[:]) {
		return wasiEFAULT
	}
	return wasiESUCCESS
}

// fdFilestatGet describes the standard streams as character devices.
//
//	filestat, 64 bytes: dev u64 | ino u64 | filetype u8 + pad | nlink u64 | size u64 | atim | mtim | ctim
func fdFilestatGet(m Memory, fd, resultPtr uint32) uint32 {
	if fd > 2 {
		return wasiEBADF
	}
	var b [64]byte
	b[16] = wasiFiletypeCharacterDevice
	if !m.Write(resultPtr, b[:]) {
		return wasiEFAULT
	}
	return wasiESUCCESS
}

// iovecs reads n (buf u32, len u32) pairs at ptr and returns views of the
// buffers they name; ok is false when any of them is outside the memory.
func iovecs(m Memory, ptr, n uint32) ([][]byte, bool) {
	if uint64(n)*8 > 1<<32-1 {
		return nil, false
	}
	raw, ok := m.Read(ptr, n*8)
	if !ok {
		return nil, false
	}
	bufs := make([][]byte, 0, n)
	for i := uint32(0); i < n; i++ {
		b, ok := m.Read(binary.LittleEndian.Uint32(raw[i*8:]), binary.LittleEndian.Uint32(raw[i*8+4:]))
		if !ok {
			return nil, false
		}
		bufs = append(bufs, b)
	}
	return bufs, true
}

// fdWrite sends stdout and stderr to the invocation's logs (streamWriter
// bounds them); it reports every byte written even when the log budget
// drops them, so logging never changes what a module does.
func (w *wasi) fdWrite(m Memory, fd, iovs, iovsLen, nwrittenPtr uint32) uint32 {
	var out *streamWriter
	switch fd {
	case 1:
		out = w.stdout
	case 2:
		out = w.stderr
	default:
		return wasiEBADF
	}
	bufs, ok := iovecs(m, iovs, iovsLen)
	if !ok {
		return wasiEFAULT
	}
	var n uint32
	for _, b := range bufs {
		out.Write(b)
		n += uint32(len(b))
	}
	if !m.WriteUint32Le(nwrittenPtr, n) {
		return wasiEFAULT
	}
	return wasiESUCCESS
}

// fdRead reads stdin, which is always at end of file.
func fdRead(m Memory, fd, iovs, iovsLen, nreadPtr uint32) uint32 {
	if fd != 0 {
		return wasiEBADF
	}
	if _, ok := iovecs(m, iovs, iovsLen); !ok {
		return wasiEFAULT
	}
	if !m.WriteUint32Le(nreadPtr, 0) {
		return wasiEFAULT
	}
	return wasiESUCCESS
}

func randomGet(m Memory, ptr, n uint32) uint32 {
	b, ok := m.Read(ptr, n)
	if !ok {
		return wasiEFAULT
	}
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return wasiESUCCESS
}

// pollOneoff waits for the first of its subscriptions: a clock sleeps for
// real, but never past the invocation's end; reading stdin (end of file)
// and writing stdout or stderr are ready at once; any other descriptor is
// an EBADF event.
//
//	subscription, 48 bytes: userdata u64 | tag u8 + pad | clock: id u32 + pad, timeout u64, precision u64, flags u16
//	                                                      fd_read/fd_write: fd u32
//	event, 32 bytes:        userdata u64 | errno u16 | type u8 + pad | nbytes u64 | flags u16 + pad
func (w *wasi) pollOneoff(m Memory, in, out, nsubs, neventsPtr uint32) uint32 {
	if nsubs == 0 {
		return wasiEINVAL
	}
	if uint64(nsubs)*48 > 1<<32-1 {
		return wasiEFAULT
	}
	subs, ok := m.Read(in, nsubs*48)
	if !ok {
		return wasiEFAULT
	}
	if _, ok := m.Read(out, nsubs*32); !ok {
		return wasiEFAULT
	}
	type clock struct {
		userdata uint64
		wait     time.Duration
	}
	var (
		events [][32]byte
		clocks []clock
		now    = time.Now()
	)
	event := func(userdata uint64, errno uint32, typ byte) {
		var e [32]byte
		binary.LittleEndian.PutUint64(e[0:], userdata)
		binary.LittleEndian.PutUint16(e[8:], uint16(errno))
		e[10] = typ
		events = append(events, e)
	}
	for i := uint32(0); i < nsubs; i++ {
		s := subs[i*48 : (i+1)*48]
		userdata := binary.LittleEndian.Uint64(s[0:])
		switch tag := s[8]; tag {
		case wasiEventClock:
			id, timeout := binary.LittleEndian.Uint32(s[16:]), int64(binary.LittleEndian.Uint64(s[24:]))
			wait := time.Duration(timeout)
			if binary.LittleEndian.Uint16(s[40:])&1 != 0 { // subscription_clock_abstime
				switch id {
				case wasiClockRealtime:
					wait = time.Duration(timeout - now.UnixNano())
				case wasiClockMonotonic:
					wait = time.Duration(timeout) - now.Sub(monotonicBase)
				}
			}
			if id != wasiClockRealtime && id != wasiClockMonotonic {
				event(userdata, wasiEINVAL, tag)
				continue
			}
			clocks = append(clocks, clock{userdata, wait})
		case wasiEventFdRead, wasiEventFdWrite:
			fd := binary.LittleEndian.Uint32(s[16:])
			if (tag == wasiEventFdRead && fd == 0) || (tag == wasiEventFdWrite && (fd == 1 || fd == 2)) {
				event(userdata, wasiESUCCESS, tag)
			} else {
				event(userdata, wasiEBADF, tag)
			}
		default:
			event(userdata, wasiEINVAL, tag)
		}
	}
	if len(clocks) > 0 {
		first := clocks[0].wait
		for _, c := range clocks[1:] {
			first = min(first, c.wait)
		}
		if len(events) == 0 && first > 0 {
			sleepCtx(w.ctx, int64(first))
		}
		// When the invocation ended during the sleep the earliest clock
		// is reported anyway; the engine stops the guest next.
		elapsed := max(time.Since(now), first)
		if len(events) > 0 {
			elapsed = time.Since(now)
		}
		for _, c := range clocks {
			if c.wait <= elapsed {
				event(c.userdata, wasiESUCCESS, wasiEventClock)
			}
		}
	}
	for i, e := range events {
		m.Write(out+uint32(i)*32, e[:]) // inside the region checked above
	}
	if !m.WriteUint32Le(neventsPtr, uint32(len(events))) {
		return wasiEFAULT
	}
	return wasiESUCCESS
}
