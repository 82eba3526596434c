package pipeline

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// Unit tests of the pure parts, on hand-made inputs and a fake Runner.
// accel_test.go runs the real models.

func TestDetSize(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ w, h, max, rw, rh int }{
		{100, 50, 960, 96, 64},      // 3.125 → 3, 1.5625 → 2 (×32)
		{2000, 1000, 960, 960, 480}, // scaled down by 0.48
		{10, 10, 960, 32, 32},       // never below one stride
		{1000, 20, 960, 960, 32},    // 19.2 → 19 → 32
		{48, 80, 960, 64, 64},       // 1.5 and 2.5 round to even, as Python's round
		{960, 960, 960, 960, 960},
		{961, 100, 960, 960, 96},
		{4000, 3000, 320, 320, 256}, // 240 → 7.5 → 8 (×32)
	} {
		rw, rh := detSize(c.w, c.h, c.max)
		require.Equal(t, [2]int{c.rw, c.rh}, [2]int{rw, rh}, "%d×%d max %d", c.w, c.h, c.max)
	}
}

func TestClampSide(t *testing.T) {
	t.Parallel()
	require.Equal(t, 32, clampSide(1))
	require.Equal(t, 960, clampSide(960))
	require.Equal(t, 992, clampSide(1000))
	require.Equal(t, 4096, clampSide(1<<20))
	p := &Pipeline{cfg: Config{MaxSide: 960}}
	require.Equal(t, 640, p.WithMaxSide(650).cfg.MaxSide)
	require.Equal(t, 960, p.WithMaxSide(0).cfg.MaxSide)
	require.Equal(t, 960, p.cfg.MaxSide, "WithMaxSide changed its receiver")
}

