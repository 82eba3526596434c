package sessions

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/millrace/millrace/accel/oip"
)

// dimParams are the symbolic names of a model's dynamic dimensions
// ("batch_size", "height", …), by input and output name: "" where a
// dimension is fixed or unnamed. onnxruntime_go reports dynamic
// dimensions as -1 only, so they are read from the model file.
type dimParams struct {
	inputs, outputs map[string][]string
}

// maxValueInfoBytes bounds one graph input or output description.
const maxValueInfoBytes = 1 << 20

// readDimParams reads the graph's inputs and outputs from an ONNX file,
// streaming past everything else (weights included), so a model of
// several GiB costs one read and little memory. Field numbers are
// onnx.proto3's: ModelProto.graph = 7; GraphProto.input = 11, output =
// 12; ValueInfoProto.name = 1, type = 2; TypeProto.tensor_type = 1;
// Tensor.shape = 2; TensorShapeProto.dim = 1; Dimension.dim_param = 2.
func readDimParams(path string) (*dimParams, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	dp := &dimParams{inputs: map[string][]string{}, outputs: map[string][]string{}}
	for {
		num, typ, err := readTag(r)
		if errors.Is(err, io.EOF) {
			return dp, nil
		}
		if err != nil {
			return nil, err
		}
		if num != 7 || typ != protowire.BytesType {
			if err := skip(r, typ); err != nil {
				return nil, err
			}
			continue
		}
		n, err := readVarint(r)
		if err != nil {
			return nil, err
		}
		if err := readGraph(io.LimitReader(r, int64(n)), dp); err != nil {
			return nil, err
		}
	}
}

// byteReader is what the streaming decoder reads from.
type byteReader interface {
	io.Reader
	io.ByteReader
}

func readGraph(lr io.Reader, dp *dimParams) error {
	r := bufio.NewReaderSize(lr, 64<<10)
	for {
		num, typ, err := readTag(r)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if (num != 11 && num != 12) || typ != protowire.BytesType {
			if err := skip(r, typ); err != nil {
				return err
			}
			continue
		}
		n, err := readVarint(r)
		if err != nil {
			return err
		}
		if n > maxValueInfoBytes {
			return fmt.Errorf("a graph input or output of %d bytes", n)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return err
		}
		name, dims, err := valueInfoDims(b)
		if err != nil {
			return err
		}
		if num == 11 {
			dp.inputs[name] = dims
		} else {
			dp.outputs[name] = dims
		}
	}
}

// valueInfoDims decodes a ValueInfoProto's name and dim_params.
func valueInfoDims(b []byte) (string, []string, error) {
	var name string
	var dims []string
	err := each(b, func(num protowire.Number, v []byte) error {
		switch num {
		case 1:
			name = string(v)
		case 2: // TypeProto
			return each(v, func(num protowire.Number, v []byte) error {
				if num != 1 { // tensor_type
					return nil
				}
				return each(v, func(num protowire.Number, v []byte) error {
					if num != 2 { // shape
						return nil
					}
					return each(v, func(num protowire.Number, v []byte) error {
						if num != 1 { // dim
							return nil
						}
						param := ""
						err := each(v, func(num protowire.Number, v []byte) error {
							if num == 2 {
								param = string(v)
							}
							return nil
						})
						dims = append(dims, param)
						return err
					})
				})
			})
		}
		return nil
	})
	return name, dims, err
}

// each calls fn with every length-delimited field of a message, skipping
// the others.
func each(b []byte, fn func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if err := fn(num, v); err != nil {
				return err
			}
			b = b[n:]
			continue
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

func readVarint(r io.ByteReader) (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 64; shift += 7 {
		c, err := r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) && shift > 0 {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("a varint overflows 64 bits")
}

func readTag(r io.ByteReader) (protowire.Number, protowire.Type, error) {
	v, err := readVarint(r)
	if err != nil {
		return 0, 0, err
	}
	return protowire.Number(v >> 3), protowire.Type(v & 7), nil
}

// skip passes over one field value of wire type typ.
func skip(r *bufio.Reader, typ protowire.Type) error {
	var n uint64
	switch typ {
	case protowire.VarintType:
		_, err := readVarint(r)
		return err
	case protowire.Fixed32Type:
		n = 4
	case protowire.Fixed64Type:
		n = 8
	case protowire.BytesType:
		var err error
		if n, err = readVarint(r); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unexpected protobuf wire type %d", typ)
	}
	for n > 0 {
		k := int(min(n, 1<<30))
		d, err := r.Discard(k)
		n -= uint64(d)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// resolve returns the shape of each 16-bit float output for inputs of
// the given shapes (the others' as declared): fixed dimensions as they
// are, a named dynamic dimension from the input dimension of the same
// name, as exporters name them (Optimum's "batch_size", "height", …). An
// output dimension without a name, or with one no input has, is an
// error.
func (dp *dimParams) resolve(md *Metadata, inputShapes [][]int64) ([][]int64, error) {
	sizes := map[string]int64{}
	for i, in := range md.Inputs {
		for j, p := range dp.inputs[in.Name] {
			if p != "" && j < len(inputShapes[i]) {
				sizes[p] = inputShapes[i][j]
			}
		}
	}
	out := make([][]int64, len(md.Outputs))
	for i, o := range md.Outputs {
		out[i] = append([]int64{}, o.Shape...)
		if o.Datatype != oip.FP16 && o.Datatype != oip.BF16 {
			continue // onnxruntime_go returns these itself
		}
		params := dp.outputs[o.Name]
		for j, d := range o.Shape {
			if d >= 0 {
				continue
			}
			p := ""
			if j < len(params) {
				p = params[j]
			}
			size, ok := sizes[p]
			if p == "" || !ok {
				return nil, fmt.Errorf("%w: model %q: output %q is %s with a dynamic dimension %d (%q) that no input dimension names, so its size is unknown before the run, and onnxruntime_go v1.27.0 cannot return such an output itself; export the model with that dimension fixed, or in fp32", ErrUnsupported, md.Name, o.Name, o.Datatype, j, p)
			}
			out[i][j] = size
		}
	}
	return out, nil
}

var _ byteReader = (*bufio.Reader)(nil)
