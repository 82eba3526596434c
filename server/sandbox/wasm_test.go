package sandbox_test

// A tiny Wasm assembler for hand-made test modules: the few shapes Go
// cannot produce (a bare trap, foreign imports, missing exports).

type rawImport struct {
	module, name string
	kind         byte // 0 func, 2 memory, 3 global
}

type rawModule struct {
	imports  []rawImport
	body     []byte // the body of the entry function (_start), without locals or end
	memPages uint32
	noStart  bool
	noMemory bool
	// reactor exports the entry function as millrace_handle, and
	// _initialize with initBody, instead of _start.
	reactor  bool
	initBody []byte
	// startBody, if set, is the body of a start function (run when the
	// module is instantiated).
	startBody []byte
}

func leb(v uint32) []byte {
	var out []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		out = append(out, c)
		if v == 0 {
			return out
		}
	}
}

func name(s string) []byte { return append(leb(uint32(len(s))), s...) }

func section(id byte, body []byte) []byte {
	return append(append([]byte{id}, leb(uint32(len(body)))...), body...)
}

func vec(items ...[]byte) []byte {
	out := leb(uint32(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func (m rawModule) bytes() []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	out = append(out, section(1, vec([]byte{0x60, 0, 0}))...) // type 0: () -> ()
	if len(m.imports) > 0 {
		var imps [][]byte
		for _, imp := range m.imports {
			e := append(name(imp.module), name(imp.name)...)
			switch imp.kind {
			case 0:
				e = append(e, 0, 0) // func of type 0
			case 2:
				e = append(e, 2, 0, 1) // memory, min 1
			case 3:
				e = append(e, 3, 0x7f, 0) // global i32 const
			}
			imps = append(imps, e)
		}
		out = append(out, section(2, vec(imps...))...)
	}
	nImportedFuncs := 0
	for _, imp := range m.imports {
		if imp.kind == 0 {
			nImportedFuncs++
		}
	}
	// Functions, all of type 0: the entry, then _initialize and the
	// start function when asked for.
	bodies := [][]byte{m.body}
	entry, init, start := nImportedFuncs, -1, -1
	if m.reactor {
		init = nImportedFuncs + len(bodies)
		bodies = append(bodies, m.initBody)
	}
	if m.startBody != nil {
		start = nImportedFuncs + len(bodies)
		bodies = append(bodies, m.startBody)
	}
	types := make([][]byte, len(bodies))
	for i := range types {
		types[i] = []byte{0}
	}
	out = append(out, section(3, vec(types...))...)
	if !m.noMemory {
		out = append(out, section(5, vec(append([]byte{0}, leb(m.memPages)...)))...)
	}
	export := func(n string, kind byte, idx int) []byte {
		return append(name(n), append([]byte{kind}, leb(uint32(idx))...)...)
	}
	var exports [][]byte
	switch {
	case m.noStart:
	case m.reactor:
		exports = append(exports, export("_initialize", 0, init), export("millrace_handle", 0, entry))
	default:
		exports = append(exports, export("_start", 0, entry))
	}
	if !m.noMemory {
		exports = append(exports, export("memory", 2, 0))
	}
	out = append(out, section(7, vec(exports...))...)
	if start >= 0 {
		out = append(out, section(8, leb(uint32(start)))...)
	}
	code := make([][]byte, len(bodies))
	for i, b := range bodies {
		body := append([]byte{0}, b...) // no locals
		body = append(body, 0x0b)
		code[i] = append(leb(uint32(len(body))), body...)
	}
	out = append(out, section(10, vec(code...))...)
	return out
}

var (
	opUnreachable = []byte{0x00}
	opLoopForever = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b} // loop (br 0) end
	// opGrowPageByPage grows memory one page at a time until refused,
	// then traps: (loop (br_if 0 (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) (unreachable)
	opGrowPageByPage = []byte{0x03, 0x40, 0x41, 0x01, 0x40, 0x00, 0x41, 0x7f, 0x47, 0x0d, 0x00, 0x0b, 0x00}
	// opGrowAllAtOnce asks for 64 MiB more memory and traps if it is
	// refused: (if (i32.eq (memory.grow (i32.const 1024)) (i32.const -1)) (then unreachable))
	opGrowAllAtOnce = []byte{0x41, 0x80, 0x08, 0x40, 0x00, 0x41, 0x7f, 0x46, 0x04, 0x40, 0x00, 0x0b}
)
