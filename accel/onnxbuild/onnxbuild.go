// Package onnxbuild writes ONNX models from Go: the small models of tests
// and benchmarks, and the text classifiers accel/training exports. No
// Python, no generated code. It encodes the few ModelProto
// fields a graph of plain operators needs with protowire (field numbers
// from onnx.proto3). Go packages with ONNX's generated types exist, but
// each either keeps them internal (onnx-go, onnx-gomlx) or comes as part
// of a whole runtime with its dependencies (gonnx); a dozen fields do not
// justify either.
package onnxbuild

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// ElemType is an ONNX TensorProto.DataType.
type ElemType int32

// The element types the tests use.
const (
	Float   ElemType = 1
	Uint8   ElemType = 2
	Int8    ElemType = 3
	Int32   ElemType = 6
	Int64   ElemType = 7
	Bool    ElemType = 9
	Float16 ElemType = 10
	Double  ElemType = 11
	BFloat  ElemType = 16
)

// Dim is one dimension of a declared shape: a fixed size, or (Param set) a
// named dynamic one.
type Dim struct {
	Size  int64
	Param string
}

// D is a fixed dimension; P a dynamic one.
func D(n int64) Dim     { return Dim{Size: n} }
func P(name string) Dim { return Dim{Param: name} }

// Value is a graph input or output.
type Value struct {
	Name  string
	Type  ElemType
	Shape []Dim
}

// Node is one operator. An empty input name is an omitted optional input.
type Node struct {
	Op      string
	Inputs  []string
	Outputs []string
	Attrs   []Attr
}

// Graph is a model's graph.
type Graph struct {
	Name         string
	Inputs       []Value
	Outputs      []Value
	Nodes        []Node
	Initializers []Tensor
}

// Encode returns the ONNX model (IR version 8, opset 17) holding g, with
// every initializer inline.
func Encode(g Graph) []byte {
	model, _ := encode(g, "")
	return model
}

// EncodeExternal is Encode with the initializers marked External stored
// in a separate data file, as exporters do for models over protobuf's
// 2 GB limit: it returns the model and the data file's bytes, which the
// caller writes next to the model as location (ONNX Runtime resolves it
// relative to the model's folder when loading from a path). Each tensor's
// offset is aligned to 4096 bytes, as onnx's external data writer does.
func EncodeExternal(g Graph, location string) (model, data []byte) {
	return encode(g, location)
}

// externalAlign is the offset alignment of external tensors (a page, so
// a runtime may map them).
const externalAlign = 4096

func encode(g Graph, location string) (model, data []byte) {
	var graph []byte
	for i, n := range g.Nodes {
		var node []byte
		for _, in := range n.Inputs {
			node = protowire.AppendTag(node, 1, protowire.BytesType)
			node = protowire.AppendString(node, in)
		}
		for _, out := range n.Outputs {
			node = protowire.AppendTag(node, 2, protowire.BytesType)
			node = protowire.AppendString(node, out)
		}
		node = appendString(node, 3, fmt.Sprintf("%s_%d", n.Op, i))
		node = appendString(node, 4, n.Op)
		for _, a := range n.Attrs {
			node = appendBytes(node, 5, a.encode())
		}
		graph = appendBytes(graph, 1, node)
	}
	graph = appendString(graph, 2, g.Name)
	for _, t := range g.Initializers {
		var tensor []byte
		tensor, data = t.encode(location, data)
		graph = appendBytes(graph, 5, tensor)
	}
	for _, v := range g.Inputs {
		graph = appendBytes(graph, 11, valueInfo(v))
	}
	for _, v := range g.Outputs {
		graph = appendBytes(graph, 12, valueInfo(v))
	}

	model = protowire.AppendTag(model, 1, protowire.VarintType) // ir_version
	model = protowire.AppendVarint(model, 8)
	model = appendString(model, 2, "millrace-onnxbuild") // producer_name
	model = appendBytes(model, 7, graph)
	var opset []byte
	opset = protowire.AppendTag(opset, 2, protowire.VarintType) // version; domain "" is the default
	opset = protowire.AppendVarint(opset, 17)
	model = appendBytes(model, 8, opset)
	return model, data
}

// Attr is a node attribute: an int, a float or a list of ints. Make one
// with AttrInt, AttrFloat or AttrInts.
type Attr struct {
	Name string
	kind int // AttributeProto.AttributeType
	i    int64
	f    float32
	ints []int64
}

// AttrInt is an INT attribute (Concat's axis, DepthToSpace's blocksize).
func AttrInt(name string, v int64) Attr { return Attr{Name: name, kind: 2, i: v} }

// AttrFloat is a FLOAT attribute (LayerNormalization's epsilon).
func AttrFloat(name string, v float32) Attr { return Attr{Name: name, kind: 1, f: v} }

// AttrInts is an INTS attribute (ReduceMean's axes at opset 17).
func AttrInts(name string, v ...int64) Attr { return Attr{Name: name, kind: 7, ints: v} }

func (a Attr) encode() []byte {
	var b []byte
	b = appendString(b, 1, a.Name)
	switch a.kind {
	case 1:
		b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.f))
	case 2:
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.i))
	case 7:
		for _, v := range a.ints {
			b = protowire.AppendTag(b, 8, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(v))
		}
	}
	b = protowire.AppendTag(b, 20, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(a.kind))
}

// Tensor is a constant (an initializer): its raw little-endian data in
// row-major order. Make one with Floats or Int64s.
type Tensor struct {
	Name string
	Type ElemType
	Dims []int64
	Raw  []byte
	// External stores the data in the external data file when the model
	// is written with EncodeExternal (inline with Encode).
	External bool
}

