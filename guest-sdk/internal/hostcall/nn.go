package hostcall

import "github.com/millrace/millrace/abi"

// Tensor is what set_input passes: dimensions, element type and data
// (row-major, little-endian).
type Tensor struct {
	Dims []uint32
	Type abi.NNTensorType
	Data []byte
}
