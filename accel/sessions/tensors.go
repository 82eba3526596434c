package sessions

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/millrace/millrace/accel/oip"
)

// ErrInvalidInput wraps every mismatch between a request and a model.
var ErrInvalidInput = errors.New("invalid inference request")

// ErrUnsupported wraps models and tensors this service cannot run.
var ErrUnsupported = errors.New("not supported")

// Metadata is a model's signature as ONNX Runtime reports it, in the
// protocol's terms: datatypes as "FP32", dynamic dimensions as -1.
type Metadata struct {
	Name    string
	Version string
	Inputs  []oip.TensorMetadata
	Outputs []oip.TensorMetadata

	inTypes, outTypes []ort.TensorElementDataType
	// dims names the dynamic dimensions when an FP16 or BF16 output has
	// one (see Session.outputShapes); nil otherwise.
	dims *dimParams
}

var toOIP = map[ort.TensorElementDataType]oip.Datatype{
	ort.TensorElementDataTypeBool:     oip.BOOL,
	ort.TensorElementDataTypeUint8:    oip.UINT8,
	ort.TensorElementDataTypeUint16:   oip.UINT16,
	ort.TensorElementDataTypeUint32:   oip.UINT32,
	ort.TensorElementDataTypeUint64:   oip.UINT64,
	ort.TensorElementDataTypeInt8:     oip.INT8,
	ort.TensorElementDataTypeInt16:    oip.INT16,
	ort.TensorElementDataTypeInt32:    oip.INT32,
	ort.TensorElementDataTypeInt64:    oip.INT64,
	ort.TensorElementDataTypeFloat16:  oip.FP16,
	ort.TensorElementDataTypeFloat:    oip.FP32,
	ort.TensorElementDataTypeDouble:   oip.FP64,
	ort.TensorElementDataTypeBFloat16: oip.BF16,
	ort.TensorElementDataTypeString:   oip.BYTES,
}

func newMetadata(model Model, ins, outs []ort.InputOutputInfo) (*Metadata, error) {
	md := &Metadata{Name: model.Name, Version: model.Version}
	if md.Version == "" {
		md.Version = "1"
	}
	conv := func(kind string, infos []ort.InputOutputInfo) ([]oip.TensorMetadata, []ort.TensorElementDataType, error) {
		var tms []oip.TensorMetadata
		var types []ort.TensorElementDataType
		for _, info := range infos {
			dt, ok := toOIP[info.DataType]
			if info.OrtValueType != ort.ONNXTypeTensor || !ok {
				return nil, nil, fmt.Errorf("model %q: %s %q is %s, which this server cannot carry (tensors of %s only)",
					model.Name, kind, info.Name, info.String(), "BOOL, (U)INT8–64, FP16, FP32, FP64, BF16")
			}
			shape := make([]int64, len(info.Dimensions))
			for i, d := range info.Dimensions {
				shape[i] = d
				if d < 0 {
					shape[i] = -1
				}
			}
			tms = append(tms, oip.TensorMetadata{Name: info.Name, Datatype: dt, Shape: shape})
			types = append(types, info.DataType)
		}
		return tms, types, nil
	}
	var err error
	if md.Inputs, md.inTypes, err = conv("input", ins); err != nil {
		return nil, err
	}
	if md.Outputs, md.outTypes, err = conv("output", outs); err != nil {
		return nil, err
	}
	for _, out := range md.Outputs {
		if !fixed(out.Shape) && (out.Datatype == oip.FP16 || out.Datatype == oip.BF16) && md.dims == nil {
			if md.dims, err = readDimParams(model.Path); err != nil {
				return nil, fmt.Errorf("model %q: reading the names of its dynamic dimensions from %s: %v", model.Name, model.Path, err)
			}
		}
	}
	return md, nil
}

// OIP returns the metadata as the protocol's model metadata object.
func (md *Metadata) OIP() oip.ModelMetadata {
	return oip.ModelMetadata{
		Name: md.Name, Versions: []string{md.Version}, Platform: oip.PlatformONNX,
		Inputs: md.Inputs, Outputs: md.Outputs,
	}
}

func (md *Metadata) inputNames() []string  { return names(md.Inputs) }
func (md *Metadata) outputNames() []string { return names(md.Outputs) }

func names(tms []oip.TensorMetadata) []string {
	out := make([]string, len(tms))
	for i, t := range tms {
		out[i] = t.Name
	}
	return out
}