func uniform(w, h int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

func TestDetInputNormalisesBGR(t *testing.T) {
	t.Parallel()
	want := [3]float32{
		(128.0/255 - 0.485) / 0.229, // B
		(0 - 0.456) / 0.224,         // G
		(1 - 0.406) / 0.225,         // R
	}
	for _, size := range []int{32, 64} { // 64 is resized to 32
		out := detInput(uniform(size, size, color.RGBA{255, 0, 128, 255}), 32, 32)
		require.Len(t, out, 3*32*32)
		for c := range 3 {
			for _, v := range out[c*1024 : (c+1)*1024] {
				require.InDelta(t, want[c], v, 1e-6, "channel %d", c)
			}
		}
	}
}

// TestFindBoxes runs the DB post-processing on a hand-made probability
// map: one text region, one too thin, one not confident enough.
func TestFindBoxes(t *testing.T) {
	t.Parallel()
	const w, h = 100, 60
	prob := make([]float32, w*h)
	fill := func(x0, y0, x1, y1 int, p float32) {
		for y := y0; y <= y1; y++ {
			for x := x0; x <= x1; x++ {
				prob[y*w+x] = p
			}
		}
	}
	fill(10, 10, 49, 19, 0.9) // text: 39×9 between pixel centres
	fill(90, 5, 91, 6, 0.9)   // 1×1: thinner than 3
	fill(60, 40, 80, 55, 0.4) // above the threshold, scores below 0.6
	prob[20*w+50] = 0.9       // joins the text region diagonally

	rects := findBoxes(prob, w, h, 0.3, 0.6, 1.5, 1000)
	require.Len(t, rects, 1)
	// The diagonal pixel tilts the minimum-area rectangle; without it:
	prob[20*w+50] = 0
	rects = findBoxes(prob, w, h, 0.3, 0.6, 1.5, 1000)
	require.Len(t, rects, 1)
	// Unclip: d = 39·9·1.5 / (2·(39+9)) = 5.484375 on every side.
	d := 39.0 * 9 * 1.5 / 96
	want := [4][2]float64{{10 - d, 10 - d}, {49 + d, 10 - d}, {49 + d, 19 + d}, {10 - d, 19 + d}}
	got := rects[0].corners()
	for i := range want {
		require.InDelta(t, want[i][0], got[i][0], 1e-9, "corner %d", i)
		require.InDelta(t, want[i][1], got[i][1], 1e-9, "corner %d", i)
	}

	require.Empty(t, findBoxes(prob, w, h, 0.95, 0.6, 1.5, 1000), "nothing above the threshold")
	fill(10, 30, 49, 39, 0.9)
	require.Len(t, findBoxes(prob, w, h, 0.3, 0.6, 1.5, 1000), 2)
	// MaxBoxes counts regions in raster order of their first pixel: the
	// thin one (row 5) comes first.
	require.Len(t, findBoxes(prob, w, h, 0.3, 0.6, 1.5, 2), 1, "MaxBoxes")
}

func TestMinAreaRectRotated(t *testing.T) {
	t.Parallel()
	// The corners of a 40×8 rectangle turned by 30°, and points inside.
	angle := math.Pi / 6
	ux, uy := math.Cos(angle), math.Sin(angle)
	var pts [][2]float64
	for _, s := range [][2]float64{{-20, -4}, {20, -4}, {20, 4}, {-20, 4}, {0, 0}, {5, 1}} {
		pts = append(pts, [2]float64{50 + s[0]*ux - s[1]*uy, 30 + s[0]*uy + s[1]*ux})
	}
	hull := convexHull(pts)
	require.Len(t, hull, 4)
	r := minAreaRect(hull)
	require.InDelta(t, 50, r.cx, 1e-9)
	require.InDelta(t, 30, r.cy, 1e-9)
	require.InDelta(t, 4, min(r.hw, r.hh), 1e-9)
	require.InDelta(t, 20, max(r.hw, r.hh), 1e-9)
	long := [2]float64{r.ux, r.uy}
	if r.hh > r.hw {
		long = [2]float64{-r.uy, r.ux}
	}
	require.InDelta(t, 1, math.Abs(long[0]*ux+long[1]*uy), 1e-9, "the long side is along 30°")

	require.Equal(t, rect{ux: 1}, minAreaRect(nil))
	require.Equal(t, rect{cx: 3, cy: 4, ux: 1}, minAreaRect([][2]float64{{3, 4}}))
	line := minAreaRect(convexHull([][2]float64{{0, 0}, {5, 0}, {10, 0}}))
	require.InDelta(t, 0, line.short(), 1e-9)
}

func TestCornersOrder(t *testing.T) {
	t.Parallel()
	// The same axis-aligned rectangle described along either side.
	for _, r := range []rect{
		{cx: 10, cy: 5, ux: 1, hw: 4, hh: 2},
		{cx: 10, cy: 5, uy: -1, hw: 2, hh: 4},
	} {
		require.Equal(t, [4][2]float64{{6, 3}, {14, 3}, {14, 7}, {6, 7}}, r.corners())
	}
}

func TestToImage(t *testing.T) {
	t.Parallel()
	r := rect{cx: 16, cy: 8, ux: 1, hw: 8, hh: 4}
	b, ok := r.toImage(2, 0.5, 40, 10)
	require.True(t, ok)
	require.Equal(t, Box{{16, 2}, {39, 2}, {39, 6}, {16, 6}}, b, "scaled, then clipped to the 40×10 image")
	_, ok = r.toImage(0.2, 0.2, 40, 10)
	require.False(t, ok, "3×2 pixels is too small to read")
}

func TestSortBoxes(t *testing.T) {
	t.Parallel()
	box := func(x, y, w, h int) Box { return Box{{x, y}, {x + w, y}, {x + w, y + h}, {x, y + h}} }
	b1 := box(300, 100, 80, 30) // second row, right
	b2 := box(50, 10, 200, 30)  // first row, left
	b3 := box(20, 108, 200, 30) // second row, left, a little lower than b1
	b4 := box(400, 14, 80, 30)  // first row, right
	b5 := box(20, 160, 50, 30)  // third row
	got := sortBoxes([]Box{b1, b2, b3, b4, b5})
	require.Equal(t, []detBox{{b2, 0}, {b4, 0}, {b3, 1}, {b1, 1}, {b5, 2}}, got)
}

func TestCTCDecode(t *testing.T) {
	t.Parallel()
	labels := []string{"", "a", "b", " "}
	step := func(class int, p float32) []float32 {
		row := make([]float32, 4)
		for i := range row {
			row[i] = (1 - p) / 3
		}
		row[class] = p
		return row
	}
	var probs []float32
	for _, s := range []struct {
		class int
		p     float32
	}{{1, 0.9}, {1, 0.8}, {0, 0.9}, {1, 0.7}, {2, 0.6}, {2, 0.9}, {0, 0.5}, {3, 0.5}, {2, 0.8}} {
		probs = append(probs, step(s.class, s.p)...)
	}
	// a a (merged) · blank · a (kept: a blank separates) · b b (merged) · blank · space · b
	text, conf := ctcDecode(probs, 9, 4, labels)
	require.Equal(t, "aab b", text)
	require.InDelta(t, (0.9+0.7+0.6+0.5+0.8)/5, conf, 1e-6)

	text, conf = ctcDecode(append(step(0, 0.9), step(0, 0.8)...), 2, 4, labels)
	require.Equal(t, "", text)
	require.Zero(t, conf)
}

func TestParseDictionary(t *testing.T) {
	t.Parallel()
	dict, err := ParseDictionary([]byte("a\r\nb\n中\n"))
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "中"}, dict)
	dict, err = ParseDictionary([]byte("x\ny"))
	require.NoError(t, err)
	require.Equal(t, []string{"x", "y"}, dict)
	for in, msg := range map[string]string{
		"":          "ocr: the dictionary is empty",
		"a\n\nb\n":  "ocr: dictionary line 2 is empty",
		"a\n\xff\n": "ocr: the dictionary is not UTF-8",
	} {
		_, err := ParseDictionary([]byte(in))
		require.EqualError(t, err, msg)
	}
}

