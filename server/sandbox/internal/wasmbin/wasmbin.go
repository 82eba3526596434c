// Package wasmbin rewrites WebAssembly modules at upload, so that every
// engine can stop runaway code cheaply and start instances fast. Instrument:
//
//   - adds an interrupt flag (a mutable i32 global the host sets from
//     another goroutine when a deadline passes) and a check of it at every
//     function entry and loop header, so a runaway guest traps within a few
//     instructions of the flag being set;
//   - moves a start function out of the start section, so the host can arm
//     the flag before any guest code runs;
//   - exports every global, so the host can read a snapshot of them after
//     _initialize and restore it per invocation;
//   - takes the active data segments out of the module and returns them as
//     the initial memory image, which the host maps copy-on-write into each
//     instance instead of copying segments at every instantiation.
//
// Only the sections these rewrites touch are decoded; the rest are copied
// byte for byte. Every length is checked against the bytes that remain, so
// a hostile module gives an error, never a panic.
package wasmbin

import (
	"bytes"
	"errors"
	"fmt"
)

// Names the rewritten module exports. A module that already exports one
// of them is refused.
const (
	InterruptExport = "millrace_interrupt"
	StartExport     = "millrace_start"
	globalPrefix    = "millrace_global_"
)

// GlobalExport is the export name Instrument gives the global with the
// given index.
func GlobalExport(index int) string { return fmt.Sprintf("%s%d", globalPrefix, index) }

// Section ids of the binary format.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
)

// Value types of globals.
const (
	ValI32  byte = 0x7f
	ValI64  byte = 0x7e
	ValF32  byte = 0x7d
	ValF64  byte = 0x7c
	ValV128 byte = 0x7b
)

var magic = []byte{0, 'a', 's', 'm', 1, 0, 0, 0}

// ErrNotWasm is returned for bytes that are not a WebAssembly module.
var ErrNotWasm = errors.New("not a WebAssembly module (bad magic or version)")

// ErrNoMemory is returned for a module that defines no memory: the checks
// need one (they yield through memory.grow), and so does the ABI.
var ErrNoMemory = errors.New("the module defines no memory")

// Global is one global the module defines (not imports).
type Global struct {
	Index   int  // in the module's global index space
	Type    byte // ValI32, ValI64, …
	Mutable bool
}

// Info describes what Instrument found and did.
type Info struct {
	// Globals are the module's own globals, each exported as
	// GlobalExport(Index).
	Globals []Global
	// HasStart reports a start function, now exported as StartExport:
	// the host must call it right after instantiation.
	HasStart bool
	// MemoryDefined reports that the module defines its memory (rather
	// than importing it); MemoryMinPages is its initial size.
	MemoryDefined  bool
	MemoryMinPages uint32
	// Data holds the active data segments taken out of the module when
	// DataRemoved is set: the host must write them into the memory before
	// the guest runs. A module with passive segments or computed offsets
	// keeps its data section.
	Data        []Segment
	DataRemoved bool
	// MutatesTables reports instructions that change tables or element
	// segments (table.set, table.grow, elem.drop, …): resetting such an
	// instance would need the tables restored too.
	MutatesTables bool
	// PassiveData reports memory.init or data.drop: a snapshot without
	// data segments cannot serve such a module.
	PassiveData bool
	// Checks is how many interrupt checks were inserted.
	Checks int
}

// Segment is an active data segment: bytes at an offset of memory 0.
type Segment struct {
	Offset uint32
	Bytes  []byte
}

// Snapshotable reports whether an instance's whole state is its memory and
// its globals, so that restoring those restores the instance: the memory is
// the module's own, its data is in Data, no instruction changes tables or
// element or data segments, and every mutable global holds a number.
func (i *Info) Snapshotable() bool {
	if !i.MemoryDefined || !i.DataRemoved || i.MutatesTables || i.PassiveData {
		return false
	}
	for _, g := range i.Globals {
		if g.Mutable && g.Type != ValI32 && g.Type != ValI64 && g.Type != ValF32 && g.Type != ValF64 {
			return false
		}
	}
	return true
}

type section struct {
	id   byte
	body []byte
}

func split(wasm []byte) ([]section, error) {
	if !bytes.HasPrefix(wasm, magic) {
		return nil, ErrNotWasm
	}
	r := &reader{b: wasm, off: len(magic)}
	var out []section
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		body, err := r.bytes(size)
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		out = append(out, section{id, body})
	}
	return out, nil
}

