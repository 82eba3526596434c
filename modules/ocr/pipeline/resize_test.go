package pipeline

import (
	"image"
	"image/color"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/image/draw"
)

func TestFilterTaps(t *testing.T) {
	t.Parallel()
	for d, tp := range filterTaps(5, 5) {
		require.Equal(t, taps{d, []float32{1}}, tp, "same size: each pixel is itself")
	}
	// Enlarging 2 → 4: centres at -0.25, 0.25, 0.75, 1.25.
	require.Equal(t, []taps{{0, []float32{1}}, {0, []float32{0.75, 0.25}}, {0, []float32{0.25, 0.75}}, {1, []float32{1}}}, filterTaps(2, 4))
	// Shrinking 4 → 2: the triangle is 2 pixels wide each side.
	tp := filterTaps(4, 2)
	require.Equal(t, 0, tp[0].start)
	require.InDeltaSlice(t, []float32{3.0 / 7, 3.0 / 7, 1.0 / 7}, tp[0].w, 1e-6)
	require.Equal(t, 1, tp[1].start)
	require.InDeltaSlice(t, []float32{1.0 / 7, 3.0 / 7, 3.0 / 7}, tp[1].w, 1e-6)
	for _, c := range [][2]int{{1000, 7}, {7, 1000}, {1, 32}, {32, 1}} {
		for _, tp := range filterTaps(c[0], c[1]) {
			var sum float32
			for _, w := range tp.w {
				sum += w
			}
			require.InDelta(t, 1, sum, 1e-5)
			require.GreaterOrEqual(t, tp.start, 0)
			require.LessOrEqual(t, tp.start+len(tp.w), c[0])
		}
	}
}

// TestResizeMatchesXImage: resizeBGR filters as x/image/draw's BiLinear
// does; their results differ by draw's rounding to bytes.
func TestResizeMatchesXImage(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	src := image.NewRGBA(image.Rect(0, 0, 97, 61))
	for i := range src.Pix {
		src.Pix[i] = uint8(rng.IntN(256))
		if i%4 == 3 {
			src.Pix[i] = 255
		}
	}
	// Offset sub-image: the origin and stride are honoured.
	sub := image.NewRGBA(image.Rect(-3, -2, 100, 62))
	draw.Draw(sub, src.Rect, src, image.Point{}, draw.Src)
	sub = sub.SubImage(src.Rect).(*image.RGBA)
	for _, size := range [][2]int{{40, 32}, {150, 90}, {97, 61}, {33, 100}} {
		rw, rh := size[0], size[1]
		want := image.NewRGBA(image.Rect(0, 0, rw, rh))
		draw.BiLinear.Scale(want, want.Rect, src, src.Rect, draw.Src, nil)
		for _, img := range []*image.RGBA{src, sub} {
			out := make([]float32, 3*rw*rh)
			resizeBGR(img, rw, rh, [3]float32{1, 1, 1}, [3]float32{}, out)
			for y := range rh {
				for x := range rw {
					p := want.RGBAAt(x, y)
					for c, v := range []uint8{p.B, p.G, p.R} {
						require.InDelta(t, float32(v), out[(c*rh+y)*rw+x], 1.01, "%dx%d at (%d,%d) channel %d", rw, rh, x, y, c)
					}
				}
			}
		}
	}
}

func BenchmarkResize(b *testing.B) {
	img := uniform(1280, 720, color.RGBA{255, 255, 255, 255})
	out := make([]float32, 3*960*544)
	for b.Loop() {
		resizeBGR(img, 960, 544, [3]float32{1, 1, 1}, [3]float32{}, out)
	}
}
