package pipeline

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// littleEndian is whether this machine stores numbers as tensor data
// does.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Tensor is a tensor as the runner carries it: the tensor ABI's type name
// (f32, f16, i32, i64), its dimensions and its little-endian data.
type Tensor struct {
	Type  string
	Shape []int64
	Data  []byte
}

// TensorInfo describes a model's input or output, as the accelerator's
// metadata does: -1 marks a dynamic dimension.
type TensorInfo struct {
	Name  string
	Type  string
	Shape []int64
}

// Elements is the number of elements of shape.
func Elements(shape []int64) int {
	n := 1
	for _, d := range shape {
		n *= int(d)
	}
	return n
}

// floatTensor encodes values as the float type typ (f32 or f16).
func floatTensor(typ string, shape []int64, values []float32) (Tensor, error) {
	if Elements(shape) != len(values) {
		return Tensor{}, fmt.Errorf("shape %v holds %d values, not %d", shape, Elements(shape), len(values))
	}
	switch typ {
	case "f32":
		b := make([]byte, 4*len(values))
		if littleEndian && len(values) > 0 {
			// WebAssembly (and every machine the tests run on) is
			// little-endian, as tensor data is: one copy, no loop.
			copy(b, unsafe.Slice((*byte)(unsafe.Pointer(&values[0])), len(b)))
		} else {
			for i, v := range values {
				binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
			}
		}
		return Tensor{Type: typ, Shape: shape, Data: b}, nil
	case "f16":
		b := make([]byte, 2*len(values))
		for i, v := range values {
			binary.LittleEndian.PutUint16(b[2*i:], Float16(v))
		}
		return Tensor{Type: typ, Shape: shape, Data: b}, nil
	}
	return Tensor{}, fmt.Errorf("type %s is not a float type this pipeline feeds (f32, f16)", typ)
}

// intTensor encodes values as the integer type typ (i32 or i64).
func intTensor(typ string, shape []int64, values []int64) (Tensor, error) {
	switch typ {
	case "i64":
		b := make([]byte, 8*len(values))
		for i, v := range values {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
		}
		return Tensor{Type: typ, Shape: shape, Data: b}, nil
	case "i32":
		b := make([]byte, 4*len(values))
		for i, v := range values {
			binary.LittleEndian.PutUint32(b[4*i:], uint32(int32(v)))
		}
		return Tensor{Type: typ, Shape: shape, Data: b}, nil
	}
	return Tensor{}, fmt.Errorf("type %s is not an integer type this pipeline feeds (i32, i64)", typ)
}

// Floats decodes an f32 or f16 tensor to float32.
func Floats(t Tensor) ([]float32, error) {
	n := Elements(t.Shape)
	switch t.Type {
	case "f32":
		if len(t.Data) != 4*n {
			return nil, fmt.Errorf("an f32 tensor of shape %v has %d bytes, not %d", t.Shape, len(t.Data), 4*n)
		}
		out := make([]float32, n)
		if littleEndian && n > 0 {
			copy(unsafe.Slice((*byte)(unsafe.Pointer(&out[0])), 4*n), t.Data)
		} else {
			for i := range out {
				out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
			}
		}
		return out, nil
	case "f16":
		if len(t.Data) != 2*n {
			return nil, fmt.Errorf("an f16 tensor of shape %v has %d bytes, not %d", t.Shape, len(t.Data), 2*n)
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = Float32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
		return out, nil
	}
	return nil, fmt.Errorf("the tensor is %s, not f32 or f16", t.Type)
}

// Float16 rounds f to the nearest IEEE 754 half-precision value (ties to
// even), as ONNX Runtime and PyTorch do; out-of-range values become ±Inf.
func Float16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case b&0x7fffffff > 0x7f800000: // NaN: keep it a NaN
		return sign | 0x7e00
	case exp >= 0x1f: // overflow and Inf
		return sign | 0x7c00
	case exp <= 0: // subnormal or zero
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint(14 - exp)
		half := uint32(1) << (shift - 1)
		r := mant >> shift
		rem := mant & (1<<shift - 1)
		if rem > half || (rem == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, up to Inf: that is right
	}
	return sign | uint16(r)
}

// Float32 widens a half-precision value exactly.
func Float32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: mant·2⁻²⁴.
		v := float32(mant) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}
