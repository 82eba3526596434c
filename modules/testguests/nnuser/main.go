// Command nnuser runs one model through the tensor ABI (ABI.md §8) and
// returns its outputs. Input:
//
//	{"model": "arith",
//	 "inputs": [{"type": "f32", "shape": [1, 3], "data": [1, 2, 3]}, …],
//	 "async": false,    // compute_start + compute_wait instead of compute
//	 "standard": false, // read outputs with get_output only, as f32
//	 "hook": "",        // GET this URL after set_input, before compute
//	 "load": false,     // call load with bytes instead (refused)
//	 "repeat": 1,       // compute this many times
//	 "outputs": 2,      // read this many outputs (0: until there is none)
//	 "fill": {"shape": [1, 3, 960, 960], "value": 0.5}, // input 0: f32, made here
//	 "summary": false}  // return each output's shape and sum, not its data
//
// and returns {"outputs": [{"type", "shape", "data"}]}. fill and summary
// let a benchmark move large tensors without JSON in the way. Numbers travel as
// JSON numbers (f16 and bf16 as their bits, bool as 0 or 1). Host errors
// fail the invocation with the function and errno
// ("wasi_ephemeral_nn.set_input: invalid_argument"); the host logs why.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/millrace/millrace/abi"
	millrace "github.com/millrace/millrace/guest-sdk"
	"github.com/millrace/millrace/guest-sdk/nn"
)

type tensor struct {
	Type  string        `json:"type"`
	Shape []uint32      `json:"shape"`
	Data  []json.Number `json:"data"`
	Sum   float64       `json:"sum,omitempty"` // with summary, instead of data
}

type input struct {
	Model    string   `json:"model"`
	Inputs   []tensor `json:"inputs"`
	Async    bool     `json:"async"`
	Standard bool     `json:"standard"`
	Hook     string   `json:"hook"`
	Load     bool     `json:"load"`
	Repeat   int      `json:"repeat"`
	Outputs  int      `json:"outputs"`
	Fill     *struct {
		Shape []uint32 `json:"shape"`
		Value float32  `json:"value"`
	} `json:"fill"`
	Summary bool `json:"summary"`
}

type output struct {
	Outputs []tensor `json:"outputs"`
}

var types = []abi.NNTensorType{abi.NNTypeF16, abi.NNTypeF32, abi.NNTypeF64, abi.NNTypeU8, abi.NNTypeI32, abi.NNTypeI64,
	abi.NNTypeBF16, abi.NNTypeI8, abi.NNTypeU16, abi.NNTypeI16, abi.NNTypeU32, abi.NNTypeU64, abi.NNTypeBool}

