// Package modeldir serves models from a directory: each model is a folder
// DIR/NAME/ holding model.onnx (and optionally metadata.json and external
// data files), or a single file DIR/NAME.onnx. A model named PIPELINE/PART
// is the folder DIR/PIPELINE/PART/ holding model.onnx: one part of a
// pipeline folder (Stable Diffusion XL's unet, vae_decoder, …).
package modeldir

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/millrace/millrace/accel/sessions"
)

// Dir is a model directory. It reads the directory on every call, so
// models added or removed while the service runs are seen at once.
type Dir struct {
	root string
}

var _ sessions.Source = (*Dir)(nil)

// New returns the models under root.
func New(root string) *Dir { return &Dir{root: root} }

// Metadata is the optional DIR/NAME/metadata.json. Unknown fields are
// errors, so a typo does not pass silently.
type Metadata struct {
	// Version is reported as the model's version ("1" when empty).
	Version string `json:"version,omitempty"`
	// Description is for people.
	Description string `json:"description,omitempty"`
}

// validName keeps names to one path element that URLs carry as they are.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidName reports whether name can name a model: one path element, or
// two (PIPELINE/PART) for a part of a pipeline folder.
func ValidName(name string) bool {
	pipeline, part, nested := strings.Cut(name, "/")
	if nested {
		return validName.MatchString(pipeline) && validName.MatchString(part) && !strings.HasSuffix(part, ".onnx")
	}
	return validName.MatchString(name) && !strings.HasSuffix(name, ".onnx")
}

// realPath resolves the links on the way to a model file. ONNX Runtime
// looks for external data files (model.onnx_data) in the folder of the
// path it is given, so that must be the folder the file really is in, not
// the model directory's link to it.
func realPath(path string) string {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		return p
	}
	return path
}

// Model finds the named model.
func (d *Dir) Model(_ context.Context, name string) (sessions.Model, error) {
	if !ValidName(name) {
		return sessions.Model{}, fmt.Errorf("%w: %q is not a valid model name (letters, digits, '.', '_', '-'; PIPELINE/PART for a part of a pipeline)", sessions.ErrNotFound, name)
	}
	folder := filepath.Join(d.root, filepath.FromSlash(name))
	if st, err := os.Stat(filepath.Join(folder, "model.onnx")); err == nil && st.Mode().IsRegular() {
		m := sessions.Model{Name: name, Path: realPath(filepath.Join(folder, "model.onnx"))}
		md, err := readMetadata(filepath.Join(folder, "metadata.json"))
		if err != nil {
			return sessions.Model{}, fmt.Errorf("model %q: %v", name, err)
		}
		m.Version = md.Version
		return m, nil
	}
	file := filepath.Join(d.root, name+".onnx")
	if st, err := os.Stat(file); err == nil && st.Mode().IsRegular() && !strings.Contains(name, "/") {
		return sessions.Model{Name: name, Path: realPath(file)}, nil
	}
	return sessions.Model{}, fmt.Errorf("%w: no model %q in %s (want %s/%s/model.onnx or %s/%s.onnx)", sessions.ErrNotFound, name, d.root, d.root, name, d.root, name)
}

// List returns every model in the directory, sorted by name. A model
// that is both a folder and a file is listed once (the folder wins).
func (d *Dir) List(ctx context.Context) ([]sessions.Model, error) {
	entries, err := os.ReadDir(d.root)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("model directory %s does not exist (set -models)", d.root)
		}
		return nil, err
	}
	seen := map[string]bool{}
	var out []sessions.Model
	for _, e := range entries {
		name := strings.TrimSuffix(e.Name(), ".onnx")
		isDir := e.IsDir()
		if e.Type()&fs.ModeSymlink != 0 { // a link to a model folder counts as one
			st, err := os.Stat(filepath.Join(d.root, e.Name()))
			isDir = err == nil && st.IsDir()
		}
		if seen[name] || (!isDir && name == e.Name()) {
			continue
		}
		m, err := d.Model(ctx, name)
		if err != nil {
			continue // not a model: some other file or folder
		}
		seen[name] = true
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func readMetadata(path string) (Metadata, error) {
	var md Metadata
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return md, nil
	}
	if err != nil {
		return md, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&md); err != nil {
		return md, fmt.Errorf("%s: %v", path, err)
	}
	return md, nil
}