func TestLabelsFor(t *testing.T) {
	t.Parallel()
	l, err := labelsFor([]string{"a", "b"}, 4)
	require.NoError(t, err)
	require.Equal(t, []string{"", "a", "b", " "}, l)
	l, err = labelsFor([]string{"a", "b"}, 3)
	require.NoError(t, err)
	require.Equal(t, []string{"", "a", "b"}, l)
	_, err = labelsFor([]string{"a", "b"}, 6625)
	require.EqualError(t, err, "it has 6625 classes, but the dictionary has 2 entries (want 4: blank + dictionary + space): is it the dictionary of this model?")
}

func TestNewCrop(t *testing.T) {
	t.Parallel()
	c := newCrop(Box{{0, 0}, {100, 0}, {100, 20}, {0, 20}}, 0)
	require.Equal(t, crop{corners: [4][2]float64{{0, 0}, {100, 0}, {100, 20}, {0, 20}}, w: 100, h: 20}, c)
	// Padding: 0.2 × 20 = 4 pixels on every side.
	c = newCrop(Box{{0, 0}, {100, 0}, {100, 20}, {0, 20}}, 0.2)
	require.Equal(t, crop{corners: [4][2]float64{{-4, -4}, {104, -4}, {104, 24}, {-4, 24}}, w: 108, h: 28}, c)
	// Vertical text turns a quarter counter-clockwise: the top-right
	// corner becomes the top-left.
	c = newCrop(Box{{0, 0}, {20, 0}, {20, 100}, {0, 100}}, 0)
	require.Equal(t, crop{corners: [4][2]float64{{20, 0}, {20, 100}, {0, 100}, {0, 0}}, w: 100, h: 20}, c)
}

func TestRecWidths(t *testing.T) {
	t.Parallel()
	width, widths := recWidths([]crop{{w: 100, h: 50}, {w: 500, h: 50}}, 48, 320, 1280)
	require.Equal(t, 480, width)
	require.Equal(t, []int{96, 480}, widths)
	width, widths = recWidths([]crop{{w: 60, h: 30}}, 48, 320, 1280)
	require.Equal(t, 320, width, "at least the training width")
	require.Equal(t, []int{96}, widths)
	width, widths = recWidths([]crop{{w: 4000, h: 100}}, 48, 320, 1280)
	require.Equal(t, 1280, width, "at most RecMaxWidth: squeezed")
	require.Equal(t, []int{1280}, widths)
}

