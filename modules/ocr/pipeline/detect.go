package pipeline

import (
	"context"
	"fmt"
	"image"
	"math"
	"slices"
)

// detBox is a detected text box in the original image, with the row it
// was sorted into.
type detBox struct {
	box Box
	row int
}

// detect runs the detector on img and returns the text boxes it finds,
// sorted top to bottom, then left to right within a row.
func (p *Pipeline) detect(ctx context.Context, img *image.RGBA) ([]detBox, error) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	rw, rh := detSize(w, h, p.cfg.MaxSide)
	in := Tensor{Name: p.cfg.DetInput, Shape: []int64{1, 3, int64(rh), int64(rw)}, DType: FP32, Data: detInput(img, rw, rh)}
	outs, err := p.runner.Run(ctx, p.cfg.DetModel, []Tensor{in})
	if err != nil {
		return nil, fmt.Errorf("ocr: running the detection model %q: %w", p.cfg.DetModel, err)
	}
	t, err := output(outs, p.cfg.DetOutput, p.cfg.DetModel)
	if err != nil {
		return nil, err
	}
	if n := len(t.Shape); n < 2 || t.Shape[n-2] != int64(rh) || t.Shape[n-1] != int64(rw) || len(t.Data) != rw*rh {
		return nil, fmt.Errorf("ocr: detection model %q returned shape %v for a %d×%d input; want [1,1,%d,%d]", p.cfg.DetModel, t.Shape, rw, rh, rh, rw)
	}
	rects := findBoxes(t.Data, rw, rh, p.cfg.Threshold, p.cfg.BoxThreshold, p.cfg.UnclipRatio, p.cfg.MaxBoxes)
	boxes := make([]Box, 0, len(rects))
	for _, r := range rects {
		if b, ok := r.toImage(float64(w)/float64(rw), float64(h)/float64(rh), w, h); ok {
			boxes = append(boxes, b)
		}
	}
	return sortBoxes(boxes), nil
}

// detSize is the detector's input size for a w×h image: scaled down so
// the longer side is at most maxSide, never up, then each side rounded to
// a multiple of 32 (the network's stride) and at least 32. maxSide must
// be a multiple of 32.
func detSize(w, h, maxSide int) (rw, rh int) {
	ratio := 1.0
	if long := max(w, h); long > maxSide {
		ratio = float64(maxSide) / float64(long)
	}
	round := func(n int) int {
		r := int(math.RoundToEven(float64(int(float64(n)*ratio))/32)) * 32
		return min(max(r, 32), maxSide)
	}
	return round(w), round(h)
}

// ImageNet's per-channel mean and standard deviation, which PP-OCR's
// detector was trained with, in B, G, R order: PaddleOCR reads images with
// OpenCV (BGR) and normalises channel i with mean[i], std[i].
var (
	detMean = [3]float32{0.485, 0.456, 0.406}
	detStd  = [3]float32{0.229, 0.224, 0.225}
)

// detInput resizes img to rw×rh (bilinear, filtered when it shrinks) and
// returns it as a normalised [1,3,rh,rw] tensor in BGR channel order.
func detInput(img *image.RGBA, rw, rh int) []float32 {
	var scale, offset [3]float32
	for c := range 3 {
		scale[c] = 1 / (255 * detStd[c])
		offset[c] = -detMean[c] / detStd[c]
	}
	out := make([]float32, 3*rw*rh)
	resizeBGR(img, rw, rh, scale, offset, out)
	return out
}

// rect is a rotated rectangle: centre, unit vector along its width, and
// half its width and height.
type rect struct {
	cx, cy, ux, uy, hw, hh float64
}

// corners returns r's corners ordered as PaddleOCR orders them: of the two
// leftmost, the upper is top-left and the lower bottom-left; of the two
// rightmost, the upper is top-right and the lower bottom-right.
func (r rect) corners() [4][2]float64 {
	vx, vy := -r.uy, r.ux
	var p [4][2]float64
	for i, s := range [4][2]float64{{-1, -1}, {1, -1}, {1, 1}, {-1, 1}} {
		p[i] = [2]float64{r.cx + s[0]*r.hw*r.ux + s[1]*r.hh*vx, r.cy + s[0]*r.hw*r.uy + s[1]*r.hh*vy}
	}
	slices.SortStableFunc(p[:], func(a, b [2]float64) int {
		switch {
		case a[0] < b[0]:
			return -1
		case a[0] > b[0]:
			return 1
		}
		return 0
	})
	tl, bl := p[0], p[1]
	if bl[1] < tl[1] {
		tl, bl = bl, tl
	}
	tr, br := p[2], p[3]
	if br[1] < tr[1] {
		tr, br = br, tr
	}
	return [4][2]float64{tl, tr, br, bl}
}

// short is the length of r's shorter side.
func (r rect) short() float64 { return 2 * min(r.hw, r.hh) }