func typeNamed(name string) (abi.NNTensorType, error) {
	for _, t := range types {
		if t.String() == name {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown tensor type %q", name)
}

// encode turns JSON numbers into little-endian elements of typ.
func encode(typ abi.NNTensorType, data []json.Number) ([]byte, error) {
	out := make([]byte, 0, len(data)*typ.Size())
	for _, n := range data {
		s := string(n)
		var err error
		switch typ {
		case abi.NNTypeF32:
			var f float64
			f, err = strconv.ParseFloat(s, 32)
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(f)))
		case abi.NNTypeF64:
			var f float64
			f, err = strconv.ParseFloat(s, 64)
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(f))
		case abi.NNTypeI8, abi.NNTypeI16, abi.NNTypeI32, abi.NNTypeI64:
			var v int64
			v, err = strconv.ParseInt(s, 10, 8*typ.Size())
			out = appendUint(out, typ.Size(), uint64(v))
		default: // unsigned, bool, and the bits of f16 and bf16
			var v uint64
			v, err = strconv.ParseUint(s, 10, 8*typ.Size())
			out = appendUint(out, typ.Size(), v)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func appendUint(b []byte, size int, v uint64) []byte {
	for i := 0; i < size; i++ {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// decode turns little-endian elements of typ into JSON numbers.
func decode(typ abi.NNTensorType, b []byte) []json.Number {
	size := typ.Size()
	out := make([]json.Number, 0, len(b)/size)
	for i := 0; i+size <= len(b); i += size {
		var v uint64
		for j := 0; j < size; j++ {
			v |= uint64(b[i+j]) << (8 * j)
		}
		var s string
		switch typ {
		case abi.NNTypeF32:
			s = strconv.FormatFloat(float64(math.Float32frombits(uint32(v))), 'g', -1, 32)
		case abi.NNTypeF64:
			s = strconv.FormatFloat(math.Float64frombits(v), 'g', -1, 64)
		case abi.NNTypeI8, abi.NNTypeI16, abi.NNTypeI32, abi.NNTypeI64:
			shift := 64 - 8*size
			s = strconv.FormatInt(int64(v<<shift)>>shift, 10)
		default:
			s = strconv.FormatUint(v, 10)
		}
		out = append(out, json.Number(s))
	}
	return out
}

func run(_ context.Context, in input) (output, error) {
	if in.Load {
		_, err := nn.Load([][]byte{[]byte("weights")}, abi.NNEncodingONNX, abi.NNTargetCPU)
		return output{}, err
	}
	g, err := nn.LoadByName(in.Model)
	if err != nil {
		return output{}, err
	}
	c, err := g.NewExecutionContext()
	if err != nil {
		return output{}, err
	}
	if f := in.Fill; f != nil {
		n := 1
		for _, d := range f.Shape {
			n *= int(d)
		}
		data := make([]byte, 4*n) // zeros: the value 0 needs no pass
		if f.Value != 0 {
			bits := math.Float32bits(f.Value)
			for i := 0; i < len(data); i += 4 {
				binary.LittleEndian.PutUint32(data[i:], bits)
			}
		}
		if err := c.SetInput(0, nn.Tensor{Type: abi.NNTypeF32, Shape: f.Shape, Data: data}); err != nil {
			return output{}, err
		}
	}
	for i, t := range in.Inputs {
		typ, err := typeNamed(t.Type)
		if err != nil {
			return output{}, err
		}
		data, err := encode(typ, t.Data)
		if err != nil {
			return output{}, fmt.Errorf("input %d: %w", i, err)
		}
		if err := c.SetInput(i, nn.Tensor{Type: typ, Shape: t.Shape, Data: data}); err != nil {
			return output{}, err
		}
	}
	if in.Hook != "" {
		if _, err := millrace.HTTPSend(abi.HTTPRequest{URL: in.Hook}); err != nil {
			return output{}, err
		}
	}
	for range max(in.Repeat, 1) {
		if in.Async {
			if err := c.StartCompute(); err != nil {
				return output{}, err
			}
			for polls := uint32(1); ; polls++ {
				err := c.Wait(0)
				if err == nn.ErrRunning {
					millrace.Progress(int(polls), 0, "computing")
					err = c.Wait(1 << 30)
				}
				if err != nn.ErrRunning {
					if err != nil {
						return output{}, err
					}
					break
				}
			}
		} else if err := c.Compute(); err != nil {
			return output{}, err
		}
	}
	var out output
	for i := 0; in.Outputs == 0 || i < in.Outputs; i++ {
		if in.Standard {
			buf := make([]byte, 1<<16)
			n, err := c.GetOutput(i, buf)
			if err != nil {
				if i > 0 && errorIs(err, abi.NNInvalidArgument) {
					return out, nil // past the last output
				}
				return output{}, err
			}
			out.Outputs = append(out.Outputs, tensor{Type: "f32", Data: decode(abi.NNTypeF32, buf[:n])})
			continue
		}
		t, err := c.Output(i)
		if err != nil {
			if i > 0 && errorIs(err, abi.NNInvalidArgument) {
				return out, nil
			}
			return output{}, err
		}
		if in.Summary && t.Type == abi.NNTypeF32 {
			values, err := nn.View[float32](t)
			if err != nil {
				return output{}, err
			}
			var sum float64
			for _, v := range values {
				sum += float64(v)
			}
			out.Outputs = append(out.Outputs, tensor{Type: t.Type.String(), Shape: t.Shape, Sum: sum})
			continue
		}
		out.Outputs = append(out.Outputs, tensor{Type: t.Type.String(), Shape: t.Shape, Data: decode(t.Type, t.Data)})
	}
	return out, nil
}

func errorIs(err error, errno abi.NNErrno) bool {
	e, ok := err.(*nn.Error)
	return ok && e.Errno == errno
}

func init() { millrace.Handle(run) }

func main() {}