// CheckInputs matches request inputs to the model's: every input given
// once, by name, with the model's datatype, rank and fixed dimensions, and
// at least one element. It returns them in the model's order. Errors wrap
// ErrInvalidInput.
func (md *Metadata) CheckInputs(inputs []oip.Tensor) ([]oip.Tensor, error) {
	byName := make(map[string]int, len(inputs))
	for i, in := range inputs {
		byName[in.Name] = i
	}
	ordered := make([]oip.Tensor, len(md.Inputs))
	for i, want := range md.Inputs {
		j, ok := byName[want.Name]
		if !ok {
			return nil, fmt.Errorf("%w: input %q is missing (model %q takes %s)", ErrInvalidInput, want.Name, md.Name, describe(md.Inputs))
		}
		delete(byName, want.Name)
		in := inputs[j]
		if in.Datatype != want.Datatype {
			return nil, fmt.Errorf("%w: input %q is %s, but model %q takes %s", ErrInvalidInput, in.Name, in.Datatype, md.Name, want.Datatype)
		}
		if err := checkShape(in.Shape, want.Shape); err != nil {
			return nil, fmt.Errorf("%w: input %q: %v", ErrInvalidInput, in.Name, err)
		}
		if len(in.Data) == 0 {
			return nil, fmt.Errorf("%w: input %q has no elements (shape %v); empty tensors are not supported", ErrInvalidInput, in.Name, in.Shape)
		}
		ordered[i] = in
	}
	for name := range byName {
		return nil, fmt.Errorf("%w: model %q has no input %q (it takes %s)", ErrInvalidInput, md.Name, name, describe(md.Inputs))
	}
	return ordered, nil
}

// CheckOutputs reports whether the model has every named output.
func (md *Metadata) CheckOutputs(outputs []string) error {
	for _, name := range outputs {
		if !contains(md.Outputs, name) {
			return fmt.Errorf("%w: model %q has no output %q (it gives %s)", ErrInvalidInput, md.Name, name, describe(md.Outputs))
		}
	}
	return nil
}

func contains(tms []oip.TensorMetadata, name string) bool {
	for _, t := range tms {
		if t.Name == name {
			return true
		}
	}
	return false
}

func describe(tms []oip.TensorMetadata) string {
	parts := make([]string, len(tms))
	for i, t := range tms {
		parts[i] = fmt.Sprintf("%s %s %v", t.Name, t.Datatype, t.Shape)
	}
	return strings.Join(parts, ", ")
}

func checkShape(got, want []int64) error {
	if len(got) != len(want) {
		return fmt.Errorf("shape %v has rank %d, but the model wants rank %d %v (-1: any size)", got, len(got), len(want), want)
	}
	for i := range want {
		if want[i] >= 0 && got[i] != want[i] {
			return fmt.Errorf("shape %v: dimension %d is %d, but the model wants %d (shape %v, -1: any size)", got, i, got[i], want[i], want)
		}
	}
	return nil
}

// Run runs the model on inputs, which CheckInputs returned, and returns
// every output in the model's order. Outputs whose declared shape is fixed
// are written by ONNX Runtime straight into Go memory; the others are
// allocated by ONNX Runtime and copied once (onnxruntime_go's way).
func (s *Session) Run(inputs []oip.Tensor) ([]oip.Tensor, error) {
	md := s.e.meta
	ins := make([]ort.Value, len(inputs))
	outs := make([]ort.Value, len(md.Outputs))
	defer func() {
		for _, v := range append(ins, outs...) {
			// A failed Run may leave a typed nil among the outputs.
			if v != nil && !reflect.ValueOf(v).IsNil() {
				v.Destroy()
			}
		}
	}()
	for i, in := range inputs {
		v, err := newValue(in.Shape, md.inTypes[i], in.Data)
		if err != nil {
			return nil, fmt.Errorf("input %q: %v", in.Name, err)
		}
		ins[i] = v
	}
	shapes, err := s.outputShapes(inputs)
	if err != nil {
		return nil, err
	}
	for i, out := range md.Outputs {
		shape := out.Shape
		if shapes != nil {
			shape = shapes[i]
		}
		if fixed(shape) {
			n, _ := oip.ElementCount(shape, math.MaxInt64)
			v, err := newValue(shape, md.outTypes[i], make([]byte, n*int64(out.Datatype.Size())))
			if err != nil {
				return nil, fmt.Errorf("output %q: %v", out.Name, err)
			}
			outs[i] = v
		}
	}
	if err := s.e.sess.Run(ins, outs); err != nil {
		return nil, fmt.Errorf("ONNX Runtime failed to run model %q: %v", md.Name, err)
	}
	result := make([]oip.Tensor, len(outs))
	for i, v := range outs {
		data, err := valueBytes(v)
		if err != nil {
			return nil, fmt.Errorf("output %q: %v", md.Outputs[i].Name, err)
		}
		result[i] = oip.Tensor{Name: md.Outputs[i].Name, Datatype: md.Outputs[i].Datatype, Shape: v.GetShape(), Data: data}
		if result[i].Shape == nil {
			result[i].Shape = []int64{}
		}
	}
	return result, nil
}

