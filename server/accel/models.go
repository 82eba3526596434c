package accel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/accel/client"
	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/accel/trainjob"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/store"
)

// Models is the model registry: the models an admin registered by name,
// kept in the store, and served by the accelerator.
//
// The child accelerator reads its model directory (accel/modeldir) on
// every request; the registry writes that directory as one symbolic link
// per registered model, named after it: NAME -> a folder holding
// model.onnx, or NAME.onnx -> an .onnx file. So the child serves exactly
// the registered models, a registration takes effect without a restart,
// and weights are never copied. The store is the truth; the directory is
// rebuilt from it at start and corrected whenever a model is loaded, so
// servers sharing one PostgreSQL agree.
type Models struct {
	store store.Store
	sup   *Supervisor

	mu    sync.Mutex // serialises changes of the model directory and the cache
	cache map[string]cachedMetadata
}

type cachedMetadata struct {
	path string
	gen  uint64
	md   *oip.ModelMetadata
}

var _ sandbox.Accel = (*Models)(nil)

// NewModels returns the registry of the models sup's accelerator serves.
func NewModels(s store.Store, sup *Supervisor) *Models {
	return &Models{store: s, sup: sup, cache: map[string]cachedMetadata{}}
}

// Model is a registered model as the API shows it.
type Model struct {
	Name        string    `json:"name" doc:"The name modules load it by (wasi_ephemeral_nn.load_by_name) and grants list."`
	Path        string    `json:"path,omitempty" doc:"Where it lives on the server's disk: a folder holding model.onnx, or an .onnx file. Empty on a remote accelerator."`
	Description string    `json:"description,omitempty"`
	Version     string    `json:"version,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Kind        string    `json:"kind" enum:"model,pipeline" doc:"model: one network; pipeline: a folder of several (Stable Diffusion XL as Optimum exports it), whose parts modules load as NAME/PART."`
	// Inputs and Outputs come from the accelerator (GET one model).
	Inputs        []Tensor `json:"inputs,omitempty" doc:"The model's inputs, in the order set_input numbers them. Only when getting one model."`
	Outputs       []Tensor `json:"outputs,omitempty" doc:"The model's outputs, in the order get_output numbers them."`
	MetadataError string   `json:"metadata_error,omitempty" doc:"Why inputs and outputs are missing: the accelerator is not ready, or the model does not load."`
	Parts         []*Model `json:"parts,omitempty" doc:"A pipeline's networks, each loadable as NAME/PART (NAME/unet, …) by a module granted NAME, with their inputs and outputs. Only when getting one model."`
	// Training is set for a model a training job produced (and that is
	// still registered from that job's files).
	Training *Lineage `json:"training,omitempty" doc:"Where a trained model came from and how good it is: the training job, its dataset version, hyperparameters and metrics."`
}

// Lineage is a trained model's origin and metrics.
type Lineage struct {
	JobID           string                   `json:"job_id"`
	Task            string                   `json:"task"`
	DatasetID       string                   `json:"dataset_id"`
	DatasetVersion  int                      `json:"dataset_version"`
	Hyperparameters trainjob.Hyperparameters `json:"hyperparameters"`
	BaseModel       *trainjob.BaseModel      `json:"base_model,omitempty" doc:"fine_tune_onnx: the model it was fine-tuned from, and that model's version then."`
	Metrics         trainjob.JobResult       `json:"metrics" doc:"The best epoch's validation accuracy, the training loss, epochs run, examples and labels."`
	TrainedAt       *time.Time               `json:"trained_at,omitempty"`
}

// lineage finds the succeeded training job whose files rec serves.
func (m *Models) lineage(ctx context.Context, rec store.Model) *Lineage {
	if rec.Path == "" {
		return nil
	}
	jobs, err := m.store.ListTrainingJobs(ctx, store.TrainingJobFilter{ModelName: rec.Name})
	if err != nil {
		slog.Warn("reading a model's training job", "model", rec.Name, "err", err)
		return nil
	}
	for _, j := range jobs {
		if j.State != trainjob.StateSucceeded || filepath.Clean(j.OutputDir) != rec.Path || j.Result == nil {
			continue
		}
		l := &Lineage{JobID: j.ID, Task: j.Task, DatasetID: j.DatasetID, DatasetVersion: j.DatasetVersion, TrainedAt: j.FinishedAt}
		// The column holds the hyperparameters and, for a fine-tuned
		// model, its base model (server/training's settings).
		var base struct {
			BaseModel *trainjob.BaseModel `json:"base_model"`
		}
		if json.Unmarshal(j.Hyperparameters, &l.Hyperparameters) != nil || json.Unmarshal(j.Hyperparameters, &base) != nil || json.Unmarshal(j.Result, &l.Metrics) != nil {
			return nil
		}
		l.BaseModel = base.BaseModel
		l.Metrics.ModelPath = ""
		return l
	}
	return nil
}

// Tensor describes one input or output of a model.
type Tensor struct {
	Name       string  `json:"name"`
	Datatype   string  `json:"datatype" doc:"Open Inference Protocol datatype: FP32, INT64, …"`
	TensorType string  `json:"tensor_type,omitempty" doc:"The tensor ABI's type (abi/ABI.md §8.1): f32, i64, …; empty when the ABI cannot carry it."`
	Shape      []int64 `json:"shape" doc:"Dimensions; -1 is dynamic (any size)."`
}

// Registration is what an admin gives to register a model.
type Registration struct {
	Path        string
	Description string
	Version     string
}

// Error is a request the registry refuses, naming the field at fault.
type Error struct {
	NotFound bool
	Field    string
	Msg      string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Register registers a model under name, or replaces its registration,
// and reports whether it is new.
func (m *Models) Register(ctx context.Context, name string, r Registration) (*Model, bool, error) {
	if !abi.ValidModelName(name) {
		return nil, false, invalid("name", "%q is not a valid model name: use 1-128 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit, not ending in .onnx", name)
	}
	if len(r.Description) > 4000 || !utf8.ValidString(r.Description) {
		return nil, false, invalid("description", "must be UTF-8 of at most 4000 bytes")
	}
	if len(r.Version) > 128 || !utf8.ValidString(r.Version) {
		return nil, false, invalid("version", "must be UTF-8 of at most 128 bytes")
	}
	path, err := m.checkPath(r.Path)
	if err != nil {
		return nil, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	created, err := m.store.PutModel(ctx, store.Model{Name: name, Path: path, Description: r.Description, Version: r.Version})
	if err != nil {
		return nil, false, err
	}
	if err := m.link(name, path); err != nil {
		return nil, false, err
	}
	m.forget(name)
	if !created {
		m.unloadAll(name) // the accelerator may hold the previous file
	}
	rec, err := m.store.Model(ctx, name)
	if err != nil {
		return nil, false, err
	}
	return toModel(rec), created, nil
}

// checkPath validates where a model is: an absolute path to a folder
// holding model.onnx or to an .onnx file; none for a remote accelerator.
func (m *Models) checkPath(path string) (string, error) {
	if m.sup.Remote() {
		if path != "" {
			return "", invalid("path", "this server uses a remote accelerator (MILLRACE_ACCEL_URL), which holds its own models: register the name it serves, without a path")
		}
		return "", nil
	}
	const want = "a folder holding model.onnx (and its external data files), a pipeline folder holding " + PipelineIndex + ", or an .onnx file"
	if path == "" {
		return "", invalid("path", "is required: %s, on the server's disk", want)
	}
	if !filepath.IsAbs(path) {
		return "", invalid("path", "%q is relative: give an absolute path on the server's disk", path)
	}
	path = filepath.Clean(path)
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", invalid("path", "%s does not exist on the server", path)
	case err != nil:
		return "", invalid("path", "%v", err)
	case st.IsDir() && isPipeline(path):
		if err := checkPipeline(path); err != nil {
			return "", err
		}
	case st.IsDir():
		if !isFile(filepath.Join(path, "model.onnx")) {
			return "", invalid("path", "the folder %s holds no model.onnx; give %s", path, want)
		}
	case !st.Mode().IsRegular() || !strings.HasSuffix(path, ".onnx"):
		return "", invalid("path", "%s is not %s", path, want)
	}
	return path, nil
}

// link makes the model directory's entry for name point at path, and
// removes any other entry of that name. A no-op without a child.
func (m *Models) link(name, path string) error {
	dir := m.sup.ModelsDir()
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	folder, file := filepath.Join(dir, name), filepath.Join(dir, name+".onnx")
	entry, other := file, folder
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		entry, other = folder, file
	}
	if err := removeLink(other); err != nil {
		return err
	}
	if path == "" {
		return removeLink(entry)
	}
	if cur, err := os.Readlink(entry); err == nil && cur == path {
		return nil
	}
	// Replace atomically: a request reading the directory sees the old
	// link or the new one.
	suffix := make([]byte, 6)
	rand.Read(suffix)
	tmp := filepath.Join(dir, ".tmp-"+hex.EncodeToString(suffix))
	if err := os.Symlink(path, tmp); err != nil {
		return fmt.Errorf("linking model %s into %s: %w", name, dir, err)
	}
	if err := os.Rename(tmp, entry); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("linking model %s into %s: %w", name, dir, err)
	}
	return nil
}

// removeLink removes a symbolic link; anything else is left alone (the
// registry writes only links).
func removeLink(p string) error {
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode()&fs.ModeSymlink == 0 {
		return fmt.Errorf("%s is not a link the model registry made: move it away", p)
	}
	return os.Remove(p)
}

// Sync rebuilds the model directory from the store: a link per
// registered model, nothing else. The server calls it before starting
// the child.
func (m *Models) Sync(ctx context.Context) error {
	all, err := m.store.ListModels(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.syncLocked(all)
}

func (m *Models) syncLocked(all []store.Model) error {
	dir := m.sup.ModelsDir()
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	keep := map[string]bool{}
	var errs []error
	for _, rec := range all {
		if err := m.link(rec.Name, rec.Path); err != nil {
			errs = append(errs, err)
		}
		keep[rec.Name], keep[rec.Name+".onnx"] = true, true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := removeLink(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// List returns every registered model (without inputs and outputs), and
// brings the model directory in line with the store.
func (m *Models) List(ctx context.Context) ([]*Model, error) {
	all, err := m.store.ListModels(ctx)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if err := m.syncLocked(all); err != nil {
		slog.Warn("updating the accelerator's model directory", "err", err)
	}
	m.mu.Unlock()
	out := make([]*Model, 0, len(all))
	for _, rec := range all {
		md := toModel(rec)
		md.Training = m.lineage(ctx, rec)
		out = append(out, md)
	}
	return out, nil
}

// Get returns a registered model with its inputs and outputs, which it
// asks the accelerator for (loading the model there) unless cached. When
// the accelerator cannot answer, MetadataError says why.
func (m *Models) Get(ctx context.Context, name string) (*Model, error) {
	rec, err := m.store.Model(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &Error{NotFound: true, Field: "name", Msg: fmt.Sprintf("no model is registered as %q", name)}
	}
	if err != nil {
		return nil, err
	}
	out := toModel(rec)
	if out.Kind == "pipeline" {
		for _, part := range PipelineParts() {
			p := &Model{Name: name + "/" + part, Kind: "model", Path: filepath.Join(rec.Path, part), CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
			if md, _, err := m.metadata(ctx, rec, p.Name); err != nil {
				p.MetadataError = err.Error()
			} else {
				p.Inputs, p.Outputs = tensors(md.Inputs), tensors(md.Outputs)
			}
			out.Parts = append(out.Parts, p)
		}
		return out, nil
	}
	out.Training = m.lineage(ctx, rec)
	md, _, err := m.metadata(ctx, rec, rec.Name)
	if err != nil {
		out.MetadataError = err.Error()
		return out, nil
	}
	out.Inputs, out.Outputs = tensors(md.Inputs), tensors(md.Outputs)
	return out, nil
}

// forget drops the cached metadata of a model and of its parts. The
// caller holds m.mu.
func (m *Models) forget(name string) {
	delete(m.cache, name)
	for _, part := range PipelineParts() {
		delete(m.cache, name+"/"+part)
	}
}

// unloadAll unloads a model, or every part of a pipeline.
func (m *Models) unloadAll(name string) {
	m.unload(name)
	for _, part := range PipelineParts() {
		m.unload(name + "/" + part)
	}
}

// Remove unregisters a model; the accelerator unloads it.
func (m *Models) Remove(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.store.DeleteModel(ctx, name); errors.Is(err, store.ErrNotFound) {
		return &Error{NotFound: true, Field: "name", Msg: fmt.Sprintf("no model is registered as %q", name)}
	} else if err != nil {
		return err
	}
	m.forget(name)
	if err := m.link(name, ""); err != nil {
		return err
	}
	m.unloadAll(name)
	return nil
}

// unload asks the accelerator to drop its session of a model, if it has
// one; requests in flight finish first. Best effort: a restart drops it
// anyway, and a remote accelerator's models are its own business.
func (m *Models) unload(name string) {
	if m.sup.Remote() {
		return
	}
	cl, _, err := m.sup.current()
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Unload(ctx, name); err != nil && client.StatusOf(err) != http.StatusNotFound {
		slog.Warn("unloading a model from the accelerator", "model", name, "err", err)
	}
}

func toModel(rec store.Model) *Model {
	kind := "model"
	if isPipeline(rec.Path) {
		kind = "pipeline"
	}
	return &Model{Name: rec.Name, Kind: kind, Path: rec.Path, Description: rec.Description, Version: rec.Version, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt}
}

func tensors(ts []oip.TensorMetadata) []Tensor {
	out := make([]Tensor, len(ts))
	for i, t := range ts {
		out[i] = Tensor{Name: t.Name, Datatype: string(t.Datatype), Shape: t.Shape}
		if out[i].Shape == nil {
			out[i].Shape = []int64{}
		}
		if typ, ok := abi.NNTensorTypeOf(string(t.Datatype)); ok {
			out[i].TensorType = typ.String()
		}
	}
	return out
}

// metadata returns the inputs and outputs of a registered model, or of a
// part of it (served as served, rec.Name or rec.Name/PART): cached per
// path and child, else asked of the accelerator.
func (m *Models) metadata(ctx context.Context, rec store.Model, served string) (*oip.ModelMetadata, uint64, error) {
	if !m.sup.Remote() && rec.Path == "" {
		return nil, 0, fmt.Errorf("%w: model %q was registered without a path (for a remote accelerator): register it again with its path", sandbox.ErrModelNotFound, rec.Name)
	}
	cl, gen, err := m.sup.current()
	if err != nil {
		return nil, 0, err
	}
	m.mu.Lock()
	c, ok := m.cache[served]
	hit := ok && c.path == rec.Path && c.gen == gen
	var linkErr error
	if !hit {
		// Another server may have changed the registration: the link
		// follows the store.
		linkErr = m.link(rec.Name, rec.Path)
	}
	m.mu.Unlock()
	if hit {
		return c.md, gen, nil
	}
	if linkErr != nil {
		return nil, 0, linkErr
	}
	md, err := cl.ModelMetadata(ctx, served)
	if err != nil {
		return nil, 0, m.wrap(err, "loading model "+served)
	}
	m.mu.Lock()
	m.cache[served] = cachedMetadata{path: rec.Path, gen: gen, md: md}
	m.mu.Unlock()
	return md, gen, nil
}

// LoadModel implements sandbox.Accel: the registered model's inputs and
// outputs, with the child it was loaded on.
func (m *Models) LoadModel(ctx context.Context, name string) (*sandbox.AccelModel, error) {
	base, part, isPart := strings.Cut(name, "/")
	rec, err := m.store.Model(ctx, base)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no model is registered as %q (an admin registers it with PUT /v1/models/%s)", sandbox.ErrModelNotFound, base, base)
	}
	if err != nil {
		return nil, err
	}
	pipeline := isPipeline(rec.Path)
	switch {
	case isPart && !pipeline:
		return nil, fmt.Errorf("%w: model %q is not a pipeline, so it has no part %q", sandbox.ErrModelNotFound, base, part)
	case isPart && !isPartName(part):
		return nil, fmt.Errorf("%w: pipeline %q has no part %q; its parts are %s", sandbox.ErrModelNotFound, base, part, strings.Join(PipelineParts(), ", "))
	case !isPart && pipeline:
		return nil, fmt.Errorf("%w: %q is a pipeline: load one of its parts, %s/%s", sandbox.ErrModelNotFound, base, base, strings.Join(PipelineParts(), ", "+base+"/"))
	}
	md, gen, err := m.metadata(ctx, rec, name)
	if err != nil {
		return nil, err
	}
	return &sandbox.AccelModel{Name: name, Inputs: md.Inputs, Outputs: md.Outputs, Handle: gen}, nil
}

// Infer implements sandbox.Accel: inputs travel as binary tensor data. A
// model loaded on a child that has since exited fails: its session, and
// perhaps its file, are gone, and the module must load it again.
func (m *Models) Infer(ctx context.Context, am *sandbox.AccelModel, inputs []oip.Tensor) ([]oip.Tensor, error) {
	cl, gen, err := m.sup.current()
	if err != nil {
		return nil, err
	}
	if loaded, _ := am.Handle.(uint64); loaded != gen {
		last := m.sup.Status(ctx).LastError
		return nil, fmt.Errorf("the accelerator restarted since the model was loaded (%s): load it again", last)
	}
	resp, err := cl.Infer(ctx, am.Name, inputs)
	if err != nil {
		return nil, m.wrap(err, "inference")
	}
	return resp.Outputs, nil
}

// wrap classifies an accelerator error for the tensor ABI's errno.
func (m *Models) wrap(err error, what string) error {
	var ce *client.Error
	if errors.As(err, &ce) {
		kind := map[int]error{
			http.StatusBadRequest:            sandbox.ErrAccelInput,
			http.StatusNotFound:              sandbox.ErrModelNotFound,
			http.StatusRequestEntityTooLarge: sandbox.ErrAccelTooLarge,
			http.StatusNotImplemented:        sandbox.ErrAccelUnsupported,
			http.StatusServiceUnavailable:    sandbox.ErrAccelBusy,
		}[ce.Status]
		if kind == nil {
			return fmt.Errorf("%s: the accelerator answered %d: %s", what, ce.Status, ce.Message)
		}
		return fmt.Errorf("%w: %s", kind, ce.Message)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return err // the invocation ended: the sandbox words it
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w: the accelerator does not accept connections (%v)", sandbox.ErrAccelBusy, op.Err)
	}
	if !m.sup.Remote() {
		return fmt.Errorf("%s: the accelerator failed during the request (%v); the server restarts it if it exited", what, err)
	}
	return fmt.Errorf("%s: the remote accelerator failed during the request: %v", what, err)
}

var _ sandbox.AccelFiles = (*Models)(nil)

// ModelFile implements sandbox.AccelFiles: a configuration or tokenizer
// file (.json or .txt, at most MaxModelFileBytes) inside the folder of a
// registered pipeline. Weights are never served: the accelerator loads
// them.
func (m *Models) ModelFile(ctx context.Context, name, path string) ([]byte, error) {
	rec, err := m.store.Model(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no model is registered as %q", sandbox.ErrModelNotFound, name)
	}
	if err != nil {
		return nil, err
	}
	if !isPipeline(rec.Path) {
		return nil, fmt.Errorf("%w: model %q is not a pipeline folder (one holding %s): only pipelines' files can be read", sandbox.ErrModelNotFound, name, PipelineIndex)
	}
	if err := checkModelFilePath(path); err != nil {
		return nil, fmt.Errorf("%w: %v", sandbox.ErrAccelInput, err)
	}
	data, err := readModelFile(rec.Path, path)
	switch {
	case errors.Is(err, errTooLarge):
		return nil, fmt.Errorf("%w: %v", sandbox.ErrAccelTooLarge, err)
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w: pipeline %q has no file %s", sandbox.ErrModelNotFound, name, path)
	case err != nil:
		// os.Root refuses paths that leave the folder, through links too.
		return nil, fmt.Errorf("%w: %v", sandbox.ErrAccelInput, err)
	}
	return data, nil
}