func TestRecInput(t *testing.T) {
	t.Parallel()
	// Left half black, right half white: the crop must not be mirrored,
	// and the padding after the crop's width is 0.
	img := uniform(100, 50, color.RGBA{255, 255, 255, 255})
	for y := range 50 {
		for x := range 50 {
			img.SetRGBA(x, y, color.RGBA{0, 0, 0, 255})
		}
	}
	const rw, h, width = 40, 48, 64
	out := make([]float32, 3*h*width)
	recInput(img, newCrop(Box{{0, 0}, {99, 0}, {99, 49}, {0, 49}}, 0), rw, h, width, out)
	for c := range 3 {
		for y := range h {
			row := out[(c*h+y)*width:][:width]
			require.Equal(t, float32(-1), row[0])
			require.Equal(t, float32(1), row[rw-1])
			for x := rw; x < width; x++ {
				require.Zero(t, row[x])
			}
		}
	}
	// Top half black, bottom white, read as vertical text: turned a
	// quarter counter-clockwise, the top is on the left.
	img = uniform(20, 100, color.RGBA{255, 255, 255, 255})
	for y := range 50 {
		for x := range 20 {
			img.SetRGBA(x, y, color.RGBA{0, 0, 0, 255})
		}
	}
	c := newCrop(Box{{0, 0}, {19, 0}, {19, 99}, {0, 99}}, 0)
	out = make([]float32, 3*h*width)
	recInput(img, c, width, h, width, out)
	require.Equal(t, float32(-1), out[h/2*width])
	require.Equal(t, float32(1), out[h/2*width+width-1])
}

// pngHeader is a PNG signature and IHDR chunk for a w×h RGB image, with no
// pixel data: what a decompression bomb shows before its data.
func pngHeader(w, h uint32) []byte {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8 bits, RGB
	binary.Write(&buf, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr...)
	buf.Write(chunk)
	binary.Write(&buf, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return buf.Bytes()
}

func encode(t testing.TB, img image.Image, format string) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, nil)
	case "gif":
		err = gif.Encode(&buf, img, nil)
	}
	require.NoError(t, err)
	return buf.Bytes()
}

func TestDecodeImage(t *testing.T) {
	t.Parallel()
	// A transparent PNG is read over white.
	nrgba := image.NewNRGBA(image.Rect(5, 5, 25, 15))
	nrgba.SetNRGBA(6, 6, color.NRGBA{0, 0, 0, 255})
	img, err := DecodeImage(encode(t, nrgba, "png"), 1000)
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 20, 10), img.Rect)
	require.Equal(t, color.RGBA{255, 255, 255, 255}, img.RGBAAt(0, 0))
	require.Equal(t, color.RGBA{0, 0, 0, 255}, img.RGBAAt(1, 1))

	gray := image.NewGray(image.Rect(0, 0, 16, 8))
	gray.SetGray(3, 2, color.Gray{Y: 100})
	img, err = DecodeImage(encode(t, gray, "jpeg"), 1000)
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 16, 8), img.Rect)

	_, err = DecodeImage(encode(t, gray, "gif"), 1000)
	require.EqualError(t, err, "ocr: images in gif are not supported; use PNG or JPEG")
	_, err = DecodeImage([]byte("not an image"), 1000)
	require.EqualError(t, err, "ocr: reading the image: image: unknown format (PNG and JPEG are supported)")
	_, err = DecodeImage(encode(t, gray, "png"), 127)
	require.ErrorIs(t, err, ErrTooManyPixels)
	require.EqualError(t, err, "ocr: the image is too large: 16×8 is more than 127 pixels; scale it down first")
}

