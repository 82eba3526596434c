package sandbox_test

// A tiny Wasm assembler for hand-made test modules: the few shapes Go
// cannot produce (a bare trap, foreign imports, missing exports).

type rawImport struct {
	module, name string
	kind         byte // 0 func, 2 memory, 3 global
}

type rawModule struct {
	imports  []rawImport
	body     []byte // the body of the one defined function, without locals or end
	memPages uint32
	noStart  bool
	noMemory bool
	// startSection makes the function the module's start function too,
	// which runs before any export is called.
	startSection bool
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
	out = append(out, section(3, vec([]byte{0}))...) // one function of type 0
	if !m.noMemory {
		out = append(out, section(5, vec(append([]byte{0}, leb(m.memPages)...)))...)
	}
	var exports [][]byte
	if !m.noStart {
		exports = append(exports, append(name("_start"), append([]byte{0}, leb(uint32(nImportedFuncs))...)...))
	}
	if !m.noMemory {
		exports = append(exports, append(name("memory"), 2, 0))
	}
	out = append(out, section(7, vec(exports...))...)
	if m.startSection {
		out = append(out, section(8, leb(uint32(nImportedFuncs)))...)
	}
	body := append([]byte{0}, m.body...) // no locals
	body = append(body, 0x0b)
	out = append(out, section(10, vec(append(leb(uint32(len(body))), body...)))...)
	return out
}

var (
	opUnreachable = []byte{0x00}
	opLoopForever = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b} // loop (br 0) end
)
