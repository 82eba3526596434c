package oip

import (
	"errors"
	"fmt"
	"math"
	"unsafe"
)

// Tensor is a named tensor with its data as raw bytes: row-major,
// little-endian, Datatype.Size() bytes per element (BOOL is one byte, 0 or
// 1). This is the binary tensor data extension's layout, so tensors cross
// the wire and reach ONNX Runtime without conversion.
type Tensor struct {
	Name     string
	Datatype Datatype
	Shape    []int64
	Data     []byte
}

// Element is a Go type with a protocol datatype.
type Element interface {
	bool | uint8 | uint16 | uint32 | uint64 | int8 | int16 | int32 | int64 | float32 | float64
}

// DatatypeOf is the protocol datatype of the Go element type T. uint16
// maps to UINT16; FP16 and BF16 tensors are built with raw bytes.
func DatatypeOf[T Element]() Datatype {
	var zero T
	switch any(zero).(type) {
	case bool:
		return BOOL
	case uint8:
		return UINT8
	case uint16:
		return UINT16
	case uint32:
		return UINT32
	case uint64:
		return UINT64
	case int8:
		return INT8
	case int16:
		return INT16
	case int32:
		return INT32
	case int64:
		return INT64
	case float32:
		return FP32
	default:
		return FP64
	}
}

// NewTensor makes a tensor of values. The values are copied.
func NewTensor[T Element](name string, shape []int64, values []T) Tensor {
	return Tensor{
		Name:     name,
		Datatype: DatatypeOf[T](),
		Shape:    append(make([]int64, 0, len(shape)), shape...),
		Data:     append([]byte(nil), bytesOf(values)...),
	}
}

// Values returns a copy of the tensor's elements as T, which must match
// its datatype.
func Values[T Element](t Tensor) ([]T, error) {
	if want := DatatypeOf[T](); t.Datatype != want {
		return nil, fmt.Errorf("tensor %q is %s, not %s", t.Name, t.Datatype, want)
	}
	var zero T
	size := int(unsafe.Sizeof(zero))
	if len(t.Data)%size != 0 {
		return nil, fmt.Errorf("tensor %q: %d bytes is not a whole number of %s elements", t.Name, len(t.Data), t.Datatype)
	}
	out := make([]T, len(t.Data)/size)
	copy(bytesOf(out), t.Data)
	return out, nil
}

// bytesOf views values as bytes. Every platform Millrace builds for is
// little-endian, which is the wire's byte order.
func bytesOf[T Element](values []T) []byte {
	if len(values) == 0 {
		return nil
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(&values[0])), len(values)*int(unsafe.Sizeof(zero)))
}

// ElementCount is the product of shape's dimensions. It fails on a
// negative dimension and when the product exceeds max (or overflows).
func ElementCount(shape []int64, max int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension", shape)
		}
		if d != 0 && n > math.MaxInt64/d {
			return 0, errTooLarge(shape, max)
		}
		n *= d
		if n > max {
			return 0, errTooLarge(shape, max)
		}
	}
	return n, nil
}

func errTooLarge(shape []int64, max int64) error {
	return fmt.Errorf("shape %v has more than %d elements", shape, max)
}

// ErrBytesUnsupported is returned for BYTES tensors, which this server does
// not carry.
var ErrBytesUnsupported = errors.New("datatype BYTES is not supported")