// TestDecompressionBomb: a 50-byte file that claims 100,000 × 100,000
// pixels (30 GB of RGB) is refused from its header.
func TestDecompressionBomb(t *testing.T) {
	t.Parallel()
	bomb := pngHeader(100_000, 100_000)
	require.Less(t, len(bomb), 50)
	_, err := DecodeImage(bomb, 16<<20)
	require.ErrorIs(t, err, ErrTooManyPixels)
	require.EqualError(t, err, "ocr: the image is too large: 100000×100000 is more than 16777216 pixels; scale it down first")
	// Within the limit, the same header fails for its missing data.
	_, err = DecodeImage(pngHeader(10, 10), 16<<20)
	require.ErrorContains(t, err, "ocr: decoding the png image")
}

func FuzzDecodeImage(f *testing.F) {
	gray := image.NewGray(image.Rect(0, 0, 16, 8))
	f.Add(encode(f, gray, "png"))
	f.Add(encode(f, gray, "jpeg"))
	f.Add(encode(f, image.NewNRGBA(image.Rect(0, 0, 3, 3)), "png"))
	f.Add(encode(f, image.NewPaletted(image.Rect(0, 0, 4, 4), color.Palette{color.Black, color.White}), "png"))
	f.Add(pngHeader(100_000, 100_000))
	f.Add(pngHeader(10, 10))
	f.Add([]byte("\xff\xd8\xff"))
	const maxPixels = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := DecodeImage(data, maxPixels)
		if err != nil {
			return
		}
		b := img.Rect
		if b.Min != (image.Point{}) || b.Dx() <= 0 || b.Dy() <= 0 || b.Dx()*b.Dy() > maxPixels || len(img.Pix) != 4*b.Dx()*b.Dy() {
			t.Fatalf("decoded %v with %d bytes", b, len(img.Pix))
		}
	})
}

// FuzzFindBoxes runs the post-processing on arbitrary probability maps:
// boxes must lie in the image and be finite.
func FuzzFindBoxes(f *testing.F) {
	f.Add([]byte{10, 6, 0, 0, 255, 255, 255, 0, 255, 255, 255, 0, 255, 255, 255})
	f.Add(bytes.Repeat([]byte{200}, 100))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 2 {
			return
		}
		w, h := 1+int(data[0])%64, 1+int(data[1])%64
		prob := make([]float32, w*h)
		for i := range prob {
			if 2+i < len(data) {
				prob[i] = float32(data[2+i]) / 255
			}
		}
		for _, r := range findBoxes(prob, w, h, 0.3, 0.6, 1.5, 1000) {
			b, ok := r.toImage(3, 2, 3*w, 2*h)
			for _, c := range r.corners() {
				if math.IsNaN(c[0]) || math.IsNaN(c[1]) || math.IsInf(c[0], 0) || math.IsInf(c[1], 0) {
					t.Fatalf("corner %v", c)
				}
			}
			for _, p := range b {
				if ok && (p[0] < 0 || p[1] < 0 || p[0] >= 3*w || p[1] >= 2*h) {
					t.Fatalf("box %v outside %d×%d", b, 3*w, 2*h)
				}
			}
		}
	})
}

// fakeRunner answers the detector with a probability map from detMap and
// the recogniser with the same decoded text for every line.
type fakeRunner struct {
	detMap func(w, h int) []float32
	// rec is one line's [steps, classes] probabilities.
	rec            []float32
	steps, classes int
	calls          []Tensor // the inputs seen, in order
	err            error
	dtype          string
	md             map[string]ModelInfo
}

func (f *fakeRunner) Run(ctx context.Context, model string, inputs []Tensor) ([]Tensor, error) {
	if f.err != nil {
		return nil, f.err
	}
	in := inputs[0]
	f.calls = append(f.calls, Tensor{Name: in.Name, Shape: in.Shape, DType: in.DType})
	switch model {
	case "ppocr_det":
		h, w := int(in.Shape[2]), int(in.Shape[3])
		return []Tensor{{Name: "out", Shape: []int64{1, 1, int64(h), int64(w)}, DType: f.dtype, Data: f.detMap(w, h)}}, nil
	case "ppocr_rec":
		n := int(in.Shape[0])
		var data []float32
		for range n {
			data = append(data, f.rec...)
		}
		return []Tensor{{Name: "out", Shape: []int64{int64(n), int64(f.steps), int64(f.classes)}, Data: data}}, nil
	}
	return nil, errors.New("no such model")
}

