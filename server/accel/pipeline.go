package accel

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// A pipeline is a folder of several models and their small files, in the
// layout Hugging Face Optimum exports diffusion pipelines in (Stable
// Diffusion XL's: model_index.json, scheduler/, text_encoder/,
// text_encoder_2/, unet/, vae_decoder/, vae_encoder/, tokenizer/,
// tokenizer_2/). It registers as one model, NAME; its networks load as
// NAME/PART (NAME/unet, …), which a grant of NAME covers, and its small
// files are read with millrace_nn_v1.model_file (ABI.md §8.4).

// PipelineIndex is the file that makes a folder a pipeline.
const PipelineIndex = "model_index.json"

// pipelinePart is one part of a pipeline folder and the files it needs.
type pipelinePart struct {
	name  string
	files []string
	model bool // holds model.onnx: loadable as NAME/PART
}

// sdxlParts is what a Stable Diffusion XL folder must hold. Only the
// files the pipeline reads are required: each part's config.json and the
// tokenizers' special_tokens_map.json are optional.
var sdxlParts = []pipelinePart{
	{name: "scheduler", files: []string{"scheduler_config.json"}},
	{name: "tokenizer", files: []string{"vocab.json", "merges.txt"}},
	{name: "tokenizer_2", files: []string{"vocab.json", "merges.txt"}},
	{name: "text_encoder", files: []string{"model.onnx"}, model: true},
	{name: "text_encoder_2", files: []string{"model.onnx"}, model: true},
	{name: "unet", files: []string{"model.onnx"}, model: true},
	{name: "vae_decoder", files: []string{"model.onnx"}, model: true},
	{name: "vae_encoder", files: []string{"model.onnx"}, model: true},
}

// PipelineParts returns the names of the loadable parts of a pipeline
// (NAME/PART), in a fixed order.
func PipelineParts() []string {
	var out []string
	for _, p := range sdxlParts {
		if p.model {
			out = append(out, p.name)
		}
	}
	return out
}

func isPartName(name string) bool { return slices.Contains(PipelineParts(), name) }

// isPipeline reports whether the registered path is a pipeline folder.
func isPipeline(p string) bool { return p != "" && isFile(filepath.Join(p, PipelineIndex)) }

// maxIndexBytes bounds model_index.json; real ones are under 1 KiB.
const maxIndexBytes = 1 << 20

// checkPipeline checks a pipeline folder part by part and says what is
// missing, naming the part and the file.
func checkPipeline(dir string) error {
	idx, err := readSmall(filepath.Join(dir, PipelineIndex), maxIndexBytes)
	if err != nil {
		return invalid("path", "%s: %v", PipelineIndex, err)
	}
	var index map[string]any
	if err := json.Unmarshal(idx, &index); err != nil {
		return invalid("path", "%s in %s is not a JSON object: %v", PipelineIndex, dir, err)
	}
	var missing []string
	for _, part := range sdxlParts {
		st, err := os.Stat(filepath.Join(dir, part.name))
		if err != nil || !st.IsDir() {
			missing = append(missing, part.name+"/ (the folder)")
			continue
		}
		for _, f := range part.files {
			if !isFile(filepath.Join(dir, part.name, f)) {
				missing = append(missing, part.name+"/"+f)
			}
		}
		if part.model && isFile(filepath.Join(dir, part.name, "model.onnx")) {
			missing = append(missing, missingExternalData(filepath.Join(dir, part.name), part.name)...)
		}
	}
	if len(missing) > 0 {
		return invalid("path", "the pipeline folder %s lacks %s: a Stable Diffusion XL folder as Optimum exports it holds %s, and the folders %s",
			dir, strings.Join(missing, ", "), PipelineIndex, partList())
	}
	return nil
}

func partList() string {
	var names []string
	for _, p := range sdxlParts {
		names = append(names, p.name+"/")
	}
	return strings.Join(names, ", ")
}

// maxScanBytes bounds the model files whose external data references are
// checked. Larger files hold their weights inline (external data exists
// for models over protobuf's 2 GiB limit, and then model.onnx is small).
const maxScanBytes = 256 << 20

