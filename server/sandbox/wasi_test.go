package sandbox

import (
	"context"
	"encoding/binary"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/millrace/millrace/abi"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// signature spells a wazero function definition's parameters as wasiFunc
// does ('i' i32, 'I' i64).
func signature(t *testing.T, def api.FunctionDefinition) string {
	var b strings.Builder
	for _, p := range def.ParamTypes() {
		switch p {
		case api.ValueTypeI32:
			b.WriteByte('i')
		case api.ValueTypeI64:
			b.WriteByte('I')
		default:
			t.Fatalf("%s: unexpected parameter type %s", def.Name(), api.ValueTypeName(p))
		}
	}
	return b.String()
}

// Our WASI has every function of abi.WASIFunctions, with the signatures
// of wazero's (which follow the witx definition).
func TestWASISignaturesMatchWazero(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	defs := r.Module(abi.WASIModule).ExportedFunctionDefinitions()

	require.ElementsMatch(t, slices.Collect(maps.Keys(abi.WASIFunctions)), slices.Collect(maps.Keys(wasiFuncs)))
	for name, f := range wasiFuncs {
		def, ok := defs[name]
		require.True(t, ok, name)
		require.Equal(t, signature(t, def), f.params, name)
		wantResults := []api.ValueType{api.ValueTypeI32}
		if name == "proc_exit" {
			wantResults = nil
		}
		require.Equal(t, wantResults, def.ResultTypes(), name)
	}
}

// wasiMemory is one page of real wazero memory.
func wasiMemory(t testing.TB) api.Memory {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	mod, err := r.Instantiate(ctx, oneMemoryPage)
	require.NoError(t, err)
	return mod.Memory()
}

func newTestWASI(ctx context.Context) (*wasi, *logBuffer) {
	logs := &logBuffer{max: 1 << 20, redact: func(s string) string { return s }}
	return newWASI(ctx, logs), logs
}

func TestWASIStreamsAndErrnos(t *testing.T) {
	t.Parallel()
	mem := wasiMemory(t)
	w, logs := newTestWASI(context.Background())
	call := func(name string, p ...uint64) uint32 { return wasiFuncs[name].call(w, mem, p) }

	// fd_write(1, iovs=[{100, 6}], 1, &n at 200): one stdout record.
	mem.Write(100, []byte("hello\n"))
	mem.WriteUint32Le(0, 100)
	mem.WriteUint32Le(4, 6)
	require.Equal(t, wasiESUCCESS, call("fd_write", 1, 0, 1, 200))
	n, _ := mem.ReadUint32Le(200)
	require.Equal(t, uint32(6), n)
	require.Equal(t, "hello", logs.records[0].Message)
	require.Equal(t, "stdout", logs.records[0].Source)

	require.Equal(t, wasiEBADF, call("fd_write", 7, 0, 1, 200), "no descriptor but the standard streams")
	require.Equal(t, wasiEFAULT, call("fd_write", 2, 65530, 1, 200), "iovec outside memory")
	require.Equal(t, wasiEFAULT, call("fd_write", 2, 0, 0x7fffffff, 200), "iovec count overflows")

	// stdin is at end of file.
	mem.WriteUint32Le(200, 99)
	require.Equal(t, wasiESUCCESS, call("fd_read", 0, 0, 1, 200))
	n, _ = mem.ReadUint32Le(200)
	require.Zero(t, n)

	require.Equal(t, wasiEBADF, call("fd_prestat_get", 3, 0), "no directory is preopened")
	require.Equal(t, wasiEBADF, call("path_open", 3, 0, 0, 1, 0, 0, 0, 0, 0))
	require.Equal(t, wasiESPIPE, call("fd_seek", 1, 0, 0, 0))
	require.Equal(t, wasiENOSYS, call("fd_close", 1))
	require.Equal(t, wasiENOTSOCK, call("sock_accept", 0, 0, 0))
	require.Equal(t, wasiEBADF, call("sock_accept", 3, 0, 0))
	require.Equal(t, wasiEINVAL, call("clock_time_get", 2, 0, 0), "no CPU-time clocks")

	// args and environ are empty.
	mem.WriteUint64Le(300, ^uint64(0))
	require.Equal(t, wasiESUCCESS, call("environ_sizes_get", 300, 304))
	v, _ := mem.ReadUint64Le(300)
	require.Zero(t, v)

	// The wall clock is the host's.
	require.Equal(t, wasiESUCCESS, call("clock_time_get", wasiClockRealtime, 0, 400))
	v, _ = mem.ReadUint64Le(400)
	require.InDelta(t, time.Now().UnixNano(), int64(v), float64(time.Minute))

	require.Equal(t, wasiESUCCESS, call("proc_exit", 3))
	require.True(t, w.exited)
	require.Equal(t, uint32(3), w.exitCode)
}

// clockSubscription writes a relative clock subscription at ptr.
func clockSubscription(mem api.Memory, ptr uint32, userdata uint64, timeout time.Duration) {
	var s [48]byte
	binary.LittleEndian.PutUint64(s[0:], userdata)
	s[8] = wasiEventClock
	binary.LittleEndian.PutUint32(s[16:], wasiClockMonotonic)
	binary.LittleEndian.PutUint64(s[24:], uint64(timeout))
	mem.Write(ptr, s[:])
}

func TestWASIPollOneoff(t *testing.T) {
	t.Parallel()
	mem := wasiMemory(t)

	// A sleep ends when the invocation does.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w, _ := newTestWASI(ctx)
	clockSubscription(mem, 0, 42, time.Hour)
	require.Equal(t, wasiESUCCESS, w.pollOneoff(mem, 0, 1000, 1, 2000))
	n, _ := mem.ReadUint32Le(2000)
	require.Equal(t, uint32(1), n)
	ud, _ := mem.ReadUint64Le(1000)
	require.Equal(t, uint64(42), ud)

	// Writing stdout is ready at once, so the clock does not fire.
	w, _ = newTestWASI(context.Background())
	clockSubscription(mem, 0, 1, time.Hour)
	var s [48]byte
	binary.LittleEndian.PutUint64(s[0:], 2)
	s[8] = wasiEventFdWrite
	binary.LittleEndian.PutUint32(s[16:], 1)
	mem.Write(48, s[:])
	require.Equal(t, wasiESUCCESS, w.pollOneoff(mem, 0, 1000, 2, 2000))
	n, _ = mem.ReadUint32Le(2000)
	require.Equal(t, uint32(1), n)
	ud, _ = mem.ReadUint64Le(1000)
	require.Equal(t, uint64(2), ud)

	require.Equal(t, wasiEINVAL, w.pollOneoff(mem, 0, 1000, 0, 2000), "no subscriptions")
	require.Equal(t, wasiEFAULT, w.pollOneoff(mem, 65500, 1000, 1, 2000))
	require.Equal(t, wasiEFAULT, w.pollOneoff(mem, 0, 1000, 0x7fffffff, 2000))
}

// FuzzWASI calls every WASI function with arbitrary parameters against a
// real wazero memory: none may panic, sleep or write outside the memory.
func FuzzWASI(f *testing.F) {
	mem := wasiMemory(f)
	names := slices.Sorted(maps.Keys(wasiFuncs))
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a poll_oneoff clock returns at once
	f.Add(uint8(0), uint64(0), uint64(4), uint64(8), uint64(16), uint64(0), []byte{1, 0, 0, 0})
	f.Add(uint8(5), uint64(65530), uint64(100), uint64(0xffffffff), uint64(0), uint64(0), []byte("x"))
	f.Fuzz(func(t *testing.T, fn uint8, a, b, c, d, e uint64, data []byte) {
		if len(data) > 4096 {
			data = data[:4096]
		}
		mem.Write(0, data)
		w, _ := newTestWASI(ctx)
		name := names[int(fn)%len(names)]
		p := []uint64{a, b, c, d, e, a, b, c, d}[:len(wasiFuncs[name].params)]
		errno := wasiFuncs[name].call(w, mem, p)
		if errno > 76 {
			t.Fatalf("%s: errno %d is not a WASI errno", name, errno)
		}
		if mem.Size() != 65536 {
			t.Fatalf("memory size changed to %d", mem.Size())
		}
	})
}