// metaRunner is a fakeRunner that describes its models.
type metaRunner struct{ *fakeRunner }

func (m metaRunner) Metadata(ctx context.Context, model string) (ModelInfo, error) {
	info, ok := m.md[model]
	if !ok {
		return ModelInfo{}, errors.New("no such model")
	}
	return info, nil
}

// hiLine decodes to "hi" with confidence conf over classes blank, h, i,
// space.
func hiLine(conf float32) []float32 {
	other := (1 - conf) / 3
	row := func(c int) []float32 {
		r := []float32{other, other, other, other}
		r[c] = conf
		return r
	}
	var out []float32
	for _, c := range []int{0, 1, 1, 0, 2, 0} {
		out = append(out, row(c)...)
	}
	return out
}

func regions(rects ...image.Rectangle) func(w, h int) []float32 {
	return func(w, h int) []float32 {
		m := make([]float32, w*h)
		for _, r := range rects {
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					m[y*w+x] = 0.9
				}
			}
		}
		return m
	}
}

func TestPipelineWithFakeModels(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := &fakeRunner{
		// On the 192×96 detection input of a 200×100 image: two regions
		// side by side and one below.
		detMap:  regions(image.Rect(40, 30, 120, 50), image.Rect(140, 30, 180, 50), image.Rect(40, 70, 120, 85)),
		rec:     hiLine(0.9),
		steps:   6,
		classes: 4,
	}
	p, err := New(ctx, f, Config{Dictionary: []string{"h", "i"}, RecBatch: 2})
	require.NoError(t, err)
	res, err := p.RecognizeImage(ctx, uniform(200, 100, color.RGBA{255, 255, 255, 255}))
	require.NoError(t, err)
	require.Equal(t, "hi hi\nhi", res.Text)
	require.Len(t, res.Lines, 3)
	// The first region: 79×19 between pixel centres, unclipped by
	// 79·19·1.5/(2·98) ≈ 11.49 a side, scaled by 200/192 and rounded.
	require.Equal(t, Line{Text: "hi", Confidence: 0.9, Box: Box{{30, 19}, {136, 19}, {136, 63}, {30, 63}}}, roundConf(res.Lines[0]))
	require.Equal(t, []Tensor{
		{Name: "x", Shape: []int64{1, 3, 96, 192}, DType: FP32},
		{Name: "x", Shape: []int64{2, 3, 48, 320}, DType: FP32},
		{Name: "x", Shape: []int64{1, 3, 48, 320}, DType: FP32},
	}, f.calls)

	// Lines read with too little confidence are dropped.
	f.rec = hiLine(0.4)
	res, err = p.RecognizeImage(ctx, uniform(200, 100, color.RGBA{255, 255, 255, 255}))
	require.NoError(t, err)
	require.Equal(t, &Result{Text: "", Lines: []Line{}}, res)
}

func roundConf(l Line) Line {
	l.Confidence = math.Round(l.Confidence*1e6) / 1e6
	return l
}

func TestPipelineErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	white := uniform(64, 64, color.RGBA{255, 255, 255, 255})
	dict := []string{"h", "i"}
	newFake := func() *fakeRunner {
		return &fakeRunner{detMap: regions(image.Rect(4, 20, 60, 40)), rec: hiLine(0.9), steps: 6, classes: 4}
	}

	_, err := New(ctx, nil, Config{Dictionary: dict})
	require.EqualError(t, err, "ocr: a Runner is required")
	_, err = New(ctx, newFake(), Config{})
	require.ErrorContains(t, err, "ocr: Config.Dictionary is required")

	read := func(f *fakeRunner, cfg Config) error {
		cfg.Dictionary = dict
		p, err := New(ctx, f, cfg)
		require.NoError(t, err)
		_, err = p.RecognizeImage(ctx, white)
		return err
	}
	f := newFake()
	f.err = errors.New("accel is down")
	require.EqualError(t, read(f, Config{}), `ocr: running the detection model "ppocr_det": accel is down`)
	f = newFake()
	f.dtype = "FP16"
	require.EqualError(t, read(f, Config{}), `ocr: model "ppocr_det": output "out" is FP16, not FP32`)
	f = newFake()
	f.detMap = func(w, h int) []float32 { return make([]float32, w*h-1) }
	require.EqualError(t, read(f, Config{}), `ocr: model "ppocr_det": output "out" has 4095 values for shape [1 1 64 64]`)
	require.EqualError(t, read(newFake(), Config{DetOutput: "maps"}), `ocr: model "ppocr_det" returned no output "maps"`)
	f = newFake()
	f.classes, f.rec = 5, make([]float32, 30)
	require.EqualError(t, read(f, Config{}), `ocr: recognition model "ppocr_rec": it has 5 classes, but the dictionary has 2 entries (want 4: blank + dictionary + space): is it the dictionary of this model?`)

	p, err := New(ctx, newFake(), Config{Dictionary: dict, MaxPixels: 100})
	require.NoError(t, err)
	_, err = p.RecognizeImage(ctx, white)
	require.ErrorIs(t, err, ErrTooManyPixels)
	_, err = p.RecognizeImage(ctx, image.NewRGBA(image.Rectangle{}))
	require.EqualError(t, err, "ocr: the image is empty")
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	good := func() map[string]ModelInfo {
		return map[string]ModelInfo{
			"ppocr_det": {
				Inputs:  []TensorInfo{{Name: "image", DType: FP32, Shape: []int64{-1, 3, -1, -1}}},
				Outputs: []TensorInfo{{Name: "maps", DType: FP32, Shape: []int64{-1, 1, -1, -1}}},
			},
			"ppocr_rec": {
				Inputs:  []TensorInfo{{Name: "crops", DType: FP32, Shape: []int64{-1, 3, 32, -1}}},
				Outputs: []TensorInfo{{Name: "logits", DType: FP32, Shape: []int64{-1, -1, 4}}},
			},
		}
	}
	f := &fakeRunner{detMap: regions(image.Rect(4, 20, 60, 40)), rec: hiLine(0.9), steps: 6, classes: 4, md: good()}
	p, err := New(ctx, metaRunner{f}, Config{Dictionary: []string{"h", "i"}})
	require.NoError(t, err)
	require.Equal(t, []string{"", "h", "i", " "}, p.labels)
	_, err = p.RecognizeImage(ctx, uniform(64, 64, color.RGBA{255, 255, 255, 255}))
	// The fake names its outputs "out", not the "maps" its metadata
	// promised: the names read from the metadata are the ones used.
	require.EqualError(t, err, `ocr: model "ppocr_det" returned no output "maps"`)
	require.Equal(t, []Tensor{{Name: "image", Shape: []int64{1, 3, 64, 64}, DType: FP32}}, f.calls)

	for _, c := range []struct {
		edit func(map[string]ModelInfo)
		err  string
	}{
		{func(m map[string]ModelInfo) { delete(m, "ppocr_det") }, `ocr: reading the detection model "ppocr_det": no such model`},
		{func(m map[string]ModelInfo) { m["ppocr_det"].Inputs[0].Shape[1] = 1 },
			`ocr: detection model "ppocr_det": input "image" has shape [-1 1 -1 -1], not [N,3,H,W]`},
		{func(m map[string]ModelInfo) { m["ppocr_det"].Outputs[0].Shape[1] = 2 },
			`ocr: detection model "ppocr_det": output "maps" has 2 channels, not 1: is it a DB text detector?`},
		{func(m map[string]ModelInfo) { m["ppocr_rec"].Inputs[0].DType = "FP16" },
			`ocr: recognition model "ppocr_rec": tensor "crops" is FP16, not FP32`},
		{func(m map[string]ModelInfo) { m["ppocr_rec"].Outputs[0].Shape = []int64{-1, 4} },
			`ocr: recognition model "ppocr_rec": output "logits" has shape [-1 4], not of rank 3`},
		{func(m map[string]ModelInfo) { m["ppocr_rec"].Outputs[0].Shape[2] = 9 },
			`ocr: recognition model "ppocr_rec": it has 9 classes, but the dictionary has 2 entries (want 4: blank + dictionary + space): is it the dictionary of this model?`},
		{func(m map[string]ModelInfo) {
			info := m["ppocr_rec"]
			info.Inputs = append(info.Inputs, info.Inputs[0])
			m["ppocr_rec"] = info
		}, `ocr: recognition model "ppocr_rec": has 2 inputs and 1 outputs; PP-OCR models have one image input`},
	} {
		md := good()
		c.edit(md)
		_, err := New(ctx, metaRunner{&fakeRunner{md: md}}, Config{Dictionary: []string{"h", "i"}})
		require.EqualError(t, err, c.err)
	}

	// The recognition height comes from the metadata.
	md := good()
	md["ppocr_det"].Outputs[0].Name = "out"
	f = &fakeRunner{detMap: regions(image.Rect(4, 20, 60, 40)), rec: hiLine(0.9), steps: 6, classes: 4, md: md}
	md["ppocr_rec"].Outputs[0].Name = "out"
	p, err = New(ctx, metaRunner{f}, Config{Dictionary: []string{"h", "i"}})
	require.NoError(t, err)
	res, err := p.RecognizeImage(ctx, uniform(64, 64, color.RGBA{255, 255, 255, 255}))
	require.NoError(t, err)
	require.Equal(t, "hi", res.Text)
	require.Equal(t, []int64{1, 3, 32, 320}, f.calls[1].Shape)
	require.Equal(t, "crops", f.calls[1].Name)
}

