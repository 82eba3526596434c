package sandbox

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/accel/oip"
	"github.com/stretchr/testify/require"
	"github.com/tetratelabs/wazero"
)

// The tensor bytes an invocation holds stay within its memory limit, and
// replacing an input gives its bytes back. (No accelerator is involved:
// the graph is made from metadata, and nothing is computed.)
func TestNNTensorBudget(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	mod, err := r.Instantiate(ctx, oneMemoryPage)
	require.NoError(t, err)
	mem := mod.Memory()

	c := newCall(&Invocation{Limits: Limits{MemoryBytes: 48 << 10, MaxLogBytes: 4096}})
	c.nn.graphs = []*AccelModel{{Name: "m", Inputs: []oip.TensorMetadata{
		{Name: "x", Datatype: oip.FP32, Shape: []int64{-1}},
		{Name: "y", Datatype: oip.FP32, Shape: []int64{-1}},
		{Name: "s", Datatype: oip.INT64, Shape: nil}, // a scalar
	}}}
	require.Equal(t, abi.NNSuccess, c.nnInitExecutionContext(mem, 0, 60000))

	// A tensor struct at 0, its one dimension at 32, data from 64.
	tensor := func(typ abi.NNTensorType, n uint32, dimsLen uint32) {
		b := make([]byte, 40)
		le := binary.LittleEndian
		le.PutUint32(b[0:], 32)
		le.PutUint32(b[4:], dimsLen)
		b[8] = byte(typ)
		le.PutUint32(b[12:], 64)
		le.PutUint32(b[16:], n*uint32(typ.Size()))
		le.PutUint32(b[32:], n)
		require.True(t, mem.Write(0, b))
	}
	tensor(abi.NNTypeF32, 7000, 1) // 28000 bytes
	require.Equal(t, abi.NNSuccess, c.nnSetInput(mem, 0, 0, 0, false))
	require.Equal(t, abi.NNTooLarge, c.nnSetInput(mem, 0, 1, 0, false), "28000 + 28000 bytes > 48 KiB")
	require.Equal(t, abi.NNSuccess, c.nnSetInput(mem, 0, 0, 0, false), "replacing an input frees its bytes")
	require.EqualValues(t, 28000, c.nn.held)
	tensor(abi.NNTypeF32, 2000, 1)
	require.Equal(t, abi.NNSuccess, c.nnSetInput(mem, 0, 1, 0, false))
	require.EqualValues(t, 36000, c.nn.held)

	tensor(abi.NNTypeI64, 1, 0) // rank 0: one element, whatever dims_ptr says
	require.Equal(t, abi.NNSuccess, c.nnSetInput(mem, 0, 2, 0, false))
	require.EqualValues(t, 36008, c.nn.held)

	require.Equal(t, abi.NNInvalidArgument, c.nnGetOutput(mem, 0, 0, 0, 0, 0), "no compute yet")
	var logs []string
	for _, l := range c.logs.records {
		logs = append(logs, l.Message)
	}
	require.Contains(t, strings.Join(logs, "\n"), "would take more than limits.memory_mb")
	require.Contains(t, strings.Join(logs, "\n"), "get_output: execution context 0 has no outputs: compute first (invalid_argument)")
}

// A grant of a pipeline covers its parts (PIPELINE/PART), nothing more.
func TestModelGranted(t *testing.T) {
	t.Parallel()
	granted := []string{"sdxl", "arith"}
	for name, want := range map[string]bool{
		"sdxl": true, "sdxl/unet": true, "arith": true, "arith/x": true,
		"sdxl2/unet": false, "sdxl/": false, "sdxl/unet/x": false, "other": false, "/unet": false,
	} {
		require.Equal(t, want, modelGranted(granted, name), name)
	}
	// Patterns: '*' matches within a name, never across the '/' of a part
	// (the part is granted through its pipeline's name).
	granted = []string{"*classifier*", "sdxl-*"}
	for name, want := range map[string]bool{
		"my-classifier": true, "classifier": true, "spam_classifier.v2": true, "sdxl-base": true, "sdxl-base/unet": true,
		"my-model": false, "sdxl": false, "classify": false, "x/classifier": false, "sdxl-base/unet/x": false,
	} {
		require.Equal(t, want, modelGranted(granted, name), name)
	}
}

// model_file copies a granted pipeline's file into the guest, tells the
// size needed when the buffer is small, and refuses ungranted names;
// graph_metadata writes a graph's inputs and outputs as JSON.
func TestModelFileAndGraphMetadata(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	mod, err := r.Instantiate(ctx, oneMemoryPage)
	require.NoError(t, err)
	mem := mod.Memory()
	c := newCall(&Invocation{Accel: fileAccel{}, Limits: Limits{MemoryBytes: 1 << 16, MaxLogBytes: 4096},
		Grant: Grant{Capabilities: abi.Capabilities{Accel: &abi.Accel{Models: []string{"arith"}}}}})
	require.True(t, mem.Write(0, []byte("arithscheduler/config.jsonotherx.json")))
	const buf, written = 1000, 996
	require.Equal(t, abi.NNTooLarge, c.nnModelFile(ctx, mem, 0, 5, 5, 21, buf, 4, written))
	n, _ := mem.ReadUint32Le(written)
	require.EqualValues(t, 41, n, "the size needed")
	require.Equal(t, abi.NNSuccess, c.nnModelFile(ctx, mem, 0, 5, 5, 21, buf, n, written))
	got, _ := mem.Read(buf, n)
	require.JSONEq(t, `{"_class_name": "EulerDiscreteScheduler"}`, string(got))
	require.Equal(t, abi.NNNotFound, c.nnModelFile(ctx, mem, 26, 5, 31, 6, buf, 100, written), "not granted")
	require.Equal(t, abi.NNNotFound, c.nnModelFile(ctx, mem, 0, 5, 31, 6, buf, 100, written), "no such file")

	c.nn.graphs = []*AccelModel{{Name: "arith/unet", Inputs: []oip.TensorMetadata{{Name: "x", Datatype: oip.FP16, Shape: []int64{-1, 4}}},
		Outputs: []oip.TensorMetadata{{Name: "y", Datatype: oip.FP32, Shape: nil}}}}
	require.Equal(t, abi.NNSuccess, c.nnGraphMetadata(mem, 0, buf, 4000, written))
	n, _ = mem.ReadUint32Le(written)
	got, _ = mem.Read(buf, n)
	require.JSONEq(t, `{"name":"arith/unet","inputs":[{"name":"x","type":"f16","datatype":"FP16","shape":[-1,4]}],"outputs":[{"name":"y","type":"f32","datatype":"FP32","shape":[]}]}`, string(got))
	require.Equal(t, abi.NNInvalidArgument, c.nnGraphMetadata(mem, 1, buf, 4000, written))
}
