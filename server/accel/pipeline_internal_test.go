package accel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	ob "github.com/millrace/millrace/accel/onnxbuild"
	"github.com/millrace/millrace/accel/onnxbuild/sdxl"
)

func TestExternalDataLocations(t *testing.T) {
	t.Parallel()
	files, err := sdxl.Files(sdxl.Options{})
	require.NoError(t, err)
	locs, err := ExternalDataLocations(files["unet/model.onnx"])
	require.NoError(t, err)
	require.Equal(t, []string{"model.onnx_data"}, locs)
	locs, err = ExternalDataLocations(files["vae_decoder/model.onnx"])
	require.NoError(t, err)
	require.Empty(t, locs)
	_, err = ExternalDataLocations([]byte{0x3a, 0xff})
	require.Error(t, err)
}

// FuzzExternalDataLocations: an uploaded folder's model.onnx may be any
// bytes.
func FuzzExternalDataLocations(f *testing.F) {
	files, err := sdxl.Files(sdxl.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(files["unet/model.onnx"])
	f.Add(files["text_encoder_2/model.onnx"])
	f.Add(ob.Arith())
	f.Fuzz(func(t *testing.T, model []byte) {
		locs, err := ExternalDataLocations(model)
		if err == nil && len(locs) > len(model) {
			t.Fatalf("%d locations from %d bytes", len(locs), len(model))
		}
	})
}

// FuzzModelFilePath: whatever path a module asks model_file for, it
// reads a .json or .txt file inside the pipeline folder, or nothing.
func FuzzModelFilePath(f *testing.F) {
	root := f.TempDir()
	dir := filepath.Join(root, "pipeline")
	for p, data := range map[string]string{"model_index.json": "{}", "tokenizer/vocab.json": "{}", "unet/model.onnx": "weights"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644)
	}
	os.WriteFile(filepath.Join(root, "secret.json"), []byte(`"secret"`), 0o644)
	os.Symlink(filepath.Join(root, "secret.json"), filepath.Join(dir, "tokenizer", "link.json"))
	for _, p := range []string{"model_index.json", "tokenizer/vocab.json", "../secret.json", "tokenizer/link.json", "unet/model.onnx", "/etc/passwd", "a\\..\\b.json", "./model_index.json"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		data, err := readModelFile(dir, p)
		if err != nil {
			return
		}
		if string(data) != "{}" {
			t.Fatalf("%q read %q", p, data)
		}
		if !strings.HasSuffix(p, ".json") || strings.Contains(p, "..") {
			t.Fatalf("%q was served", p)
		}
	})
}