func join(sections []section) []byte {
	n := len(magic)
	for _, s := range sections {
		n += 1 + 5 + len(s.body)
	}
	out := make([]byte, 0, n)
	out = append(out, magic...)
	for _, s := range sections {
		out = append(out, s.id)
		out = appendU32(out, uint32(len(s.body)))
		out = append(out, s.body...)
	}
	return out
}

// Import is one entry of a module's import section.
type Import struct {
	Module, Name string
	Kind         byte // 0 function, 1 table, 2 memory, 3 global, 4 tag
}

// Imports lists a module's imports by reading its import section alone.
func Imports(wasm []byte) ([]Import, error) {
	sections, err := split(wasm)
	if err != nil {
		return nil, err
	}
	for _, s := range sections {
		if s.id == secImport {
			return parseImports(s.body)
		}
	}
	return nil, nil
}

func parseImports(body []byte) ([]Import, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, fmt.Errorf("import section: %w", err)
	}
	if int(n) > len(body) { // every import takes at least 3 bytes; this just bounds the allocation
		return nil, fmt.Errorf("import section claims %d imports in %d bytes", n, len(body))
	}
	out := make([]Import, 0, n)
	for i := range n {
		var imp Import
		if imp.Module, err = r.name(); err != nil {
			return nil, fmt.Errorf("import %d: %w", i, err)
		}
		if imp.Name, err = r.name(); err != nil {
			return nil, fmt.Errorf("import %d: %w", i, err)
		}
		if imp.Kind, err = r.byte(); err != nil {
			return nil, fmt.Errorf("import %d: %w", i, err)
		}
		switch imp.Kind {
		case 0: // func: type index
			_, err = r.u32()
		case 1: // table: reftype + limits
			if _, err = r.byte(); err == nil {
				err = r.skipLimits()
			}
		case 2: // memory: limits
			err = r.skipLimits()
		case 3: // global: valtype + mutability
			_, err = r.bytes(2)
		case 4: // tag: attribute + type index
			if _, err = r.byte(); err == nil {
				_, err = r.u32()
			}
		default:
			err = fmt.Errorf("unknown import kind 0x%02x", imp.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("import %d (%s.%s): %w", i, imp.Module, imp.Name, err)
		}
		out = append(out, imp)
	}
	return out, nil
}

// imports counts imported functions and globals, and reports an imported
// memory.
func imports(body []byte) (funcs, globals int, memory bool, err error) {
	imps, err := parseImports(body)
	for _, imp := range imps {
		switch imp.Kind {
		case 0:
			funcs++
		case 2:
			memory = true
		case 3:
			globals++
		}
	}
	return funcs, globals, memory, err
}

// globalEntry is one global of the global section, with its init
// expression kept as raw bytes (through its end opcode).
type globalEntry struct {
	typ     byte
	mutable bool
	init    []byte
}

func parseGlobals(body []byte) ([]globalEntry, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := make([]globalEntry, 0, min(n, uint32(len(body))))
	for range n {
		typ, err := r.byte()
		if err != nil {
			return nil, err
		}
		mut, err := r.byte()
		if err != nil {
			return nil, err
		}
		start := r.off
		if err := skipConstExpr(r); err != nil {
			return nil, fmt.Errorf("global %d: %w", len(out), err)
		}
		out = append(out, globalEntry{typ: typ, mutable: mut == 1, init: r.b[start:r.off]})
	}
	return out, nil
}

func encodeGlobals(gs []globalEntry) []byte {
	out := appendU32(nil, uint32(len(gs)))
	for _, g := range gs {
		out = append(out, g.typ)
		if g.mutable {
			out = append(out, 1)
		} else {
			out = append(out, 0)
		}
		out = append(out, g.init...)
	}
	return out
}

// skipConstExpr skips a constant expression through its end opcode. Only
// the forms the core spec allows appear here.
func skipConstExpr(r *reader) error {
	for {
		op, err := r.byte()
		if err != nil {
			return err
		}
		if op == opEnd {
			return nil
		}
		if err := skipImmediates(r, op, nil); err != nil {
			return err
		}
	}
}

type export struct {
	name  string
	kind  byte
	index uint32
}

func parseExports(body []byte) ([]export, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	out := make([]export, 0, min(n, uint32(len(body))))
	for range n {
		name, err := r.name()
		if err != nil {
			return nil, err
		}
		kind, err := r.byte()
		if err != nil {
			return nil, err
		}
		idx, err := r.u32()
		if err != nil {
			return nil, err
		}
		out = append(out, export{name, kind, idx})
	}
	return out, nil
}

func encodeExports(es []export) []byte {
	out := appendU32(nil, uint32(len(es)))
	for _, e := range es {
		out = appendU32(out, uint32(len(e.name)))
		out = append(out, e.name...)
		out = append(out, e.kind)
		out = appendU32(out, e.index)
	}
	return out
}

