package pipeline

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"math"
	"sync"
	"unicode/utf8"

	"golang.org/x/image/draw"

	// Decoders for init images.
	_ "image/jpeg"
)

// EncodePNG encodes img as a PNG carrying text under keyword in a text
// chunk just after IHDR: tEXt when text is Latin-1 (what most readers of
// the Stable Diffusion "parameters" convention expect), iTXt (UTF-8)
// otherwise. Go's encoder is deterministic, so the same pixels and text
// give the same bytes.
func EncodePNG(img image.Image, keyword, text string) ([]byte, error) {
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(&buf, img); err != nil {
		return nil, err
	}
	out := buf.Bytes()
	// The signature (8 bytes) and IHDR (4+4+13+4 bytes) come first.
	const afterIHDR = 8 + 25
	if len(out) < afterIHDR || string(out[12:16]) != "IHDR" {
		return nil, errors.New("png: unexpected encoder output")
	}
	chunk := textChunk(keyword, text)
	res := make([]byte, 0, len(out)+len(chunk))
	res = append(res, out[:afterIHDR]...)
	res = append(res, chunk...)
	return append(res, out[afterIHDR:]...), nil
}

// textChunk is a whole tEXt or iTXt chunk: length, type, data, CRC.
func textChunk(keyword, text string) []byte {
	typ, data := "tEXt", []byte(keyword+"\x00")
	if latin1, ok := toLatin1(text); ok {
		data = append(data, latin1...)
	} else {
		// iTXt: keyword\0, compression flag 0, method 0, no language
		// tag\0, no translated keyword\0, UTF-8 text.
		typ = "iTXt"
		data = append(data, 0, 0, 0, 0)
		data = append(data, text...)
	}
	c := make([]byte, 0, 12+len(data))
	c = binary.BigEndian.AppendUint32(c, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	crc := crc32.NewIEEE()
	crc.Write(c[4:])
	return binary.BigEndian.AppendUint32(c, crc.Sum32())
}

func toLatin1(s string) ([]byte, bool) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff || r == 0 || r == utf8.RuneError {
			return nil, false
		}
		out = append(out, byte(r))
	}
	return out, true
}

// PNGText returns the text of the first tEXt or iTXt chunk under keyword,
// for tests and for people checking an image's parameters.
func PNGText(data []byte, keyword string) (string, bool) {
	if len(data) < 8 {
		return "", false
	}
	data = data[8:]
	for len(data) >= 12 {
		n := binary.BigEndian.Uint32(data)
		if uint64(n)+12 > uint64(len(data)) {
			return "", false
		}
		typ, body := string(data[4:8]), data[8:8+n]
		data = data[12+n:]
		k, rest, ok := bytes.Cut(body, []byte{0})
		if !ok || string(k) != keyword {
			continue
		}
		switch typ {
		case "tEXt":
			r := make([]rune, len(rest))
			for i, b := range rest {
				r[i] = rune(b)
			}
			return string(r), true
		case "iTXt":
			if len(rest) < 2 {
				return "", false
			}
			// compression flag, method, language\0, translated\0
			parts := bytes.SplitN(rest[2:], []byte{0}, 3)
			if len(parts) != 3 {
				return "", false
			}
			return string(parts[2]), true
		}
	}
	return "", false
}

// pixels turns the VAE decoder's output [1,3,H,W], roughly in [-1, 1],
// into an image: clamp(x/2+0.5, 0, 1)·255, rounded, as diffusers'
// image processor does.
func pixels(sample []float32, w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	plane := w * h
	for y := range h {
		for x := range w {
			i := y*w + x
			o := img.PixOffset(x, y)
			for c := range 3 {
				v := float64(sample[c*plane+i])/2 + 0.5
				img.Pix[o+c] = uint8(math.Round(min(max(v, 0), 1) * 255))
			}
			img.Pix[o+3] = 255
		}
	}
	return img
}

