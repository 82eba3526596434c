package sessions

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/oip"
	ob "github.com/millrace/millrace/accel/onnxbuild"
)

func TestReadDimParams(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "m.onnx")
	require.NoError(t, os.WriteFile(path, ob.HalfDynamic(), 0o644))
	dp, err := readDimParams(path)
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"x": {"n"}}, dp.inputs)
	require.Equal(t, map[string][]string{"y": {"n"}}, dp.outputs)

	md := &Metadata{Name: "m", Inputs: []oip.TensorMetadata{{Name: "x", Datatype: oip.FP16, Shape: []int64{-1}}},
		Outputs: []oip.TensorMetadata{{Name: "y", Datatype: oip.FP16, Shape: []int64{-1}}, {Name: "z", Datatype: oip.FP16, Shape: []int64{2, -1}}}}
	dp.outputs["z"] = []string{"", "m"}
	_, err = dp.resolve(md, [][]int64{{5}})
	require.ErrorIs(t, err, ErrUnsupported)
	require.ErrorContains(t, err, `output "z" is FP16 with a dynamic dimension 1 ("m")`)
	dp.outputs["z"] = []string{"", "n"}
	shapes, err := dp.resolve(md, [][]int64{{5}})
	require.NoError(t, err)
	require.Equal(t, [][]int64{{5}, {2, 5}}, shapes)
}

// FuzzReadDimParams: a model file is an admin's, but its decoder still
// must not crash or run away on any bytes.
func FuzzReadDimParams(f *testing.F) {
	f.Add(ob.HalfDynamic())
	f.Add(ob.Arith())
	f.Add([]byte{0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "m.onnx")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		readDimParams(path)
	})
}
