package wasmbin

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// module builds a small module by hand: one function type () -> (), one
// function with the given body, a memory of one page, a mutable i32
// global, an export of the function as "run", optional start section and
// an active data segment.
func module(body []byte, start bool, data []byte) []byte {
	sec := func(id byte, b []byte) []byte { return append(appendU32([]byte{id}, uint32(len(b))), b...) }
	out := append([]byte(nil), magic...)
	out = append(out, sec(secType, []byte{1, 0x60, 0, 0})...)
	out = append(out, sec(secFunction, []byte{1, 0})...)
	out = append(out, sec(secMemory, []byte{1, 0, 1})...)
	out = append(out, sec(secGlobal, []byte{1, ValI32, 1, opI32Const, 42, opEnd})...)
	out = append(out, sec(secExport, []byte{1, 3, 'r', 'u', 'n', 0, 0})...)
	if start {
		out = append(out, sec(secStart, []byte{0})...)
	}
	code := append([]byte{0}, body...) // no locals
	code = append(code, opEnd)
	out = append(out, sec(secCode, append(appendU32([]byte{1}, uint32(len(code))), code...))...)
	if data != nil {
		seg := append([]byte{1, 0, opI32Const, 16, opEnd}, appendU32(nil, uint32(len(data)))...)
		out = append(out, sec(secData, append(seg, data...))...)
	}
	return out
}

func exportsOf(t *testing.T, wasm []byte) map[string]export {
	t.Helper()
	secs, err := split(wasm)
	require.NoError(t, err)
	out := map[string]export{}
	for _, s := range secs {
		if s.id == secExport {
			es, err := parseExports(s.body)
			require.NoError(t, err)
			for _, e := range es {
				out[e.name] = e
			}
		}
	}
	return out
}

func TestInstrumentAddsChecksAndExports(t *testing.T) {
	loop := []byte{opLoop, blockEmpty, 0x0c, 0, opEnd} // loop br 0 end
	out, info, err := Instrument(module(loop, true, []byte("hello")))
	require.NoError(t, err)

	require.True(t, info.HasStart)
	require.True(t, info.MemoryDefined)
	require.Equal(t, uint32(1), info.MemoryMinPages)
	// The body opens with a loop: one check, in the loop, none at entry.
	require.Equal(t, 1, info.Checks)
	require.True(t, bytes.Contains(out, entryCheck(1, 2)), "the entry check is in the opening loop")

	ex := exportsOf(t, out)
	require.Contains(t, ex, "run")
	require.Equal(t, export{StartExport, 0, 0}, ex[StartExport])
	require.Equal(t, export{InterruptExport, 3, 2}, ex[InterruptExport])
	for _, idx := range []int{0, 1, 2} {
		require.Contains(t, ex, GlobalExport(idx))
	}
	require.Equal(t, []Global{{0, ValI32, true}, {1, ValI32, true}, {2, ValI32, true}}, info.Globals)

	secs, err := split(out)
	require.NoError(t, err)
	for _, s := range secs {
		require.NotEqual(t, byte(secStart), s.id, "the start section is gone")
		require.NotEqual(t, byte(secData), s.id, "the data is in the image")
	}
	require.True(t, info.DataRemoved)
	require.Equal(t, []Segment{{16, []byte("hello")}}, info.Data)
	require.True(t, info.Snapshotable())
}

func TestInstrumentChecksFunctionEntry(t *testing.T) {
	out, info, err := Instrument(module([]byte{0x01}, false, nil)) // nop
	require.NoError(t, err)
	require.Equal(t, 1, info.Checks)
	require.True(t, bytes.Contains(out, entryCheck(1, 2)))
	require.False(t, info.HasStart)

	// nop; loop br 0 end: a check at entry, and the loop's own check on
	// the local the rewrite adds (index 0: no parameters, no locals).
	out, info, err = Instrument(module([]byte{0x01, opLoop, blockEmpty, 0x0c, 0, opEnd}, false, nil))
	require.NoError(t, err)
	require.Equal(t, 2, info.Checks)
	require.True(t, bytes.Contains(out, entryCheck(1, 2)))
	require.True(t, bytes.Contains(out, loopCheck(0, 2)))
}

func TestInstrumentNotesWhatPreventsASnapshot(t *testing.T) {
	// table.grow (0xfc 15): the instance's tables would need a reset too.
	_, info, err := Instrument(module([]byte{0xd0, 0x70, opI32Const, 1, 0xfc, 15, 0, opDrop}, false, nil))
	require.NoError(t, err)
	require.True(t, info.MutatesTables)
	require.False(t, info.Snapshotable())

	// data.drop (0xfc 9): the data segment's state is per instance.
	_, info, err = Instrument(module([]byte{0xfc, 9, 0}, false, nil))
	require.NoError(t, err)
	require.True(t, info.PassiveData)
	require.False(t, info.Snapshotable())
}

func TestInstrumentRefuses(t *testing.T) {
	for name, wasm := range map[string][]byte{
		"not wasm":           []byte("\x7fELF"),
		"unknown opcode":     module([]byte{0xff}, false, nil),
		"truncated":          truncated(),
		"reserved export":    bytes.Replace(module(nil, false, nil), []byte{3, 'r', 'u', 'n'}, []byte{3, 'm', 'i', 'l'}, 1),
		"no memory":          bytes.Replace(module(nil, false, nil), []byte{secMemory, 3, 1, 0, 1}, nil, 1),
		"data outside image": module(nil, false, make([]byte, 70000)),
	} {
		t.Run(name, func(t *testing.T) {
			if name == "reserved export" {
				wasm = reserved()
			}
			_, _, err := Instrument(wasm)
			require.Error(t, err)
		})
	}
}

// reserved is a module that exports a function under a name the host
// reserves.
func reserved() []byte {
	m := module(nil, false, nil)
	name := []byte(StartExport)
	old := []byte{secExport, 7, 1, 3, 'r', 'u', 'n', 0, 0}
	repl := append(appendU32([]byte{secExport}, uint32(1+1+len(name)+2)), 1)
	repl = append(appendU32(repl, uint32(len(name))), name...)
	repl = append(repl, 0, 0)
	return bytes.Replace(m, old, repl, 1)
}

func FuzzInstrument(f *testing.F) {
	f.Add(module([]byte{opLoop, blockEmpty, 0x0c, 0, opEnd}, true, []byte("x")))
	f.Add(module([]byte{0xfd, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, opDrop}, false, nil))
	f.Add(module([]byte{0x0e, 2, 0, 0, 0}, false, nil))
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, info, err := Instrument(wasm)
		if err != nil {
			return
		}
		// What comes out splits into sections again, and instrumenting it
		// a second time is refused (the reserved names are taken): the
		// host never stacks two rewrites.
		_, err = split(out)
		require.NoError(t, err)
		require.NotNil(t, info)
		_, _, err = Instrument(out)
		require.Error(t, err)
	})
}

// truncated is a module whose last section ends early.
func truncated() []byte {
	m := module([]byte{opLoop, blockEmpty, opEnd}, false, nil)
	return m[:len(m)-2]
}