// Instrument rewrites a module as the package comment describes.
func Instrument(wasm []byte) ([]byte, *Info, error) {
	sections, err := split(wasm)
	if err != nil {
		return nil, nil, err
	}
	info := &Info{}
	var (
		importedFuncs, importedGlobals int
		globals                        []globalEntry
		exports                        []export
		startFunc                      uint32
		globalIdx, exportIdx, codeIdx  = -1, -1, -1
		importedMemory                 bool
		dataOK                         = true
		typeBody, funcBody             []byte
	)
	for i, s := range sections {
		switch s.id {
		case secImport:
			if importedFuncs, importedGlobals, importedMemory, err = imports(s.body); err != nil {
				return nil, nil, fmt.Errorf("import section: %w", err)
			}
		case secMemory:
			info.MemoryDefined = true
			if info.MemoryMinPages, err = memoryMin(s.body); err != nil {
				return nil, nil, fmt.Errorf("memory section: %w", err)
			}
		case secData:
			if info.Data, dataOK, err = activeData(s.body); err != nil {
				return nil, nil, fmt.Errorf("data section: %w", err)
			}
		case secGlobal:
			if globals, err = parseGlobals(s.body); err != nil {
				return nil, nil, fmt.Errorf("global section: %w", err)
			}
			globalIdx = i
		case secExport:
			if exports, err = parseExports(s.body); err != nil {
				return nil, nil, fmt.Errorf("export section: %w", err)
			}
			exportIdx = i
		case secStart:
			r := &reader{b: s.body}
			if startFunc, err = r.u32(); err != nil {
				return nil, nil, fmt.Errorf("start section: %w", err)
			}
			info.HasStart = true
		case secType:
			typeBody = s.body
		case secFunction:
			funcBody = s.body
		case secCode:
			codeIdx = i
		}
	}
	params, err := funcParams(typeBody, funcBody)
	if err != nil {
		return nil, nil, fmt.Errorf("type and function sections: %w", err)
	}
	if importedMemory {
		info.MemoryDefined = false
	}
	info.DataRemoved = dataOK && info.MemoryDefined
	if !info.DataRemoved {
		info.Data = nil
	}
	for _, d := range info.Data {
		if uint64(d.Offset)+uint64(len(d.Bytes)) > uint64(info.MemoryMinPages)*65536 {
			return nil, nil, fmt.Errorf("data segment at offset %d (%d bytes) is outside the initial memory", d.Offset, len(d.Bytes))
		}
	}
	for _, e := range exports {
		if e.name == InterruptExport || e.name == StartExport || bytes.HasPrefix([]byte(e.name), []byte(globalPrefix)) {
			return nil, nil, fmt.Errorf("the module exports %q, a name the host reserves", e.name)
		}
	}

	if !info.MemoryDefined {
		return nil, nil, ErrNoMemory
	}
	// The budget and the flag go last, so no existing global index moves.
	budget, flag := importedGlobals+len(globals), importedGlobals+len(globals)+1
	globals = append(globals,
		globalEntry{typ: ValI32, mutable: true, init: append(appendS32([]byte{opI32Const}, YieldEvery), opEnd)},
		globalEntry{typ: ValI32, mutable: true, init: []byte{opI32Const, 0, opEnd}})
	for i, g := range globals {
		idx := importedGlobals + i
		info.Globals = append(info.Globals, Global{Index: idx, Type: g.typ, Mutable: g.mutable})
		exports = append(exports, export{GlobalExport(idx), 3, uint32(idx)})
	}
	exports = append(exports, export{InterruptExport, 3, uint32(flag)})
	if info.HasStart {
		exports = append(exports, export{StartExport, 0, startFunc})
	}

	out := make([]section, 0, len(sections)+2)
	for i, s := range sections {
		switch {
		case s.id == secStart:
			continue // exported instead; the host calls it
		case (s.id == secData || s.id == secDataCount) && info.DataRemoved:
			continue // the host writes the segments into the memory image
		case i == globalIdx:
			s.body = encodeGlobals(globals)
		case i == exportIdx:
			s.body = encodeExports(exports)
		case i == codeIdx:
			if s.body, err = instrumentCode(s.body, params, uint32(budget), uint32(flag), info); err != nil {
				return nil, nil, fmt.Errorf("code section: %w", err)
			}
		}
		out = append(out, s)
	}
	if globalIdx < 0 {
		out = place(out, section{secGlobal, encodeGlobals(globals)})
	}
	if exportIdx < 0 {
		out = place(out, section{secExport, encodeExports(exports)})
	}
	_ = importedFuncs // function indices do not move: nothing is imported or added
	return join(out), info, nil
}

