package training_test

import (
	"fmt"
	"testing"

	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/require"
)

// TestConvolutionGradientsUnsupported pins the fact docs/training.md
// rests on: the simplego backend runs convolutions forward, but their
// gradient needs the Reverse op, which it does not implement, so no
// convolutional network (an SDXL UNet or VAE: LoRA, DreamBooth, textual
// inversion all backpropagate through them) can be trained here. When a
// GoMLX upgrade adds it, this test fails: revisit the docs.
func TestConvolutionGradientsUnsupported(t *testing.T) {
	t.Parallel()
	b, err := simplego.New("")
	require.NoError(t, err)
	forward := graph.MustNewExec(b, func(x, k *graph.Node) *graph.Node {
		return graph.Convolve(x, k).Strides(1).NoPadding().Done()
	})
	x := tensors.FromShape(shapes.Make(dtypes.Float32, 1, 8, 8, 4))
	k := tensors.FromShape(shapes.Make(dtypes.Float32, 3, 3, 4, 4))
	out, err := forward.Exec(x, k)
	require.NoError(t, err, "convolutions run forward")
	require.Equal(t, []int{1, 6, 6, 4}, out[0].Shape().Dimensions)

	backward := graph.MustNewExec(b, func(x, k *graph.Node) *graph.Node {
		y := graph.Convolve(x, k).Strides(1).NoPadding().Done()
		return graph.Gradient(graph.ReduceAllSum(graph.Mul(y, y)), k)[0]
	})
	var failure string
	func() {
		defer func() {
			if p := recover(); p != nil {
				failure = fmt.Sprint(p)
			}
		}()
		_, err = backward.Exec(x, k)
		if err != nil {
			failure = err.Error()
		}
	}()
	require.Contains(t, failure, `op "Reverse" not implemented in SimpleGo`)
}
