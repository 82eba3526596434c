// Package onnxtest writes the tiny ONNX models the server's tests run on
// the real ONNX Runtime behind millrace-accel, with accel/onnxbuild (the
// accelerator's own model writer: the dozen ModelProto fields a graph of
// plain operators needs).
package onnxtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/millrace/millrace/accel/onnxbuild"
)

// Arith has FP32 inputs a and b of shape [batch, 3] and outputs sum = a+b
// and product = a*b.
func Arith() []byte { return onnxbuild.Arith() }

// Types has one input per element type the tensor ABI's extensions carry
// beyond f32: INT64 [n] doubled, BOOL [n] negated, FP16 [2] and BF16 [2]
// returned as they are.
func Types() []byte {
	n := []onnxbuild.Dim{onnxbuild.P("n")}
	two := []onnxbuild.Dim{onnxbuild.D(2)}
	return onnxbuild.Encode(onnxbuild.Graph{
		Name: "types",
		Inputs: []onnxbuild.Value{
			{Name: "i64", Type: onnxbuild.Int64, Shape: n}, {Name: "flag", Type: onnxbuild.Bool, Shape: n},
			{Name: "half", Type: onnxbuild.Float16, Shape: two}, {Name: "brain", Type: onnxbuild.BFloat, Shape: two},
		},
		Outputs: []onnxbuild.Value{
			{Name: "i64_out", Type: onnxbuild.Int64, Shape: n}, {Name: "flag_out", Type: onnxbuild.Bool, Shape: n},
			{Name: "half_out", Type: onnxbuild.Float16, Shape: two}, {Name: "brain_out", Type: onnxbuild.BFloat, Shape: two},
		},
		Nodes: []onnxbuild.Node{
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