// latentRGB is the linear approximation of SDXL's VAE decoder that
// previews use (the factors ComfyUI and others publish for SDXL latents):
// RGB = latent · factors + bias, in [-1, 1].
var (
	latentRGB = [4][3]float32{
		{0.3651, 0.4232, 0.4341},
		{-0.2533, -0.0042, 0.1068},
		{0.1076, 0.1111, -0.0362},
		{-0.3165, -0.2492, -0.2188},
	}
	latentRGBBias = [3]float32{0.1084, -0.0175, -0.0011}
)

// MaxPreviewSide bounds the preview's longer side, in pixels.
const MaxPreviewSide = 32

// Preview is a small PNG of latents [1,4,h,w] (unscaled, as the UNet sees
// them): the linear latent→RGB approximation, one pixel per latent (an
// eighth of the image's size), shrunk by whole factors to at most
// MaxPreviewSide a side. It costs microseconds, not a VAE decode.
func Preview(latents []float32, w, h int) ([]byte, error) {
	step := 1
	for (w+step-1)/step > MaxPreviewSide || (h+step-1)/step > MaxPreviewSide {
		step++
	}
	pw, ph := (w+step-1)/step, (h+step-1)/step
	img := image.NewNRGBA(image.Rect(0, 0, pw, ph))
	plane := w * h
	for py := range ph {
		for px := range pw {
			var rgb [3]float32
			// Average the latents the preview pixel covers.
			n := 0
			for y := py * step; y < min((py+1)*step, h); y++ {
				for x := px * step; x < min((px+1)*step, w); x++ {
					for c := range 4 {
						v := latents[c*plane+y*w+x]
						for k := range 3 {
							rgb[k] += v * latentRGB[c][k]
						}
					}
					n++
				}
			}
			o := img.PixOffset(px, py)
			for k := range 3 {
				v := (rgb[k]/float32(n) + latentRGBBias[k] + 1) / 2
				img.Pix[o+k] = uint8(min(max(v, 0), 1)*255 + 0.5)
			}
			img.Pix[o+3] = 255
		}
	}
	var buf bytes.Buffer
	if err := previewEncoder.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// previewEncoder keeps its compressor between previews: a new one costs
// more than the small image it compresses.
var previewEncoder = &png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &onePool{}}

// onePool is a png.EncoderBufferPool of one buffer (the module is single
// threaded; a second concurrent Encode just gets a new one).
type onePool struct {
	mu  sync.Mutex
	buf *png.EncoderBuffer
}

func (p *onePool) Get() *png.EncoderBuffer {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.buf
	p.buf = nil
	return b
}

func (p *onePool) Put(b *png.EncoderBuffer) {
	p.mu.Lock()
	p.buf = b
	p.mu.Unlock()
}

// MaxInitPixels bounds the init image a module decodes.
const MaxInitPixels = 16 << 20

// DecodeInit decodes an init image (PNG or JPEG) and resizes it to w×h
// (bilinear), returning it as the VAE encoder's input [1,3,h,w] in [-1, 1].
func DecodeInit(data []byte, w, h int) ([]float32, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("init_image: not a PNG or JPEG image: %v", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxInitPixels {
		return nil, fmt.Errorf("init_image: %d×%d pixels is more than %d", cfg.Width, cfg.Height, MaxInitPixels)
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("init_image: %v", err)
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	if src.Bounds().Dx() == w && src.Bounds().Dy() == h {
		draw.Draw(dst, dst.Rect, src, src.Bounds().Min, draw.Src)
	} else {
		draw.BiLinear.Scale(dst, dst.Rect, src, src.Bounds(), draw.Src, nil)
	}
	out := make([]float32, 3*w*h)
	plane := w * h
	for y := range h {
		for x := range w {
			c := dst.NRGBAAt(x, y)
			for k, v := range [3]uint8{c.R, c.G, c.B} {
				out[k*plane+y*w+x] = float32(v)/127.5 - 1
			}
		}
	}
	return out, nil
}