// BenchmarkPrePost measures everything but the models on a 1280×720
// image with ten detected lines: the detection input, the box extraction
// and the recognition inputs and decoding. It runs natively and under
// GOOS=wasip1 (make test-ocr), which tells what the module costs in
// WebAssembly beyond the model calls.

// BenchmarkPrePost measures everything but the models on a 1280×720
// image with ten detected lines: the detection input, the box extraction,
// the recognition inputs and the decoding. The model outputs are made
// once, so the fake costs nothing per call. It runs natively and under
// GOOS=wasip1 (make test-ocr), which tells what the module spends in
// WebAssembly around the model calls.
func BenchmarkPrePost(b *testing.B) {
	var rects []image.Rectangle
	for i := range 10 {
		rects = append(rects, image.Rect(40, 20+50*i, 40+60*(i+1), 36+50*i))
	}
	dict := make([]string, 6623)
	for i := range dict {
		dict[i] = string(rune(0x4e00 + i))
	}
	const steps, classes = 160, 6625
	line := make([]float32, steps*classes)
	for s := range steps {
		line[s*classes+s%7] = 1
	}
	r := &benchRunner{det: regions(rects...)(960, 544), line: line, steps: steps, classes: classes}
	p, err := New(context.Background(), r, Config{Dictionary: dict})
	require.NoError(b, err)
	img := uniform(1280, 720, color.RGBA{255, 255, 255, 255})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.RecognizeImage(context.Background(), img); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRunner answers with outputs made once: det is the probability map
// and line one line's recognition output, repeated for each line.
type benchRunner struct {
	det, line      []float32
	steps, classes int
	batch          []float32
}

func (r *benchRunner) Run(ctx context.Context, model string, inputs []Tensor) ([]Tensor, error) {
	if model == "ppocr_det" {
		return []Tensor{{Shape: []int64{1, 1, 544, 960}, Data: r.det}}, nil
	}
	n := int(inputs[0].Shape[0])
	for len(r.batch) < n*len(r.line) {
		r.batch = append(r.batch, r.line...)
	}
	return []Tensor{{Shape: []int64{int64(n), int64(r.steps), int64(r.classes)}, Data: r.batch[:n*len(r.line)]}}, nil
}