// Floats is an FP32 tensor of the given shape.
func Floats(name string, dims []int64, values []float32) Tensor {
	raw := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	return Tensor{Name: name, Type: Float, Dims: dims, Raw: raw}
}

// Int64s is an INT64 tensor of the given shape.
func Int64s(name string, dims []int64, values ...int64) Tensor {
	raw := make([]byte, 8*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(v))
	}
	return Tensor{Name: name, Type: Int64, Dims: dims, Raw: raw}
}

// encode returns the TensorProto for t, appending its data to data when
// it goes to the external file location.
func (t Tensor) encode(location string, data []byte) ([]byte, []byte) {
	var b []byte
	for _, d := range t.Dims {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(d))
	}
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.Type))
	b = appendString(b, 8, t.Name)
	if !t.External || location == "" {
		return appendBytes(b, 9, t.Raw), data
	}
	if pad := len(data) % externalAlign; pad != 0 {
		data = append(data, make([]byte, externalAlign-pad)...)
	}
	offset := len(data)
	data = append(data, t.Raw...)
	for _, kv := range [][2]string{{"location", location}, {"offset", strconv.Itoa(offset)}, {"length", strconv.Itoa(len(t.Raw))}} {
		var entry []byte
		entry = appendString(entry, 1, kv[0])
		entry = appendString(entry, 2, kv[1])
		b = appendBytes(b, 13, entry)
	}
	b = protowire.AppendTag(b, 14, protowire.VarintType) // data_location
	b = protowire.AppendVarint(b, 1)                     // EXTERNAL
	return b, data
}

func valueInfo(v Value) []byte {
	var shape []byte
	for _, d := range v.Shape {
		var dim []byte
		if d.Param != "" {
			dim = appendString(dim, 2, d.Param)
		} else {
			dim = protowire.AppendTag(dim, 1, protowire.VarintType)
			dim = protowire.AppendVarint(dim, uint64(d.Size))
		}
		shape = appendBytes(shape, 1, dim)
	}
	var tensor []byte
	tensor = protowire.AppendTag(tensor, 1, protowire.VarintType) // elem_type
	tensor = protowire.AppendVarint(tensor, uint64(v.Type))
	tensor = appendBytes(tensor, 2, shape)
	var typ []byte
	typ = appendBytes(typ, 1, tensor) // tensor_type
	var info []byte
	info = appendString(info, 1, v.Name)
	info = appendBytes(info, 2, typ)
	return info
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// Arith is a model with FP32 inputs a and b of shape [batch, 3] and
// outputs sum = a+b and product = a*b.
func Arith() []byte {
	shape := []Dim{P("batch"), D(3)}
	return Encode(Graph{
		Name:    "arith",
		Inputs:  []Value{{"a", Float, shape}, {"b", Float, shape}},
		Outputs: []Value{{"sum", Float, shape}, {"product", Float, shape}},
		Nodes: []Node{
			{Op: "Add", Inputs: []string{"a", "b"}, Outputs: []string{"sum"}},
			{Op: "Mul", Inputs: []string{"a", "b"}, Outputs: []string{"product"}},
		},
	})
}

// Echo is a model that returns its FP32 input x of any length as y
// (Identity): the tensor transfer benchmark's model.
func Echo() []byte {
	return Encode(Graph{
		Name:    "echo",
		Inputs:  []Value{{"x", Float, []Dim{P("n")}}},
		Outputs: []Value{{"y", Float, []Dim{P("n")}}},
		Nodes:   []Node{{Op: "Identity", Inputs: []string{"x"}, Outputs: []string{"y"}}},
	})
}

// Types is a model with one input per datatype the tests exercise
// (INT64 [n], UINT8 [2, 2], BOOL [n], FP64 scalar, FP16 [2]), each
// returned doubled (the BOOL one negated, the FP16 one unchanged).
func Types() []byte {
	n := []Dim{P("n")}
	return Encode(Graph{
		Name: "types",
		Inputs: []Value{
			{"i64", Int64, n}, {"u8", Uint8, []Dim{D(2), D(2)}}, {"flag", Bool, n},
			{"f64", Double, nil}, {"half", Float16, []Dim{D(2)}},
		},
		Outputs: []Value{
			{"i64_out", Int64, n}, {"u8_out", Uint8, []Dim{D(2), D(2)}}, {"flag_out", Bool, n},
			{"f64_out", Double, nil}, {"half_out", Float16, []Dim{D(2)}},
		},
		Nodes: []Node{
			{Op: "Add", Inputs: []string{"i64", "i64"}, Outputs: []string{"i64_out"}},
			{Op: "Add", Inputs: []string{"u8", "u8"}, Outputs: []string{"u8_out"}},
			{Op: "Not", Inputs: []string{"flag"}, Outputs: []string{"flag_out"}},
			{Op: "Add", Inputs: []string{"f64", "f64"}, Outputs: []string{"f64_out"}},
			{Op: "Identity", Inputs: []string{"half"}, Outputs: []string{"half_out"}},
		},
	})
}

// HalfDynamic returns its FP16 input of any length (Identity): an output
// onnxruntime_go cannot hand back (see sessions.ErrUnsupported).
func HalfDynamic() []byte {
	return Encode(Graph{
		Name:    "half_dynamic",
		Inputs:  []Value{{"x", Float16, []Dim{P("n")}}},
		Outputs: []Value{{"y", Float16, []Dim{P("n")}}},
		Nodes:   []Node{{Op: "Identity", Inputs: []string{"x"}, Outputs: []string{"y"}}},
	})
}