// toImage maps r from the probability map to the image by the scales sx
// and sy, rounds and clips its corners to the w×h image, and reports
// whether the box keeps both sides longer than 3 pixels.
func (r rect) toImage(sx, sy float64, w, h int) (Box, bool) {
	var b Box
	for i, c := range r.corners() {
		b[i] = [2]int{
			min(max(int(math.RoundToEven(c[0]*sx)), 0), w-1),
			min(max(int(math.RoundToEven(c[1]*sy)), 0), h-1),
		}
	}
	width := math.Hypot(float64(b[0][0]-b[1][0]), float64(b[0][1]-b[1][1]))
	height := math.Hypot(float64(b[0][0]-b[3][0]), float64(b[0][1]-b[3][1]))
	return b, width > 3 && height > 3
}

// minBoxSide drops regions thinner than this (in map pixels) before the
// unclip, and thinner than this + 2 after it, as PaddleOCR does.
const minBoxSide = 3

// findBoxes turns the detector's w×h probability map into text boxes in
// map coordinates: the pixels above threshold are grouped into
// 8-connected regions; each region's minimum-area rectangle is kept when
// the mean probability inside it reaches boxThreshold, then grown by
// unclip. PaddleOCR traces contours with OpenCV; the connected regions'
// outer boundaries are the same pixels, and a region's convex hull is
// built from the first and last pixel of each of its rows, which hold
// every hull vertex.
func findBoxes(prob []float32, w, h int, threshold, boxThreshold float32, unclip float64, maxBoxes int) []rect {
	labels, n := label(prob, w, h, threshold)
	n = min(n, maxBoxes)
	points := rowEnds(labels, w, h, n)
	var rects []rect
	for _, pts := range points {
		r := minAreaRect(convexHull(pts))
		if r.short() < minBoxSide {
			continue
		}
		if boxScore(prob, w, h, r) < boxThreshold {
			continue
		}
		// Growing a w×h rectangle by d on every side is what offsetting
		// it by d with rounded corners (pyclipper) and taking the
		// minimum-area rectangle of that gives.
		d := (4 * r.hw * r.hh) * unclip / (4 * (r.hw + r.hh))
		r.hw += d
		r.hh += d
		if r.short() < minBoxSide+2 {
			continue
		}
		rects = append(rects, r)
	}
	return rects
}

// label marks the 8-connected regions of pixels above threshold with
// 1, 2, … in raster order of their first pixel and returns the labels and
// how many regions there are.
func label(prob []float32, w, h int, threshold float32) ([]int32, int) {
	labels := make([]int32, w*h)
	var stack []int
	n := int32(0)
	for start, p := range prob[:w*h] {
		if p <= threshold || labels[start] != 0 {
			continue
		}
		n++
		labels[start] = n
		stack = append(stack[:0], start)
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			x, y := i%w, i/w
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					nx, ny := x+dx, y+dy
					if nx < 0 || ny < 0 || nx >= w || ny >= h {
						continue
					}
					j := ny*w + nx
					if labels[j] == 0 && prob[j] > threshold {
						labels[j] = n
						stack = append(stack, j)
					}
				}
			}
		}
	}
	return labels, int(n)
}

// rowEnds returns, for regions 1…n, the first and last pixel of each row
// the region covers, as [x, y] pixel centres.
func rowEnds(labels []int32, w, h, n int) [][][2]float64 {
	points := make([][][2]float64, n)
	lastRow := make([]int, n)
	first := make([]int, n)
	last := make([]int, n)
	for i := range lastRow {
		lastRow[i] = -1
	}
	flush := func(l int) {
		if lastRow[l] < 0 {
			return
		}
		y := float64(lastRow[l])
		points[l] = append(points[l], [2]float64{float64(first[l]), y})
		if last[l] != first[l] {
			points[l] = append(points[l], [2]float64{float64(last[l]), y})
		}
	}
	for y := range h {
		for x, lb := range labels[y*w : (y+1)*w] {
			l := int(lb) - 1
			if l < 0 || l >= n {
				continue
			}
			if lastRow[l] != y {
				flush(l)
				lastRow[l], first[l] = y, x
			}
			last[l] = x
		}
	}
	for l := range n {
		flush(l)
	}
	return points
}

