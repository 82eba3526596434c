package httpapi_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/httpapi"
	"github.com/stretchr/testify/require"
)

// The model registry's endpoints, on a server whose accelerator is off:
// registrations are checked and stored all the same, and the metadata
// says why it is missing. (server/accel tests the registry on the real
// accelerator.)
func TestModelEndpoints(t *testing.T) {
	t.Parallel()
	f := setupWith(t, func(d *httpapi.Deps) {
		d.Accel = accel.New(accel.Config{Mode: accel.ModeOff})
		d.Models = accel.NewModels(d.Store, d.Accel)
	})
	dir := t.TempDir()
	file := filepath.Join(dir, "arith.onnx")
	require.NoError(t, os.WriteFile(file, []byte("not checked until loaded"), 0o644))

	r := f.doJSON(t, http.MethodPut, "/v1/models/arith", map[string]any{"path": file, "description": "adds"})
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	require.Equal(t, "arith", r.json(t)["name"])
	r = f.doJSON(t, http.MethodPut, "/v1/models/arith", map[string]any{"path": file, "version": "2"})
	require.Equal(t, http.StatusOK, r.status, "a second registration replaces the first")

	r = f.doJSON(t, http.MethodPut, "/v1/models/arith", map[string]any{"path": "relative.onnx"})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	body := r.json(t)
	require.Contains(t, body["detail"], "path: \"relative.onnx\" is relative")
	require.Equal(t, "body.path", body["errors"].([]any)[0].(map[string]any)["location"])
	r = f.doJSON(t, http.MethodPut, "/v1/models/Bad", map[string]any{"path": file})
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "path.name", r.json(t)["errors"].([]any)[0].(map[string]any)["location"])

	r = f.doJSON(t, http.MethodGet, "/v1/models", nil)
	require.Equal(t, http.StatusOK, r.status)
	models := r.json(t)["models"].([]any)
	require.Len(t, models, 1)
	require.Equal(t, "2", models[0].(map[string]any)["version"])

	r = f.doJSON(t, http.MethodGet, "/v1/models/arith", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.json(t)["metadata_error"], "disabled: local AI is off on this server")

	r = f.doJSON(t, http.MethodGet, "/v1/accel", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "disabled", r.json(t)["state"])

	r = f.do(t, "", http.MethodGet, "/readyz", nil, "")
	require.Equal(t, http.StatusOK, r.status, "the accelerator does not decide readiness")
	require.Equal(t, "disabled", r.json(t)["accel"].(map[string]any)["state"])

	require.Equal(t, http.StatusNoContent, f.doJSON(t, http.MethodDelete, "/v1/models/arith", nil).status)
	r = f.doJSON(t, http.MethodDelete, "/v1/models/arith", nil)
	require.Equal(t, http.StatusNotFound, r.status)
	require.Equal(t, http.StatusNotFound, f.doJSON(t, http.MethodGet, "/v1/models/arith", nil).status)

	// A server without a registry says so.
	bare := setup(t)
	require.Equal(t, http.StatusServiceUnavailable, bare.doJSON(t, http.MethodGet, "/v1/models", nil).status)
}