// missingExternalData lists the external data files part/model.onnx
// names that are not beside it, or that point outside its folder.
func missingExternalData(dir, part string) []string {
	st, err := os.Stat(filepath.Join(dir, "model.onnx"))
	if err != nil || st.Size() > maxScanBytes {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if err != nil {
		return []string{fmt.Sprintf("%s/model.onnx (unreadable: %v)", part, err)}
	}
	locations, err := ExternalDataLocations(data)
	if err != nil {
		return []string{fmt.Sprintf("%s/model.onnx (not an ONNX model: %v)", part, err)}
	}
	var out []string
	for _, loc := range locations {
		if !filepath.IsLocal(loc) {
			out = append(out, fmt.Sprintf("%s/%s (model.onnx names external data outside its folder)", part, loc))
		} else if !isFile(filepath.Join(dir, loc)) {
			out = append(out, fmt.Sprintf("%s/%s (external data model.onnx refers to)", part, loc))
		}
	}
	return out
}

// ExternalDataLocations returns the files an ONNX model's initializers
// keep their data in (TensorProto.external_data "location"), each once,
// in order of first use. It reads the protobuf wire format directly:
// ModelProto.graph (7) → GraphProto.initializer (5) → TensorProto
// .external_data (13) → StringStringEntryProto {key (1), value (2)}.
func ExternalDataLocations(model []byte) ([]string, error) {
	graph, err := fields(model, 7)
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	var out []string
	for _, g := range graph {
		inits, err := fields(g, 5)
		if err != nil {
			return nil, fmt.Errorf("graph: %w", err)
		}
		for _, t := range inits {
			entries, err := fields(t, 13)
			if err != nil {
				return nil, fmt.Errorf("initializer: %w", err)
			}
			for _, e := range entries {
				keys, err := fields(e, 1)
				if err != nil {
					return nil, fmt.Errorf("external_data: %w", err)
				}
				values, err := fields(e, 2)
				if err != nil {
					return nil, fmt.Errorf("external_data: %w", err)
				}
				if len(keys) == 1 && string(keys[0]) == "location" && len(values) == 1 && !slices.Contains(out, string(values[0])) {
					out = append(out, string(values[0]))
				}
			}
		}
	}
	return out, nil
}

// fields returns the length-delimited values of field num in a protobuf
// message, skipping every other field.
func fields(msg []byte, num protowire.Number) ([][]byte, error) {
	var out [][]byte
	for len(msg) > 0 {
		n, typ, l := protowire.ConsumeTag(msg)
		if l < 0 {
			return nil, protowire.ParseError(l)
		}
		msg = msg[l:]
		if n == num && typ == protowire.BytesType {
			v, l := protowire.ConsumeBytes(msg)
			if l < 0 {
				return nil, protowire.ParseError(l)
			}
			out = append(out, v)
			msg = msg[l:]
			continue
		}
		l = protowire.ConsumeFieldValue(n, typ, msg)
		if l < 0 {
			return nil, protowire.ParseError(l)
		}
		msg = msg[l:]
	}
	return out, nil
}

// MaxModelFileBytes bounds a file model_file reads: a CLIP vocab.json is
// about 1 MiB, merges.txt 0.5 MiB.
const MaxModelFileBytes = 4 << 20

// modelFileExts are the kinds of files model_file serves: configuration
// and tokenizer files, never weights.
var modelFileExts = []string{".json", ".txt"}

// checkModelFilePath validates the path a module asks model_file for:
// relative, slash-separated, no "." or ".." element, a .json or .txt file.
func checkModelFilePath(p string) error {
	switch {
	case p == "" || len(p) > 512:
		return errors.New("the path must be 1-512 bytes")
	case strings.ContainsAny(p, "\\\x00") || !fs.ValidPath(p) || p == ".":
		return fmt.Errorf("%q is not a clean relative path inside the pipeline folder (use '/', no '.' or '..' elements)", p)
	case !slices.Contains(modelFileExts, path.Ext(p)):
		return fmt.Errorf("%q is neither a .json nor a .txt file: model_file reads configuration and tokenizer files only", p)
	}
	return nil
}

// readModelFile reads path inside the pipeline folder dir. os.Root keeps
// the read inside dir even through links.
func readModelFile(dir, p string) ([]byte, error) {
	if err := checkModelFilePath(p); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(filepath.FromSlash(p))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", fs.ErrNotExist, p)
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a file", p)
	}
	if st.Size() > MaxModelFileBytes {
		return nil, fmt.Errorf("%w: %s is %d bytes; model_file reads at most %d", errTooLarge, p, st.Size(), MaxModelFileBytes)
	}
	return io.ReadAll(io.LimitReader(f, MaxModelFileBytes+1))
}

var errTooLarge = errors.New("too large")

// readSmall reads a file of at most max bytes.
func readSmall(p string, max int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("missing")
		}
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return b, nil
}