// convexHull returns the convex hull of pts counter-clockwise (in image
// coordinates, y down: clockwise on screen), without collinear points
// (Andrew's monotone chain).
func convexHull(pts [][2]float64) [][2]float64 {
	pts = slices.Clone(pts)
	slices.SortFunc(pts, func(a, b [2]float64) int {
		if a[0] != b[0] {
			if a[0] < b[0] {
				return -1
			}
			return 1
		}
		switch {
		case a[1] < b[1]:
			return -1
		case a[1] > b[1]:
			return 1
		}
		return 0
	})
	pts = slices.Compact(pts)
	if len(pts) < 3 {
		return pts
	}
	cross := func(o, a, b [2]float64) float64 {
		return (a[0]-o[0])*(b[1]-o[1]) - (a[1]-o[1])*(b[0]-o[0])
	}
	hull := make([][2]float64, 0, 2*len(pts))
	for _, p := range pts {
		for len(hull) >= 2 && cross(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	lower := len(hull) + 1
	for i := len(pts) - 2; i >= 0; i-- {
		p := pts[i]
		for len(hull) >= lower && cross(hull[len(hull)-2], hull[len(hull)-1], p) <= 0 {
			hull = hull[:len(hull)-1]
		}
		hull = append(hull, p)
	}
	return hull[:len(hull)-1]
}

// minAreaRect returns the smallest rectangle holding the convex polygon
// hull. One of its sides lies along an edge of the hull, so trying each
// edge's direction finds it (Freeman and Shapira, 1975). Its width is the
// side along that edge.
func minAreaRect(hull [][2]float64) rect {
	switch len(hull) {
	case 0:
		return rect{ux: 1}
	case 1:
		return rect{cx: hull[0][0], cy: hull[0][1], ux: 1}
	}
	best, bestArea := rect{}, math.Inf(1)
	for i := range hull {
		a, b := hull[i], hull[(i+1)%len(hull)]
		ux, uy := b[0]-a[0], b[1]-a[1]
		l := math.Hypot(ux, uy)
		if l == 0 {
			continue
		}
		ux, uy = ux/l, uy/l
		minU, maxU, minV, maxV := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
		for _, p := range hull {
			u := p[0]*ux + p[1]*uy
			v := -p[0]*uy + p[1]*ux
			minU, maxU = min(minU, u), max(maxU, u)
			minV, maxV = min(minV, v), max(maxV, v)
		}
		if area := (maxU - minU) * (maxV - minV); area < bestArea {
			cu, cv := (minU+maxU)/2, (minV+maxV)/2
			best = rect{
				cx: cu*ux - cv*uy, cy: cu*uy + cv*ux,
				ux: ux, uy: uy,
				hw: (maxU - minU) / 2, hh: (maxV - minV) / 2,
			}
			bestArea = area
		}
	}
	return best
}

// boxScore is the mean probability of the pixels whose centres lie in r
// or within half a pixel of it (PaddleOCR's "fast" score, which fills the
// box polygon).
func boxScore(prob []float32, w, h int, r rect) float32 {
	c := r.corners()
	x0, x1, y0, y1 := c[0][0], c[0][0], c[0][1], c[0][1]
	for _, p := range c[1:] {
		x0, x1 = min(x0, p[0]), max(x1, p[0])
		y0, y1 = min(y0, p[1]), max(y1, p[1])
	}
	xa, xb := max(int(math.Floor(x0)), 0), min(int(math.Ceil(x1)), w-1)
	ya, yb := max(int(math.Floor(y0)), 0), min(int(math.Ceil(y1)), h-1)
	var sum float64
	n := 0
	for y := ya; y <= yb; y++ {
		for x := xa; x <= xb; x++ {
			dx, dy := float64(x)-r.cx, float64(y)-r.cy
			if math.Abs(dx*r.ux+dy*r.uy) <= r.hw+0.5 && math.Abs(-dx*r.uy+dy*r.ux) <= r.hh+0.5 {
				sum += float64(prob[y*w+x])
				n++
			}
		}
	}
	if n == 0 {
		return 0
	}
	return float32(sum / float64(n))
}

// sortBoxes orders boxes top to bottom, and left to right within a row. A
// box joins the row of the box above it in that order when their vertical
// centres are closer than half the shorter box's height, so a line broken
// into several boxes reads left to right even when the boxes are not
// level (PaddleOCR compares top edges against a fixed 10 pixels instead).
func sortBoxes(boxes []Box) []detBox {
	type item struct {
		b          Box
		cy, height float64
	}
	items := make([]item, len(boxes))
	for i, b := range boxes {
		cy := float64(b[0][1]+b[1][1]+b[2][1]+b[3][1]) / 4
		height := (math.Hypot(float64(b[0][0]-b[3][0]), float64(b[0][1]-b[3][1])) +
			math.Hypot(float64(b[1][0]-b[2][0]), float64(b[1][1]-b[2][1]))) / 2
		items[i] = item{b, cy, height}
	}
	slices.SortStableFunc(items, func(a, b item) int {
		switch {
		case a.cy < b.cy:
			return -1
		case a.cy > b.cy:
			return 1
		}
		return a.b[0][0] - b.b[0][0]
	})
	out := make([]detBox, len(items))
	row, start := 0, 0
	for i, it := range items {
		if i > 0 {
			head := items[start]
			if it.cy-head.cy >= min(it.height, head.height)/2 {
				row++
				start = i
			}
		}
		out[i] = detBox{box: it.b, row: row}
	}
	slices.SortStableFunc(out, func(a, b detBox) int {
		if a.row != b.row {
			return a.row - b.row
		}
		return a.box[0][0] - b.box[0][0]
	})
	return out
}