// order is where a section goes among the known sections. The data count
// section sits between element and code.
func order(id byte) int {
	if id == secDataCount {
		return 95 // after element (90), before code (100)
	}
	return int(id) * 10
}

// place inserts a section that was missing right after the last known
// section that must precede it; custom sections are left where they are.
func place(out []section, add section) []section {
	at := 0
	for i, s := range out {
		if s.id != secCustom && order(s.id) < order(add.id) {
			at = i + 1
		}
	}
	out = append(out, section{})
	copy(out[at+1:], out[at:])
	out[at] = add
	return out
}

// YieldEvery is how many checks pass between two trips of a guest into Go.
// Small enough that a trip comes every few microseconds of guest code (so
// Go's scheduler and garbage collector are never held up long, and an
// interrupt is seen at once); large enough that the trip, ~100 ns, costs
// next to nothing. A power of two: the loop check masks its counter.
const YieldEvery = 4096

// entryCheck is inserted at every function entry (for a function whose
// body opens with a loop, as all of Go's do, in that loop: it is where a
// call, or a resumed goroutine, comes in). It counts down the budget
// global, shared by all calls; when the budget runs out it refills it and
// takes the slow path:
//
//	global.get budget; i32.const 1; i32.sub; global.set budget
//	global.get budget; i32.eqz
//	if; i32.const YieldEvery; global.set budget; <slow path>; end
func entryCheck(budget, flag uint32) []byte {
	b := appendU32([]byte{opGlobalGet}, budget)
	b = append(b, opI32Const, 1, opI32Sub, opGlobalSet)
	b = appendU32(b, budget)
	b = appendU32(append(b, opGlobalGet), budget)
	b = append(b, opI32Eqz, opIf, blockEmpty)
	b = appendS32(append(b, opI32Const), YieldEvery)
	b = appendU32(append(b, opGlobalSet), budget)
	return append(slowPath(b, flag), opEnd)
}

// loopCheck is inserted at every other loop header. It counts down a local
// the rewrite adds to the function, which lives in a register, so the hot
// path is a subtraction, a mask and a branch, with no memory access:
//
//	local.get n; i32.const 1; i32.sub; local.tee n
//	i32.const YieldEvery-1; i32.and; i32.eqz
//	if; <slow path>; end
//
// A local starts at zero in each call, which is why function entries use
// the global: a loop-free recursion never reaches a loop header, and a
// loop that runs forever does so within one call, where its local counts.
func loopCheck(local, flag uint32) []byte {
	b := appendU32([]byte{opLocalGet}, local)
	b = append(b, opI32Const, 1, opI32Sub, opLocalTee)
	b = appendU32(b, local)
	b = appendS32(append(b, opI32Const), YieldEvery-1)
	b = append(b, opI32And, opI32Eqz, opIf, blockEmpty)
	return append(slowPath(b, flag), opEnd)
}

// slowPath appends what a check does every YieldEvery passes: memory.grow
// 0, which wazero serves in Go — so the goroutine reaches a point where
// Go's scheduler and garbage collector can stop it, which they cannot do
// inside compiled guest code — then a trap if the host has set the
// interrupt flag:
//
//	i32.const 0; memory.grow 0; drop
//	global.get flag; if; unreachable; end
func slowPath(b []byte, flag uint32) []byte {
	b = append(b, opI32Const, 0, opMemoryGrow, 0, opDrop)
	b = appendU32(append(b, opGlobalGet), flag)
	return append(b, opIf, blockEmpty, opUnreachable, opEnd)
}

// funcParams returns the parameter count of each defined function, from
// the type and function sections.
func funcParams(types, funcs []byte) ([]uint32, error) {
	if len(funcs) == 0 {
		return nil, nil
	}
	r := &reader{b: types}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	params := make([]uint32, 0, min(n, uint32(len(types))))
	for range n {
		if form, err := r.byte(); err != nil || form != 0x60 {
			return nil, fmt.Errorf("type %d is not a function type", len(params))
		}
		np, err := r.u32()
		if err != nil {
			return nil, err
		}
		if _, err := r.bytes(np); err != nil {
			return nil, err
		}
		nr, err := r.u32()
		if err != nil {
			return nil, err
		}
		if _, err := r.bytes(nr); err != nil {
			return nil, err
		}
		params = append(params, np)
	}
	r = &reader{b: funcs}
	n, err = r.u32()
	if err != nil {
		return nil, err
	}
	out := make([]uint32, 0, min(n, uint32(len(funcs))))
	for range n {
		t, err := r.u32()
		if err != nil {
			return nil, err
		}
		if int(t) >= len(params) {
			return nil, fmt.Errorf("function %d has unknown type %d", len(out), t)
		}
		out = append(out, params[t])
	}
	return out, nil
}

