package pipeline

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFloat16(t *testing.T) {
	t.Parallel()
	for f, h := range map[float32]uint16{
		0: 0x0000, 1: 0x3c00, -2: 0xc000, 0.5: 0x3800, 65504: 0x7bff, 1e6: 0x7c00, -1e6: 0xfc00,
		float32(math.Inf(1)): 0x7c00, 5.960464477539063e-08: 0x0001, 6.103515625e-05: 0x0400,
		1.0009765625: 0x3c01, 1.00048828125: 0x3c00, // a tie rounds to even
		1.00146484375:  0x3c02, // a tie rounds to even (up)
		0.333251953125: 0x3555,
	} {
		require.Equal(t, h, Float16(f), "%v", f)
		if !math.IsInf(float64(f), 0) && math.Abs(float64(f)) <= 65504 && f != 1.00048828125 && f != 1.00146484375 {
			require.Equal(t, f, Float32(h), "%#04x", h)
		}
	}
	require.True(t, math.IsNaN(float64(Float32(Float16(float32(math.NaN()))))))
	// Every half value survives a round trip through float32.
	for h := range uint16(0xffff) {
		if h&0x7c00 == 0x7c00 && h&0x3ff != 0 {
			continue // NaNs
		}
		require.Equal(t, h, Float16(Float32(h)), "%#04x", h)
	}
}

func TestPNGText(t *testing.T) {
	t.Parallel()
	img := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	img.SetNRGBA(1, 1, color.NRGBA{200, 10, 30, 255})
	for _, text := range []string{"a cat\nSteps: 4, Seed: 1", "café", "猫の写真"} {
		b, err := EncodePNG(img, "parameters", text)
		require.NoError(t, err)
		got, err := png.Decode(bytes.NewReader(b))
		require.NoError(t, err, "the chunk keeps the PNG valid (CRC, order)")
		require.Equal(t, color.NRGBAModel.Convert(img.At(1, 1)), color.NRGBAModel.Convert(got.At(1, 1)))
		s, ok := PNGText(b, "parameters")
		require.True(t, ok)
		require.Equal(t, text, s)
		again, _ := EncodePNG(img, "parameters", text)
		require.Equal(t, b, again, "deterministic")
	}
	b, _ := EncodePNG(img, "parameters", "猫")
	require.Contains(t, string(b), "iTXtparameters", "non-Latin-1 text goes in iTXt")
}

func TestPreview(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ w, h, pw, ph int }{{8, 8, 8, 8}, {32, 32, 32, 32}, {64, 64, 32, 32}, {128, 96, 32, 24}, {130, 64, 26, 13}} {
		lat := make([]float32, 4*c.w*c.h)
		for i := range lat {
			lat[i] = float32(i%7) - 3
		}
		b, err := Preview(lat, c.w, c.h)
		require.NoError(t, err)
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		require.NoError(t, err)
		require.Equal(t, []int{c.pw, c.ph}, []int{cfg.Width, cfg.Height}, "%dx%d", c.w, c.h)
		require.Less(t, len(b), 64<<10)
	}
}

func TestPenultimate(t *testing.T) {
	t.Parallel()
	var outs []TensorInfo
	for _, n := range []string{"last_hidden_state", "pooler_output", "hidden_states.0", "hidden_states.1", "hidden_states.2", "hidden_states.10", "hidden_states.11", "hidden_states.12"} {
		outs = append(outs, TensorInfo{Name: n})
	}
	got, err := penultimate(outs)
	require.NoError(t, err)
	require.Equal(t, "hidden_states.11", got, "numerically, not as strings")
	_, err = penultimate(outs[:2])
	require.ErrorContains(t, err, "no hidden_states.N outputs")
	_, err = penultimate(append(outs[:2:2], TensorInfo{Name: "hidden_states.0"}, TensorInfo{Name: "hidden_states.5"}))
	require.ErrorContains(t, err, "not hidden_states.4")
}

func TestDecodeInit(t *testing.T) {
	t.Parallel()
	img := image.NewNRGBA(image.Rect(0, 0, 2, 2))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	px, err := DecodeInit(buf.Bytes(), 2, 2)
	require.NoError(t, err)
	require.Equal(t, []float32{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, px)
	px, err = DecodeInit(buf.Bytes(), 8, 16)
	require.NoError(t, err)
	require.Len(t, px, 3*8*16)
	_, err = DecodeInit([]byte("not an image"), 8, 8)
	require.ErrorContains(t, err, "init_image")
}

func TestFloatTensorRoundTrip(t *testing.T) {
	t.Parallel()
	v := []float32{1, -2.5, 3e-8, float32(math.Inf(-1))}
	for _, typ := range []string{"f32", "f16"} {
		tn, err := floatTensor(typ, []int64{2, 2}, v)
		require.NoError(t, err)
		got, err := Floats(tn)
		require.NoError(t, err)
		if typ == "f32" {
			require.Equal(t, []byte{0, 0, 0x80, 0x3f}, tn.Data[:4], "little-endian")
			require.Equal(t, v, got)
		} else {
			require.Equal(t, []float32{1, -2.5, Float32(Float16(3e-8)), float32(math.Inf(-1))}, got)
		}
	}
	_, err := floatTensor("f32", []int64{3}, v)
	require.Error(t, err)
	_, err = Floats(Tensor{Type: "f32", Shape: []int64{2}, Data: []byte{1, 2, 3}})
	require.Error(t, err)
}

// FuzzDecodeInit: init_image is whatever a workflow passes.
func FuzzDecodeInit(f *testing.F) {
	img := image.NewNRGBA(image.Rect(0, 0, 3, 5))
	var buf bytes.Buffer
	png.Encode(&buf, img)
	f.Add(buf.Bytes())
	f.Add([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x7f\xff\xff\xff\x7f\xff\xff\xff\x08\x06\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		px, err := DecodeInit(data, 16, 8)
		if err == nil && len(px) != 3*16*8 {
			t.Fatalf("%d values for 16×8", len(px))
		}
		for _, v := range px {
			if v < -1 || v > 1 {
				t.Fatalf("value %v outside [-1, 1]", v)
			}
		}
	})
}