// outputShapes returns the shape of every output when the model has a
// 16-bit float output of dynamic shape, else nil. onnxruntime_go v1.27.0
// cannot return such an output itself (for element types it has no Go
// type for, it copies one byte per element), so Run allocates it, which
// needs its shape before the run: the dynamic dimensions' names, read
// from the model file at load, give each from an input's.
func (s *Session) outputShapes(inputs []oip.Tensor) ([][]int64, error) {
	md := s.e.meta
	if md.dims == nil {
		return nil, nil
	}
	shapes := make([][]int64, len(inputs))
	for i, in := range inputs {
		shapes[i] = in.Shape
	}
	return md.dims.resolve(md, shapes)
}

func fixed(shape []int64) bool {
	for _, d := range shape {
		if d < 0 {
			return false
		}
	}
	return true
}

// newValue wraps data (little-endian, row-major) as an ONNX Runtime value
// without copying it. Rank-0 tensors go through typed scalars:
// onnxruntime_go's byte-backed tensors need at least one dimension.
func newValue(shape []int64, dt ort.TensorElementDataType, data []byte) (ort.Value, error) {
	if len(shape) > 0 {
		return ort.NewCustomDataTensor(ort.Shape(shape), data, dt)
	}
	le := binary.LittleEndian
	switch dt {
	case ort.TensorElementDataTypeFloat:
		return ort.NewScalar(math.Float32frombits(le.Uint32(data)))
	case ort.TensorElementDataTypeDouble:
		return ort.NewScalar(math.Float64frombits(le.Uint64(data)))
	case ort.TensorElementDataTypeInt64:
		return ort.NewScalar(int64(le.Uint64(data)))
	case ort.TensorElementDataTypeInt32:
		return ort.NewScalar(int32(le.Uint32(data)))
	case ort.TensorElementDataTypeInt16:
		return ort.NewScalar(int16(le.Uint16(data)))
	case ort.TensorElementDataTypeInt8:
		return ort.NewScalar(int8(data[0]))
	case ort.TensorElementDataTypeUint64:
		return ort.NewScalar(le.Uint64(data))
	case ort.TensorElementDataTypeUint32:
		return ort.NewScalar(le.Uint32(data))
	case ort.TensorElementDataTypeUint16:
		return ort.NewScalar(le.Uint16(data))
	case ort.TensorElementDataTypeUint8:
		return ort.NewScalar(data[0])
	case ort.TensorElementDataTypeBool:
		return ort.NewScalar(data[0] != 0)
	}
	return nil, fmt.Errorf("rank-0 tensors of %s are not supported", toOIP[dt])
}

// valueBytes returns an output's data as bytes, without copying.
func valueBytes(v ort.Value) ([]byte, error) {
	switch t := v.(type) {
	case *ort.CustomDataTensor:
		return t.GetData(), nil
	case *ort.Tensor[float32]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[float64]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[int8]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[int16]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[int32]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[int64]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[uint8]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[uint16]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[uint32]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[uint64]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[bool]:
		return asBytes(t.GetData()), nil
	case *ort.Scalar[float32]:
		return asBytes([]float32{t.GetData()}), nil
	case *ort.Scalar[float64]:
		return asBytes([]float64{t.GetData()}), nil
	case *ort.Scalar[int8]:
		return asBytes([]int8{t.GetData()}), nil
	case *ort.Scalar[int16]:
		return asBytes([]int16{t.GetData()}), nil
	case *ort.Scalar[int32]:
		return asBytes([]int32{t.GetData()}), nil
	case *ort.Scalar[int64]:
		return asBytes([]int64{t.GetData()}), nil
	case *ort.Scalar[uint8]:
		return asBytes([]uint8{t.GetData()}), nil
	case *ort.Scalar[uint16]:
		return asBytes([]uint16{t.GetData()}), nil
	case *ort.Scalar[uint32]:
		return asBytes([]uint32{t.GetData()}), nil
	case *ort.Scalar[uint64]:
		return asBytes([]uint64{t.GetData()}), nil
	case *ort.Scalar[bool]:
		return asBytes([]bool{t.GetData()}), nil
	}
	return nil, fmt.Errorf("ONNX Runtime returned an unsupported value (%T)", v)
}

// asBytes views a Go-managed slice as bytes; the slice outlives the ORT
// value that wrapped it (Destroy drops only the wrapper).
func asBytes[T bool | int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64 | float32 | float64](s []T) []byte {
	if len(s) == 0 {
		return []byte{}
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(zero)))
}
