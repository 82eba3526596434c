package oip

import "encoding/json"

// HeaderContentLength is the binary tensor data extension's header: the
// length of the JSON object at the start of a body that binary tensor data
// follows.
const HeaderContentLength = "Inference-Header-Content-Length"

// Extension names reported in ServerMetadata.
const (
	ExtensionBinaryData = "binary_tensor_data"
	ExtensionRepository = "model_repository"
)

// PlatformONNX is the platform of an ONNX Runtime model, as Triton names it.
const PlatformONNX = "onnxruntime_onnx"

// ServerMetadata is the answer to GET /v2.
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// TensorMetadata describes one model input or output. A dimension of -1
// is dynamic: any size is accepted.
type TensorMetadata struct {
	Name     string   `json:"name"`
	Datatype Datatype `json:"datatype"`
	Shape    []int64  `json:"shape"`
}

// ModelMetadata is the answer to GET /v2/models/{name}.
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// Model states in a repository index.
const (
	StateReady       = "READY"
	StateUnavailable = "UNAVAILABLE"
)

// RepositoryModel is one entry of a model repository index (Triton's POST
// /v2/repository/index, and GET /v2/models here).
type RepositoryModel struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	State   string `json:"state,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// RepositoryIndexRequest is the optional body of POST /v2/repository/index.
type RepositoryIndexRequest struct {
	// Ready asks for loaded models only.
	Ready bool `json:"ready,omitempty"`
}

// ModelList is the answer to GET /v2/models.
type ModelList struct {
	Models []RepositoryModel `json:"models"`
}

// LiveResponse is the answer to GET /v2/health/live.
type LiveResponse struct {
	Live bool `json:"live"`
}

// ReadyResponse is the answer to GET /v2/health/ready and
// GET /v2/models/{name}/ready. Error says why it is not ready.
type ReadyResponse struct {
	Name  string `json:"name,omitempty"`
	Ready bool   `json:"ready"`
	Error string `json:"error,omitempty"`
}

// ErrorResponse is the body of every failed request.
type ErrorResponse struct {
	Error string `json:"error"`
}

// wireRequest is an inference request's JSON object; wireTensor its
// inputs (and a response's outputs).
type wireRequest struct {
	ID         string                     `json:"id,omitempty"`
	Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
	Inputs     []wireTensor               `json:"inputs"`
	Outputs    []wireOutput               `json:"outputs,omitempty"`
}

type wireResponse struct {
	ModelName    string                     `json:"model_name"`
	ModelVersion string                     `json:"model_version,omitempty"`
	ID           string                     `json:"id,omitempty"`
	Parameters   map[string]json.RawMessage `json:"parameters,omitempty"`
	Outputs      []wireTensor               `json:"outputs"`
}

type wireTensor struct {
	Name       string                     `json:"name"`
	Shape      []int64                    `json:"shape"`
	Datatype   Datatype                   `json:"datatype"`
	Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
	Data       json.RawMessage            `json:"data,omitempty"`
}

type wireOutput struct {
	Name       string                     `json:"name"`
	Parameters map[string]json.RawMessage `json:"parameters,omitempty"`
}

// Parameter names of the binary tensor data extension.
const (
	paramBinaryDataSize   = "binary_data_size"
	paramBinaryData       = "binary_data"
	paramBinaryDataOutput = "binary_data_output"
)
