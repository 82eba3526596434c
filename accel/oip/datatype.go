// Package oip holds the Open Inference Protocol (KServe v2) wire format
// that millrace-accel serves and its client speaks: the JSON objects, the
// tensor datatypes, and the binary tensor data extension (request and
// response bodies that carry tensors as raw bytes after a JSON header).
//
// It is pure Go and imports only the standard library, so the server's
// accel client, the service and the tests share one codec.
package oip

// Datatype is a tensor element type as the protocol spells it ("FP32").
type Datatype string

// The protocol's tensor datatypes.
const (
	BOOL   Datatype = "BOOL"
	UINT8  Datatype = "UINT8"
	UINT16 Datatype = "UINT16"
	UINT32 Datatype = "UINT32"
	UINT64 Datatype = "UINT64"
	INT8   Datatype = "INT8"
	INT16  Datatype = "INT16"
	INT32  Datatype = "INT32"
	INT64  Datatype = "INT64"
	FP16   Datatype = "FP16"
	FP32   Datatype = "FP32"
	FP64   Datatype = "FP64"
	BF16   Datatype = "BF16"
	BYTES  Datatype = "BYTES"
)

// Size is the number of bytes one element takes in binary tensor data, or
// 0 for BYTES (variable length) and unknown datatypes.
func (d Datatype) Size() int {
	switch d {
	case BOOL, UINT8, INT8:
		return 1
	case UINT16, INT16, FP16, BF16:
		return 2
	case UINT32, INT32, FP32:
		return 4
	case UINT64, INT64, FP64:
		return 8
	}
	return 0
}

// Valid reports whether d is one of the protocol's datatypes.
func (d Datatype) Valid() bool { return d.Size() > 0 || d == BYTES }
