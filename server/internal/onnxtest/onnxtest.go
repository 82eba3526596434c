// Package onnxtest writes tiny ONNX models for the server's tests, on the
// real ONNX Runtime behind millrace-accel. It follows accel/internal/
// onnxbuild's approach (encode the dozen ModelProto fields a graph of
// plain operators needs, field numbers from onnx.proto3), which the root
// module cannot import; protobuf's wire format is simple enough that
// encoding/binary's varints suffice, so this needs no dependency.
package onnxtest

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// ElemType is an ONNX TensorProto.DataType.
type ElemType uint64

// The element types the tests use.
const (
	Float   ElemType = 1
	Uint8   ElemType = 2
	Int32   ElemType = 6
	Int64   ElemType = 7
	Bool    ElemType = 9
	Float16 ElemType = 10
	Double  ElemType = 11
	BFloat  ElemType = 16
)

// Value is a graph input or output. A dimension of -1 is dynamic.
type Value struct {
	Name  string
	Type  ElemType
	Shape []int64
}

// Node is one operator.
type Node struct {
	Op      string
	Inputs  []string
	Outputs []string
}

// Graph is a model's graph.
type Graph struct {
	Name    string
	Inputs  []Value
	Outputs []Value
	Nodes   []Node
}

// protobuf wire types
const (
	varint = 0
	bytes  = 2
)

func tag(b []byte, field, wire uint64) []byte { return binary.AppendUvarint(b, field<<3|wire) }

func str(b []byte, field uint64, s string) []byte {
	b = tag(b, field, bytes)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func msg(b []byte, field uint64, m []byte) []byte { return str(b, field, string(m)) }

func num(b []byte, field, v uint64) []byte { return binary.AppendUvarint(tag(b, field, varint), v) }

func valueInfo(v Value) []byte {
	var shape []byte
	for i, d := range v.Shape {
		var dim []byte
		if d < 0 {
			dim = str(dim, 2, "d"+string(rune('0'+i))) // dim_param
		} else {
			dim = num(dim, 1, uint64(d)) // dim_value
		}
		shape = msg(shape, 1, dim)
	}
	tensor := num(nil, 1, uint64(v.Type)) // elem_type
	tensor = msg(tensor, 2, shape)
	typ := msg(nil, 1, tensor) // TypeProto.tensor_type
	info := str(nil, 1, v.Name)
	return msg(info, 2, typ)
}

// Encode returns the ONNX model (IR version 8, opset 17) holding g.
func Encode(g Graph) []byte {
	var graph []byte
	for i, n := range g.Nodes {
		var node []byte
		for _, in := range n.Inputs {
			node = str(node, 1, in)
		}
		for _, out := range n.Outputs {
			node = str(node, 2, out)
		}
		node = str(node, 3, n.Op+"_"+string(rune('a'+i%26)))
		node = str(node, 4, n.Op)
		graph = msg(graph, 1, node)
	}
	graph = str(graph, 2, g.Name)
	for _, v := range g.Inputs {
		graph = msg(graph, 11, valueInfo(v))
	}
	for _, v := range g.Outputs {
		graph = msg(graph, 12, valueInfo(v))
	}
	model := num(nil, 1, 8) // ir_version
	model = str(model, 2, "millrace-onnxtest")
	model = msg(model, 7, graph)
	return msg(model, 8, num(nil, 2, 17)) // opset_import {version: 17}, the default domain
}

// Arith has FP32 inputs a and b of shape [batch, 3] and outputs sum = a+b
// and product = a*b.
func Arith() []byte {
	shape := []int64{-1, 3}
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

// Types has one input per element type the tensor ABI's extensions carry
// beyond f32: INT64 [n] doubled, BOOL [n] negated, FP16 [2] and BF16 [2]
// returned as they are.
func Types() []byte {
	return Encode(Graph{
		Name: "types",
		Inputs: []Value{
			{"i64", Int64, []int64{-1}}, {"flag", Bool, []int64{-1}},
			{"half", Float16, []int64{2}}, {"brain", BFloat, []int64{2}},
		},
		Outputs: []Value{
			{"i64_out", Int64, []int64{-1}}, {"flag_out", Bool, []int64{-1}},
			{"half_out", Float16, []int64{2}}, {"brain_out", BFloat, []int64{2}},
		},
		Nodes: []Node{
			{Op: "Add", Inputs: []string{"i64", "i64"}, Outputs: []string{"i64_out"}},
			{Op: "Not", Inputs: []string{"flag"}, Outputs: []string{"flag_out"}},
			{Op: "Identity", Inputs: []string{"half"}, Outputs: []string{"half_out"}},
			{Op: "Identity", Inputs: []string{"brain"}, Outputs: []string{"brain_out"}},
		},
	})
}

// WriteFile writes model to dir/name and returns the path.
func WriteFile(tb testing.TB, dir, name string, model []byte) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, model, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}
