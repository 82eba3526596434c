package training

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/millrace/millrace/accel/textfeatures"
)

// The best epoch's weights, kept beside model.onnx so that the GoMLX
// model can be rebuilt from exactly what was exported (Predict).
const (
	bestWeightsFile = "best.weights"
	bestInfoFile    = "best.json"
)

type bestInfo struct {
	Info            ModelInfo       `json:"info"`
	Hyperparameters Hyperparameters `json:"hyperparameters"`
	Classes         int             `json:"classes"`
}

func (m *model) saveBest(dir string, info ModelInfo) error {
	var buf []byte
	for _, v := range [][2]string{{scopeEmbedding, varTable}, {scopeHead, varHeadWeights}, {scopeHead, varHeadBias}} {
		values, err := m.variable(v[0], v[1])
		if err != nil {
			return err
		}
		buf = append(buf, floatBytes(values)...)
	}
	if err := writeFileAtomic(filepath.Join(dir, bestWeightsFile), buf); err != nil {
		return err
	}
	return writeJSONAtomic(filepath.Join(dir, bestInfoFile), bestInfo{Info: info, Hyperparameters: m.h, Classes: m.classes})
}

// Predict returns the class probabilities of texts from the best model of
// the job folder dir, computed by GoMLX: the reference the exported ONNX
// model is checked against.
func Predict(dir string, texts []string) ([][]float32, error) {
	data, err := os.ReadFile(filepath.Join(dir, bestInfoFile))
	if err != nil {
		return nil, err
	}
	var bi bestInfo
	if err := json.Unmarshal(data, &bi); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, bestWeightsFile))
	if err != nil {
		return nil, err
	}
	h := bi.Hyperparameters
	sizes := []int{h.Buckets * h.EmbeddingDim, h.EmbeddingDim * bi.Classes, bi.Classes}
	total := 0
	for _, s := range sizes {
		total += s
	}
	if len(raw) != 4*total {
		return nil, fmt.Errorf("%s: %d bytes, want %d", bestWeightsFile, len(raw), 4*total)
	}
	values := make([]float32, total)
	for i := range values {
		values[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	b, err := backend()
	if err != nil {
		return nil, err
	}
	m := newModel(b, h, bi.Classes)
	m.ctx.In(scopeEmbedding).VariableWithValue(varTable, tensors.FromFlatDataAndDimensions(values[:sizes[0]], h.Buckets, h.EmbeddingDim))
	m.ctx.In(scopeHead).VariableWithValue(varHeadWeights, tensors.FromFlatDataAndDimensions(values[sizes[0]:sizes[0]+sizes[1]], h.EmbeddingDim, bi.Classes))
	m.ctx.In(scopeHead).VariableWithValue(varHeadBias, tensors.FromFlatDataAndDimensions(values[sizes[0]+sizes[1]:], bi.Classes))

	return m.probabilities(featurise(texts, ModelInfo{Buckets: h.Buckets, Features: h.Features()}))
}

// featurise encodes texts for a model as training does (no labels).
func featurise(texts []string, info ModelInfo) encoded {
	enc := encoded{bags: make([]textfeatures.Features, len(texts)), labels: make([]int32, len(texts))}
	for i, t := range texts {
		f := info.Features.Featurise(t)
		for j := range f.IDs {
			f.IDs[j] %= int64(info.Buckets)
		}
		enc.bags[i] = f
	}
	return enc
}
