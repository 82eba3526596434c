package training

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/accel/client"
	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/accel/trainjob"
	"github.com/millrace/millrace/server/accel"
)

// baseFile is a fine_tune_onnx job's copy of its base model, in its
// folder: the job trains from what the model was when the job was
// created, so re-registering the base model cannot change a job midway
// (a resumed job would no longer match its checkpoint).
const baseFile = "base.onnx"

// settings is what the training_jobs.hyperparameters column holds: the
// hyperparameters and, for fine_tune_onnx, the base model, in one JSON
// object (the column predates fine-tuning; a reader that wants only the
// hyperparameters ignores base_model).
type settings struct {
	trainjob.Hyperparameters
	BaseModel *trainjob.BaseModel `json:"base_model,omitempty"`
}

// checkBase checks that the model registered as name can be fine-tuned on
// a dataset with labels: an ONNX text classifier of the same labels, by
// its inputs and outputs as ONNX Runtime sees them and its model_info.
// Whether onnx-gomlx converts each of its operators is known only when
// the accelerator imports it: a job on a model it cannot convert fails
// with the operator's name.
func (m *Manager) checkBase(ctx context.Context, name string, labels []string) (*accel.Model, trainjob.ModelInfo, error) {
	bad := func(format string, args ...any) error {
		return &Error{Status: 422, Field: "body.base_model", Msg: fmt.Sprintf(format, args...)}
	}
	var info trainjob.ModelInfo
	if !abi.ValidModelName(name) {
		return nil, info, bad("%q is not a valid model name", name)
	}
	md, err := m.models.Get(ctx, name)
	var ae *accel.Error
	if errors.As(err, &ae) && ae.NotFound {
		return nil, info, bad("no model is registered as %q (GET /v1/models lists them)", name)
	}
	if err != nil {
		return nil, info, err
	}
	if md.Kind != "model" {
		return nil, info, bad("%q is a %s; fine-tuning takes one ONNX text classifier", name, md.Kind)
	}
	if md.MetadataError != "" {
		return nil, info, bad("model %q does not load in ONNX Runtime (is it an ONNX model?): %s", name, md.MetadataError)
	}
	want := "inputs ids (INT64) and weights (FP32), outputs logits or probabilities (FP32) and model_info (UINT8), as text_classification jobs export"
	if !hasTensors(md.Inputs, true, map[string]string{"ids": "INT64", "weights": "FP32"}) ||
		!hasTensors(md.Outputs, false, map[string]string{"model_info": "UINT8"}) ||
		!(hasTensors(md.Outputs, false, map[string]string{"logits": "FP32"}) || hasTensors(md.Outputs, false, map[string]string{"probabilities": "FP32"})) {
		return nil, info, bad("model %q is not a text classifier: it has inputs %s and outputs %s; want %s", name, describe(md.Inputs), describe(md.Outputs), want)
	}
	if info, err = m.modelInfo(ctx, name); err != nil {
		return nil, info, err
	}
	if err := trainjob.CheckLabels(info.Labels, labels); err != nil {
		return nil, info, bad("model %q: %v", name, err)
	}
	return md, info, nil
}

func hasTensors(ts []accel.Tensor, exactly bool, want map[string]string) bool {
	if exactly && len(ts) != len(want) {
		return false
	}
	found := 0
	for _, t := range ts {
		if typ, ok := want[t.Name]; ok && typ == t.Datatype && (t.Datatype == "UINT8" || len(t.Shape) == 2) {
			found++
		}
	}
	return found == len(want)
}

func describe(ts []accel.Tensor) string {
	var out []string
	for _, t := range ts {
		out = append(out, fmt.Sprintf("%s (%s %v)", t.Name, t.Datatype, t.Shape))
	}
	if len(out) == 0 {
		return "none"
	}
	return fmt.Sprint(out)
}

// modelInfo asks the accelerator for a classifier's model_info output
// (one empty text), as the text_classify module does.
func (m *Manager) modelInfo(ctx context.Context, name string) (trainjob.ModelInfo, error) {
	var info trainjob.ModelInfo
	cl, err := m.accel.Client()
	if err != nil {
		return info, &Error{Status: 503, Msg: fmt.Sprintf("reading the base model needs the accelerator, which is not ready (%v): try again", err)}
	}
	resp, err := cl.Infer(ctx, name, []oip.Tensor{
		oip.NewTensor("ids", []int64{1, 1}, []int64{0}), oip.NewTensor("weights", []int64{1, 1}, []float32{0}),
	}, client.Outputs("model_info"))
	if err != nil {
		return info, &Error{Status: 422, Field: "body.base_model", Msg: fmt.Sprintf("model %q does not run as a text classifier: %v", name, err)}
	}
	idx := slices.IndexFunc(resp.Outputs, func(t oip.Tensor) bool { return t.Name == "model_info" })
	if idx < 0 {
		return info, &Error{Status: 422, Field: "body.base_model", Msg: fmt.Sprintf("model %q gave no model_info", name)}
	}
	raw, err := oip.Values[uint8](resp.Outputs[idx])
	if err == nil {
		err = json.Unmarshal(raw, &info)
	}
	if err != nil || info.Task != trainjob.TaskTextClassification || len(info.Labels) < 2 {
		return info, &Error{Status: 422, Field: "body.base_model", Msg: fmt.Sprintf("model %q's model_info is not a trained text classifier's (task, labels, featuriser): %v", name, err)}
	}
	return info, nil
}

// copyBase copies a registered model's ONNX file (path is the file or a
// folder holding model.onnx) into the job folder dir.
func copyBase(path, dir string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "model.onnx")
	}
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return err
	}
	if st.Size() > trainjob.MaxBaseModelBytes {
		return &Error{Status: 422, Field: "body.base_model", Msg: fmt.Sprintf("the model is %d bytes; fine-tuning takes models of at most %d", st.Size(), trainjob.MaxBaseModelBytes)}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	dst, err := os.Create(filepath.Join(dir, baseFile))
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}
