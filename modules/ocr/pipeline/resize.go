package pipeline

import (
	"image"
	"math"
)

// Images are resized here rather than with x/image/draw, which filters the
// same way (a triangle filter widened by the scale when shrinking:
// draw.BiLinear) but costs too much in a module. Its Scale keeps a float64
// buffer of the output width × the source height, 126 MB for a 4096-pixel
// tall image; its Transform needs none but took 335 ms for 1280×720 →
// 960×544 under wazero (37 ms natively), and 32 ms per 1280×48
// recognition crop. These filter in float32 with weights computed once per
// column and row, keep only the source rows a destination row needs, and
// write the normalised tensor directly: 70 ms and 8 ms under wazero.

// taps are the source pixels one destination pixel is made of: weights
// for start, start+1, ….
type taps struct {
	start int
	w     []float32
}

// filterTaps returns the taps of each of n destination pixels over m
// source pixels: a triangle filter centred where the destination pixel's
// centre falls, one source pixel wide each side, or the scale wide when
// shrinking; weights sum to 1 and the edges are clamped.
func filterTaps(m, n int) []taps {
	scale := float64(m) / float64(n)
	support := max(scale, 1)
	out := make([]taps, n)
	for d := range out {
		c := (float64(d)+0.5)*scale - 0.5
		lo := max(int(math.Ceil(c-support)), 0)
		hi := min(int(math.Floor(c+support)), m-1)
		var ws []float32
		var sum float32
		start := -1
		for s := lo; s <= hi; s++ {
			w := float32(1 - math.Abs(float64(s)-c)/support)
			if w <= 0 {
				if start < 0 {
					continue
				}
				break
			}
			if start < 0 {
				start = s
			}
			ws = append(ws, w)
			sum += w
		}
		if start < 0 { // c lies beyond the edge: take the nearest pixel
			start, ws, sum = min(max(int(math.Round(c)), 0), m-1), []float32{1}, 1
		}
		for i := range ws {
			ws[i] /= sum
		}
		out[d] = taps{start, ws}
	}
	return out
}

// resizeBGR resizes img to rw×rh and writes it into out, [3,rh,rw] in B,
// G, R order, each value v (0–255) as v·scale[c] + offset[c].
func resizeBGR(img *image.RGBA, rw, rh int, scale, offset [3]float32, out []float32) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	xt, yt := filterTaps(w, rw), filterTaps(h, rh)
	// rows holds source rows filtered horizontally, [rw][B, G, R] each, in
	// a ring indexed by source row: a destination row needs at most
	// ring consecutive ones, and they only move down.
	ring := 0
	for _, t := range yt {
		ring = max(ring, len(t.w))
	}
	rows := make([][]float32, ring)
	held := make([]int, ring)
	for i := range rows {
		rows[i] = make([]float32, 3*rw)
		held[i] = -1
	}
	row := func(sy int) []float32 {
		slot := sy % ring
		if held[slot] == sy {
			return rows[slot]
		}
		held[slot] = sy
		r := rows[slot]
		pix := img.Pix[img.PixOffset(img.Rect.Min.X, img.Rect.Min.Y+sy):]
		for x, t := range xt {
			var b, g, rr float32
			p := pix[4*t.start:]
			for k, wk := range t.w {
				rr += float32(p[4*k]) * wk
				g += float32(p[4*k+1]) * wk
				b += float32(p[4*k+2]) * wk
			}
			r[3*x], r[3*x+1], r[3*x+2] = b, g, rr
		}
		return r
	}
	plane := rw * rh
	acc := make([]float32, 3*rw)
	for y, t := range yt {
		clear(acc)
		for k, wk := range t.w {
			for i, v := range row(t.start + k) {
				acc[i] += v * wk
			}
		}
		o := y * rw
		for x := range rw {
			for c := range 3 {
				out[c*plane+o+x] = acc[3*x+c]*scale[c] + offset[c]
			}
		}
	}
}

// recInput draws crop c of img into out, the [3,h,width] slice of a batch
// tensor (B, G, R, scaled to [-1, 1]), resized to rw×h: destination pixel
// (x, y) shows the source point tl + (x+½)/rw·(tr−tl) + (y+½)/h·(bl−tl),
// with the box's corners at pixel centres, as OpenCV's warpPerspective
// places them in PaddleOCR. Each destination pixel averages a grid of
// bilinear samples, one per source pixel it spans when the crop shrinks;
// points beyond the image take the nearest edge pixel (OpenCV's
// BORDER_REPLICATE, which PaddleOCR uses). Columns from rw to width stay 0,
// the padding PaddleOCR uses.
func recInput(img *image.RGBA, c crop, rw, h, width int, out []float32) {
	tl, tr, bl := c.corners[0], c.corners[1], c.corners[3]
	// The source step per destination column (u) and row (v).
	ux, uy := (tr[0]-tl[0])/float64(rw), (tr[1]-tl[1])/float64(rw)
	vx, vy := (bl[0]-tl[0])/float64(h), (bl[1]-tl[1])/float64(h)
	nu := max(int(math.Ceil(math.Hypot(ux, uy))), 1)
	nv := max(int(math.Ceil(math.Hypot(vx, vy))), 1)
	// (v/255 − 0.5)/0.5 for the mean v of nu·nv samples.
	scale := 2 / (255 * float32(nu*nv))
	w, ih := img.Rect.Dx(), img.Rect.Dy()
	maxX, maxY := float64(w-1), float64(ih-1)
	plane := h * width
	for y := range h {
		for x := range rw {
			var r, g, b float32
			for j := range nv {
				fv := float64(y) + (float64(j)+0.5)/float64(nv)
				for i := range nu {
					fu := float64(x) + (float64(i)+0.5)/float64(nu)
					sx := min(max(tl[0]+fu*ux+fv*vx, 0), maxX)
					sy := min(max(tl[1]+fu*uy+fv*vy, 0), maxY)
					x0, y0 := int(sx), int(sy)
					x1, y1 := min(x0+1, w-1), min(y0+1, ih-1)
					fx, fy := float32(sx-float64(x0)), float32(sy-float64(y0))
					p00 := img.Pix[img.PixOffset(img.Rect.Min.X+x0, img.Rect.Min.Y+y0):]
					p01 := img.Pix[img.PixOffset(img.Rect.Min.X+x1, img.Rect.Min.Y+y0):]
					p10 := img.Pix[img.PixOffset(img.Rect.Min.X+x0, img.Rect.Min.Y+y1):]
					p11 := img.Pix[img.PixOffset(img.Rect.Min.X+x1, img.Rect.Min.Y+y1):]
					w00, w01, w10, w11 := (1-fx)*(1-fy), fx*(1-fy), (1-fx)*fy, fx*fy
					r += float32(p00[0])*w00 + float32(p01[0])*w01 + float32(p10[0])*w10 + float32(p11[0])*w11
					g += float32(p00[1])*w00 + float32(p01[1])*w01 + float32(p10[1])*w10 + float32(p11[1])*w11
					b += float32(p00[2])*w00 + float32(p01[2])*w01 + float32(p10[2])*w10 + float32(p11[2])*w11
				}
			}
			i := y*width + x
			out[i] = b*scale - 1
			out[plane+i] = g*scale - 1
			out[2*plane+i] = r*scale - 1
		}
	}
}
