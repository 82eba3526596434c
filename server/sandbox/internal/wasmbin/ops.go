package wasmbin

import (
	"errors"
	"fmt"
)

// Opcodes the rewrites emit or look for.
const (
	opUnreachable = 0x00
	opLoop        = 0x03
	opIf          = 0x04
	opEnd         = 0x0b
	opDrop        = 0x1a
	opLocalGet    = 0x20
	opLocalTee    = 0x22
	opGlobalGet   = 0x23
	opGlobalSet   = 0x24
	opMemoryGrow  = 0x40
	opI32Eqz      = 0x45
	opI32Sub      = 0x6b
	opI32And      = 0x71
	opI32Const    = 0x41
	opI64Const    = 0x42
	opF32Const    = 0x43
	opF64Const    = 0x44
	opV128Prefix  = 0xfd
	blockEmpty    = 0x40
)

// skipImmediates reads past the immediates of one instruction. It knows the
// instruction set wazero accepts by default (WebAssembly 2.0: sign
// extension, saturating conversion, multi-value, bulk memory, reference
// types, SIMD); anything else is refused, since a module the rewrite does
// not understand cannot be made safe to interrupt. info, when not nil,
// collects which instructions make a snapshot reset unsafe.
func skipImmediates(r *reader, op byte, info *Info) error {
	switch {
	case op <= 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x1a, op == 0x1b,
		op >= 0x45 && op <= 0xc4, op == 0xd1:
		return nil // no immediates
	case op >= 0x02 && op <= 0x04: // block, loop, if
		return r.skipBlockType()
	case op == 0x0c, op == 0x0d, op == 0x10, op == 0xd2, // br, br_if, call, ref.func
		op >= 0x20 && op <= 0x24, op == 0x25: // local.*, global.*, table.get
		_, err := r.u32()
		return err
	case op == 0x26: // table.set
		if info != nil {
			info.MutatesTables = true
		}
		_, err := r.u32()
		return err
	case op == 0x0e: // br_table
		n, err := r.u32()
		if err != nil {
			return err
		}
		for range n + 1 {
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		return nil
	case op == 0x11: // call_indirect: type, table
		return r.skipU32s(2)
	case op == 0x1c: // select t*
		n, err := r.u32()
		if err != nil {
			return err
		}
		_, err = r.bytes(n)
		return err
	case op >= 0x28 && op <= 0x3e: // loads and stores: memarg
		return r.skipU32s(2)
	case op == 0x3f, op == 0x40: // memory.size, memory.grow: memory index
		_, err := r.u32()
		return err
	case op == opI32Const:
		return r.skipLEB(5)
	case op == opI64Const:
		return r.skipLEB(10)
	case op == opF32Const:
		_, err := r.bytes(4)
		return err
	case op == opF64Const:
		_, err := r.bytes(8)
		return err
	case op == 0xd0: // ref.null: reftype
		_, err := r.byte()
		return err
	case op == 0xfc:
		return skipFC(r, info)
	case op == opV128Prefix:
		return skipFD(r)
	}
	return fmt.Errorf("unsupported instruction 0x%02x", op)
}

func skipFC(r *reader, info *Info) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	var tables, data *bool // where to note what this instruction does
	if info != nil {
		tables, data = &info.MutatesTables, &info.PassiveData
	}
	mark := func(p *bool) {
		if p != nil {
			*p = true
		}
	}
	switch sub {
	case 0, 1, 2, 3, 4, 5, 6, 7: // saturating truncations
		return nil
	case 8: // memory.init: data index, memory index
		mark(data)
		return r.skipU32s(2)
	case 9: // data.drop
		mark(data)
		return r.skipU32s(1)
	case 10: // memory.copy: two memory indices
		return r.skipU32s(2)
	case 11: // memory.fill
		return r.skipU32s(1)
	case 12, 14: // table.init (elem, table), table.copy (table, table)
		mark(tables)
		return r.skipU32s(2)
	case 13, 15, 17: // elem.drop, table.grow, table.fill
		mark(tables)
		return r.skipU32s(1)
	case 16: // table.size
		return r.skipU32s(1)
	}
	return fmt.Errorf("unsupported instruction 0xfc %d", sub)
}

func skipFD(r *reader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 11, sub == 92, sub == 93: // loads and stores: memarg
		return r.skipU32s(2)
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		_, err := r.bytes(16)
		return err
	case sub >= 21 && sub <= 34: // extract and replace lane
		_, err := r.byte()
		return err
	case sub >= 84 && sub <= 91: // load and store lane: memarg, lane
		if err := r.skipU32s(2); err != nil {
			return err
		}
		_, err := r.byte()
		return err
	case sub <= 255:
		return nil
	}
	return fmt.Errorf("unsupported instruction 0xfd %d", sub)
}

var errShort = errors.New("unexpected end of section")

// reader reads the binary format's primitives, checking every length
// against what remains.
type reader struct {
	b   []byte
	off int
}

func (r *reader) done() bool { return r.off >= len(r.b) }

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errShort
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) bytes(n uint32) ([]byte, error) {
	if uint64(n) > uint64(len(r.b)-r.off) {
		return nil, errShort
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

func (r *reader) u32() (uint32, error) {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			if shift == 28 && c > 0x0f {
				return 0, errors.New("u32 out of range")
			}
			return v, nil
		}
	}
	return 0, errors.New("u32 too long")
}

func (r *reader) skipU32s(n int) error {
	for range n {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

// skipLEB skips a signed or unsigned LEB128 of at most maxBytes bytes.
func (r *reader) skipLEB(maxBytes int) error {
	for range maxBytes {
		c, err := r.byte()
		if err != nil {
			return err
		}
		if c&0x80 == 0 {
			return nil
		}
	}
	return errors.New("integer too long")
}

// skipBlockType skips a block type: empty, a value type, or a type index
// (a signed 33-bit LEB128).
func (r *reader) skipBlockType() error {
	if r.off >= len(r.b) {
		return errShort
	}
	switch r.b[r.off] {
	case blockEmpty, ValI32, ValI64, ValF32, ValF64, ValV128, 0x70, 0x6f:
		r.off++
		return nil
	}
	return r.skipLEB(5)
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(n)
	return string(b), err
}

func (r *reader) skipLimits() error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flags&1 != 0 {
		_, err = r.u32()
	}
	return err
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func (r *reader) s32() (int32, error) {
	var v int64
	for shift := 0; shift < 35; shift += 7 {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= int64(c&0x7f) << shift
		if c&0x80 == 0 {
			if shift < 63 && c&0x40 != 0 {
				v |= -1 << (shift + 7)
			}
			if v < -1<<31 || v > 1<<31-1 {
				return 0, errors.New("s32 out of range")
			}
			return int32(v), nil
		}
	}
	return 0, errors.New("s32 too long")
}

func appendS32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