func instrumentCode(body []byte, params []uint32, budget, flag uint32, info *Info) ([]byte, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if int(n) != len(params) {
		return nil, fmt.Errorf("%d function bodies for %d functions", n, len(params))
	}
	entry := entryCheck(budget, flag)
	out := appendU32(make([]byte, 0, len(body)+len(body)/8), n)
	var fn []byte
	for i := range n {
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		code, err := r.bytes(size)
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", i, err)
		}
		fn, err = instrumentFunc(fn[:0], code, params[i], entry, flag, info)
		if err != nil {
			return nil, fmt.Errorf("function body %d: %w", i, err)
		}
		out = appendU32(out, uint32(len(fn)))
		out = append(out, fn...)
	}
	if !r.done() {
		return nil, errors.New("trailing bytes")
	}
	return out, nil
}

// maxLocals is the most locals a function may have (the limit engines
// share), so the one the rewrite adds still fits.
const maxLocals = 50000

func instrumentFunc(out, code []byte, params uint32, entry []byte, flag uint32, info *Info) ([]byte, error) {
	r := &reader{b: code}
	groups, err := r.u32()
	if err != nil {
		return nil, err
	}
	groupsAt := r.off
	locals := uint64(params)
	for range groups {
		n, err := r.u32()
		if err != nil {
			return nil, err
		}
		if _, err := r.byte(); err != nil {
			return nil, err
		}
		locals += uint64(n)
	}
	if locals >= maxLocals {
		return nil, fmt.Errorf("%d locals, over the limit of %d", locals, maxLocals)
	}
	// The counter goes last, as one more group of one i32.
	out = appendU32(out, groups+1)
	out = append(out, code[groupsAt:r.off]...)
	out = append(out, 1, ValI32)
	loop := loopCheck(uint32(locals), flag)

	// A function whose body opens with a loop gets its entry check in the
	// loop (Go's functions all do: their resume dispatch is a loop).
	opensWithLoop := r.off < len(code) && code[r.off] == opLoop
	if !opensWithLoop {
		out = append(out, entry...)
		info.Checks++
	}
	from, first := r.off, true
	for !r.done() {
		op, err := r.byte()
		if err != nil {
			return nil, err
		}
		if err := skipImmediates(r, op, info); err != nil {
			return nil, fmt.Errorf("at byte %d: %w", r.off, err)
		}
		if op == opLoop {
			out = append(out, code[from:r.off]...)
			if first && opensWithLoop {
				out = append(out, entry...)
			} else {
				out = append(out, loop...)
			}
			info.Checks++
			from = r.off
		}
		first = false
	}
	return append(out, code[from:]...), nil
}

func memoryMin(body []byte) (uint32, error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if n != 1 {
		return 0, fmt.Errorf("%d memories (want 1)", n)
	}
	if _, err := r.byte(); err != nil {
		return 0, err
	}
	return r.u32()
}

// activeData returns the data segments when all are active segments of
// memory 0 at constant offsets (what compilers emit); ok is false for
// anything else, and the module then keeps its data section.
func activeData(body []byte) (segs []Segment, ok bool, err error) {
	r := &reader{b: body}
	n, err := r.u32()
	if err != nil {
		return nil, false, err
	}
	ok = true
	for range n {
		flags, err := r.u32()
		if err != nil {
			return nil, false, err
		}
		var offset uint32
		switch flags {
		case 0, 2: // active: [memory index,] offset expression
			if flags == 2 {
				mem, err := r.u32()
				if err != nil {
					return nil, false, err
				}
				ok = ok && mem == 0
			}
			start := r.off
			if err := skipConstExpr(r); err != nil {
				return nil, false, err
			}
			expr := &reader{b: r.b[start:r.off]}
			if op, _ := expr.byte(); op == opI32Const {
				v, err := expr.s32()
				if err == nil && expr.off == len(expr.b)-1 {
					offset = uint32(v)
				} else {
					ok = false
				}
			} else {
				ok = false
			}
		case 1: // passive
			ok = false
		default:
			return nil, false, fmt.Errorf("data segment with flags %d", flags)
		}
		size, err := r.u32()
		if err != nil {
			return nil, false, err
		}
		b, err := r.bytes(size)
		if err != nil {
			return nil, false, err
		}
		segs = append(segs, Segment{Offset: offset, Bytes: b})
	}
	return segs, ok, nil
}
