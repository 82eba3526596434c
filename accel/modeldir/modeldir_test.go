package modeldir_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/modeldir"
	"github.com/millrace/millrace/accel/sessions"
)

func TestDir(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write := func(path, data string) {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(root, path)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, path), []byte(data), 0o644))
	}
	write("flat.onnx", "x")
	write("folder/model.onnx", "x")
	write("folder/metadata.json", `{"version": "3", "description": "a folder model"}`)
	write("both.onnx", "x")
	write("both/model.onnx", "x")
	write("typo/model.onnx", "x")
	write("typo/metadata.json", `{"verison": "3"}`)
	write("empty/readme.txt", "not a model")
	write("notes.txt", "not a model")
	d := modeldir.New(root)
	ctx := context.Background()

	m, err := d.Model(ctx, "folder")
	require.NoError(t, err)
	require.Equal(t, sessions.Model{Name: "folder", Path: filepath.Join(root, "folder/model.onnx"), Version: "3"}, m)
	m, err = d.Model(ctx, "flat")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, "flat.onnx"), m.Path)
	m, err = d.Model(ctx, "both")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, "both/model.onnx"), m.Path, "the folder wins")
	_, err = d.Model(ctx, "typo")
	require.ErrorContains(t, err, `unknown field "verison"`)
	for _, name := range []string{"empty", "nope", "..", "../x", ".hidden", "flat.onnx", ""} {
		_, err = d.Model(ctx, name)
		require.ErrorIs(t, err, sessions.ErrNotFound, name)
	}

	list, err := d.List(ctx)
	require.NoError(t, err)
	var names []string
	for _, m := range list {
		names = append(names, m.Name)
	}
	require.Equal(t, []string{"both", "flat", "folder"}, names)

	// Links, as the Millrace server writes them for its model registry:
	// one to a model folder, one to a file.
	elsewhere := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(elsewhere, "linked"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(elsewhere, "linked", "model.onnx"), []byte("x"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(elsewhere, "file.onnx"), []byte("x"), 0o644))
	require.NoError(t, os.Symlink(filepath.Join(elsewhere, "linked"), filepath.Join(root, "linked")))
	require.NoError(t, os.Symlink(filepath.Join(elsewhere, "file.onnx"), filepath.Join(root, "lfile.onnx")))
	require.NoError(t, os.Symlink(filepath.Join(elsewhere, "gone"), filepath.Join(root, "dangling")))
	list, err = d.List(ctx)
	require.NoError(t, err)
	names = nil
	for _, m := range list {
		names = append(names, m.Name)
	}
	require.Equal(t, []string{"both", "flat", "folder", "lfile", "linked"}, names)

	// A link's model resolves to the file's real folder, where ONNX
	// Runtime finds its external data.
	m, err = d.Model(ctx, "lfile")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(elsewhere, "file.onnx"), m.Path)
	m, err = d.Model(ctx, "linked")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(elsewhere, "linked", "model.onnx"), m.Path)

	_, err = modeldir.New(filepath.Join(root, "missing")).List(ctx)
	require.ErrorContains(t, err, "does not exist")
}

// A pipeline folder (Stable Diffusion XL's, as Optimum exports it) is no
// model itself; each of its parts is one, named PIPELINE/PART.
func TestPipelineParts(t *testing.T) {
	t.Parallel()
	root, elsewhere := t.TempDir(), t.TempDir()
	for _, p := range []string{"unet/model.onnx", "unet/model.onnx_data", "vae_decoder/model.onnx", "tokenizer/vocab.json"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(elsewhere, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(elsewhere, p), []byte("x"), 0o644))
	}
	require.NoError(t, os.Symlink(elsewhere, filepath.Join(root, "sdxl")))
	d := modeldir.New(root)
	ctx := context.Background()

	m, err := d.Model(ctx, "sdxl/unet")
	require.NoError(t, err)
	require.Equal(t, sessions.Model{Name: "sdxl/unet", Path: filepath.Join(elsewhere, "unet", "model.onnx")}, m)
	_, err = d.Model(ctx, "sdxl/vae_decoder")
	require.NoError(t, err)
	for _, name := range []string{"sdxl", "sdxl/tokenizer", "sdxl/", "/unet", "sdxl/unet/x", "sdxl/..", "../sdxl/unet", "sdxl/.hidden", "sdxl/unet.onnx"} {
		_, err = d.Model(ctx, name)
		require.ErrorIs(t, err, sessions.ErrNotFound, name)
	}
	list, err := d.List(ctx)
	require.NoError(t, err)
	require.Empty(t, list, "a pipeline is listed through the server's registry, not as a model")
}
