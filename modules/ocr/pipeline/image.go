package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // the formats Recognize reads
	_ "image/png"
)

// ErrTooManyPixels is returned for an image larger than Config.MaxPixels.
var ErrTooManyPixels = errors.New("ocr: the image is too large")

// DecodeImage decodes a PNG or JPEG image of at most maxPixels pixels
// (width × height) and returns it as RGBA over white, with its origin at
// (0, 0). The size is read from the header and checked before any pixel is
// decoded, so a small file that claims a huge image (a decompression bomb)
// costs nothing.
func DecodeImage(data []byte, maxPixels int) (*image.RGBA, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("ocr: reading the image: %w (PNG and JPEG are supported)", err)
	}
	if format != "png" && format != "jpeg" {
		return nil, fmt.Errorf("ocr: images in %s are not supported; use PNG or JPEG", format)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("ocr: the image is empty (%d×%d)", cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return nil, fmt.Errorf("%w: %d×%d is more than %d pixels; scale it down first", ErrTooManyPixels, cfg.Width, cfg.Height, maxPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("ocr: decoding the %s image: %w", format, err)
	}
	if b := img.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
		return nil, fmt.Errorf("ocr: the %s image decodes to %d×%d, not the %d×%d its header says", format, b.Dx(), b.Dy(), cfg.Width, cfg.Height)
	}
	return flatten(img), nil
}

// flatten returns src as RGBA composed over white with its origin at
// (0, 0): the one pixel layout the rest of the pipeline reads. An opaque
// RGBA image at the origin is returned as it is.
func flatten(src image.Image) *image.RGBA {
	if rgba, ok := src.(*image.RGBA); ok && rgba.Rect.Min == (image.Point{}) && rgba.Opaque() {
		return rgba
	}
	b := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for i := range dst.Pix {
		dst.Pix[i] = 0xff
	}
	draw.Draw(dst, dst.Rect, src, b.Min, draw.Over)
	return dst
}
