// Package onnxbuild writes ONNX models from Go: the tiny models of tests
// and benchmarks, and the text classifiers accel/training exports. No
// Python, no generated code. It encodes the few ModelProto
// fields a graph of plain operators needs with protowire (field numbers
// from onnx.proto3). Go packages with ONNX's generated types exist, but
// each either keeps them internal (onnx-go, onnx-gomlx) or comes as part
// of a whole runtime with its dependencies (gonnx); a dozen fields do not
// justify either.
package onnxbuild

import (
	"fmt"
	"math"
	"sort"

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

// Node is one operator.
type Node struct {
	Op      string
	Inputs  []string
	Outputs []string
	// Attrs are the operator's attributes: int64 (INT), float32 (FLOAT),
	// string (STRING) or []int64 (INTS).
	Attrs map[string]any
}

// Tensor is a constant: a graph initializer. Data holds the elements
// little-endian, row-major (ONNX's raw_data).
type Tensor struct {
	Name string
	Type ElemType
	Dims []int64
	Data []byte
}

// Graph is a model's graph.
type Graph struct {
	Name         string
	Inputs       []Value
	Outputs      []Value
	Nodes        []Node
	Initializers []Tensor
}

// Encode returns the ONNX model (IR version 8, opset 17) holding g.
func Encode(g Graph) []byte {
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
		node = appendString(node, 3, n.Op+"_"+string(rune('a'+i%26)))
		node = appendString(node, 4, n.Op)
		for _, name := range sortedKeys(n.Attrs) {
			node = appendBytes(node, 5, attribute(name, n.Attrs[name]))
		}
		graph = appendBytes(graph, 1, node)
	}
	graph = appendString(graph, 2, g.Name)
	for _, t := range g.Initializers {
		graph = appendBytes(graph, 5, tensorProto(t))
	}
	for _, v := range g.Inputs {
		graph = appendBytes(graph, 11, valueInfo(v))
	}
	for _, v := range g.Outputs {
		graph = appendBytes(graph, 12, valueInfo(v))
	}

	var model []byte
	model = protowire.AppendTag(model, 1, protowire.VarintType) // ir_version
	model = protowire.AppendVarint(model, 8)
	model = appendString(model, 2, "millrace-onnxbuild") // producer_name
	model = appendBytes(model, 7, graph)
	var opset []byte
	opset = protowire.AppendTag(opset, 2, protowire.VarintType) // version; domain "" is the default
	opset = protowire.AppendVarint(opset, 17)
	model = appendBytes(model, 8, opset)
	return model
}

// attribute encodes an AttributeProto; a value of another type panics
// (the callers are this module's own model writers).
func attribute(name string, v any) []byte {
	var a []byte
	a = appendString(a, 1, name)
	switch v := v.(type) {
	case int64:
		a = protowire.AppendTag(a, 3, protowire.VarintType)
		a = protowire.AppendVarint(a, uint64(v))
		a = appendType(a, 2)
	case int:
		return attribute(name, int64(v))
	case float32:
		a = protowire.AppendTag(a, 2, protowire.Fixed32Type)
		a = protowire.AppendFixed32(a, math.Float32bits(v))
		a = appendType(a, 1)
	case string:
		a = appendString(a, 4, v)
		a = appendType(a, 3)
	case []int64:
		for _, x := range v {
			a = protowire.AppendTag(a, 8, protowire.VarintType)
			a = protowire.AppendVarint(a, uint64(x))
		}
		a = appendType(a, 7)
	default:
		panic(fmt.Sprintf("onnxbuild: attribute %s: unsupported type %T", name, v))
	}
	return a
}

func appendType(a []byte, t uint64) []byte {
	a = protowire.AppendTag(a, 20, protowire.VarintType)
	return protowire.AppendVarint(a, t)
}

func tensorProto(t Tensor) []byte {
	var b []byte
	for _, d := range t.Dims {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(d))
	}
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.Type))
	b = appendString(b, 8, t.Name)
	b = appendBytes(b, 9, t.Data)
	return b
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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
