package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/client"
	"github.com/millrace/millrace/accel/internal/testenv"
	"github.com/millrace/millrace/accel/modeldir"
	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/accel/onnxbuild"
	"github.com/millrace/millrace/accel/service"
	"github.com/millrace/millrace/accel/sessions"
)

type fixture struct {
	dir string
	mgr *sessions.Manager
	srv *httptest.Server
	c   *client.Client
}

func setup(t testing.TB, scfg sessions.Config, cfg service.Config) *fixture {
	t.Helper()
	if scfg.LibraryPath == "" {
		scfg.LibraryPath = testenv.LibraryPath(t)
	}
	dir := testenv.ModelDir(t, map[string][]byte{"arith": onnxbuild.Arith(), "echo": onnxbuild.Echo()}, true)
	mgr := sessions.New(modeldir.New(dir), scfg)
	t.Cleanup(mgr.Close)
	srv := httptest.NewServer(service.New(mgr, cfg))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, client.WithToken(cfg.Token))
	require.NoError(t, err)
	return &fixture{dir: dir, mgr: mgr, srv: srv, c: c}
}

// post sends a raw request and returns the status and the decoded error.
func (f *fixture) post(t *testing.T, path string, header map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		var e oip.ErrorResponse
		require.NoError(t, json.Unmarshal(data, &e), "error bodies are JSON: %s", data)
		require.NotEmpty(t, e.Error)
		return resp.StatusCode, e.Error
	}
	return resp.StatusCode, string(data)
}

func arithInputs(a, b []float32) []oip.Tensor {
	shape := []int64{int64(len(a) / 3), 3}
	return []oip.Tensor{oip.NewTensor("a", shape, a), oip.NewTensor("b", shape, b)}
}

func values(t *testing.T, resp *oip.InferResponse, name string) []float32 {
	t.Helper()
	out, ok := resp.Output(name)
	require.True(t, ok, "output %q", name)
	v, err := oip.Values[float32](out)
	require.NoError(t, err)
	return v
}

func TestHealthAndMetadata(t *testing.T) {
	t.Parallel()
	f := setup(t, sessions.Config{}, service.Config{Version: "test"})
	ctx := context.Background()
	require.NoError(t, f.c.Live(ctx))
	require.NoError(t, f.c.Ready(ctx))
	md, err := f.c.ServerMetadata(ctx)
	require.NoError(t, err)
	require.Equal(t, &oip.ServerMetadata{Name: "millrace-accel", Version: "test", Extensions: []string{"binary_tensor_data", "model_repository"}}, md)

	models, err := f.c.Models(ctx, false)
	require.NoError(t, err)
	require.Equal(t, []oip.RepositoryModel{
		{Name: "arith", Version: "1", State: "UNAVAILABLE", Reason: "unloaded (loads on first use)"},
		{Name: "echo", Version: "1", State: "UNAVAILABLE", Reason: "unloaded (loads on first use)"},
		{Name: "ocr_det", Version: "1", State: "UNAVAILABLE", Reason: "unloaded (loads on first use)"},
		{Name: "ocr_rec", Version: "1", State: "UNAVAILABLE", Reason: "unloaded (loads on first use)"},
	}, models)

	// Metadata loads the model; the list says so.
	mm, err := f.c.ModelMetadata(ctx, "arith")
	require.NoError(t, err)
	require.Equal(t, "onnxruntime_onnx", mm.Platform)
	require.Equal(t, []oip.TensorMetadata{{Name: "a", Datatype: "FP32", Shape: []int64{-1, 3}}, {Name: "b", Datatype: "FP32", Shape: []int64{-1, 3}}}, mm.Inputs)
	resp, err := http.Get(f.srv.URL + "/v2/models")
	require.NoError(t, err)
	var list oip.ModelList
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	resp.Body.Close()
	require.Len(t, list.Models, 4)
	require.Equal(t, oip.RepositoryModel{Name: "arith", Version: "1", State: "READY"}, list.Models[0])
	ready, err := f.c.Models(ctx, true)
	require.NoError(t, err)
	require.Equal(t, []oip.RepositoryModel{{Name: "arith", Version: "1", State: "READY"}}, ready)

	// The versioned path works for the model's version only.
	resp, err = http.Get(f.srv.URL + "/v2/models/arith/versions/1")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Get(f.srv.URL + "/v2/models/arith/versions/2")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestOCRModels(t *testing.T) {
	t.Parallel()
	f := setup(t, sessions.Config{IntraOpThreads: 1}, service.Config{})
	ctx := context.Background()

	det, err := f.c.ModelMetadata(ctx, "ocr_det")
	require.NoError(t, err)
	require.Equal(t, []oip.TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 3, -1, -1}}}, det.Inputs)
	require.Len(t, det.Outputs, 1)
	require.Equal(t, oip.FP32, det.Outputs[0].Datatype)
	require.Equal(t, []int64{-1, 1, -1, -1}, det.Outputs[0].Shape)

	rec, err := f.c.ModelMetadata(ctx, "ocr_rec")
	require.NoError(t, err)
	require.Equal(t, []oip.TensorMetadata{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 3, 48, -1}}}, rec.Inputs)
	require.Len(t, rec.Outputs, 1)
	dict, err := os.ReadFile(filepath.Join(testenv.OCRDir(t), testenv.Dictionary))
	require.NoError(t, err)
	classes := int64(len(strings.Split(strings.TrimRight(string(dict), "\n"), "\n"))) + 2 // + CTC blank + space
	require.Equal(t, []int64{-1, -1, classes}, rec.Outputs[0].Shape)

	// Detection on a 64×64 image of a dark bar on white: a probability
	// map of the image's size.
	img := make([]float32, 3*64*64)
	for c := range 3 {
		for y := range 64 {
			for x := range 64 {
				v := float32(1) // normalised white
				if y >= 24 && y < 40 && x >= 8 && x < 56 {
					v = -1
				}
				img[(c*64+y)*64+x] = v
			}
		}
	}
	resp, err := f.c.Infer(ctx, "ocr_det", []oip.Tensor{oip.NewTensor("x", []int64{1, 3, 64, 64}, img)})
	require.NoError(t, err)
	out := resp.Outputs[0]
	require.Equal(t, []int64{1, 1, 64, 64}, out.Shape)
	probs, err := oip.Values[float32](out)
	require.NoError(t, err)
	for _, p := range probs {
		require.True(t, p >= 0 && p <= 1, "probability %v", p)
	}

	// Recognition of a 48×320 strip: one distribution over the
	// dictionary per 8 pixels of width.
	strip := make([]float32, 3*48*320)
	resp, err = f.c.Infer(ctx, "ocr_rec", []oip.Tensor{oip.NewTensor("x", []int64{1, 3, 48, 320}, strip)})
	require.NoError(t, err)
	require.Equal(t, []int64{1, 40, classes}, resp.Outputs[0].Shape)
	scores, err := oip.Values[float32](resp.Outputs[0])
	require.NoError(t, err)
	var sum float64
	for _, s := range scores[:classes] {
		sum += float64(s)
	}
	require.InDelta(t, 1, sum, 1e-3, "softmax over the classes")
}

func TestInferJSONAndBinary(t *testing.T) {
	t.Parallel()
	f := setup(t, sessions.Config{}, service.Config{})
	ctx := context.Background()
	a := []float32{1, 2, 3, 0.1, 1e-7, -3.25e38}
	b := []float32{4, 5, 6, 0.2, 3, 0.5}
	wantSum := make([]float32, len(a))
	wantProd := make([]float32, len(a))
	for i := range a {
		wantSum[i], wantProd[i] = a[i]+b[i], a[i]*b[i]
	}
	for _, opts := range [][]client.InferOption{nil, {client.JSON()}} {
		resp, err := f.c.Infer(ctx, "arith", arithInputs(a, b), append(opts, client.ID("req-7"))...)
		require.NoError(t, err)
		require.Equal(t, "arith", resp.ModelName)
		require.Equal(t, "1", resp.ModelVersion)
		require.Equal(t, "req-7", resp.ID)
		require.Equal(t, wantSum, values(t, resp, "sum"))
		require.Equal(t, wantProd, values(t, resp, "product"))
		require.Equal(t, []int64{2, 3}, resp.Outputs[0].Shape)
	}

	// One output, as asked.
	resp, err := f.c.Infer(ctx, "arith", arithInputs(a, b), client.Outputs("product"))
	require.NoError(t, err)
	require.Len(t, resp.Outputs, 1)
	require.Equal(t, wantProd, values(t, resp, "product"))

	// A hand-written request: JSON inputs (nested), one output binary and
	// one JSON.
	body := `{"inputs":[{"name":"a","shape":[1,3],"datatype":"FP32","data":[[1,2,3]]},` +
		`{"name":"b","shape":[1,3],"datatype":"FP32","data":[0.5,0.5,0.5]}],` +
		`"outputs":[{"name":"sum","parameters":{"binary_data":true}},{"name":"product"}]}`
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/v2/models/arith/infer", strings.NewReader(body))
	require.NoError(t, err)
	hr, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	data, err := io.ReadAll(hr.Body)
	hr.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, hr.StatusCode, string(data))
	hl := hr.Header.Get("Inference-Header-Content-Length")
	n, err := strconv.Atoi(hl)
	require.NoError(t, err)
	require.Contains(t, string(data[:n]), `{"name":"product","shape":[1,3],"datatype":"FP32","data":[0.5,1,1.5]}`)
	require.Contains(t, string(data[:n]), `"parameters":{"binary_data_size":12}`)
	parsed, err := oip.ParseInferResponse(hl, data)
	require.NoError(t, err)
	require.Equal(t, []float32{1.5, 2.5, 3.5}, values(t, parsed, "sum"))
}

func TestInferErrors(t *testing.T) {
	t.Parallel()
	f := setup(t, sessions.Config{}, service.Config{MaxBodyBytes: 4096})
	in := func(name, dtype, shape, data string) string {
		return fmt.Sprintf(`{"name":%q,"datatype":%q,"shape":%s,"data":%s}`, name, dtype, shape, data)
	}
	ok := in("a", "FP32", "[1,3]", "[1,2,3]")
	req := func(inputs ...string) string { return `{"inputs":[` + strings.Join(inputs, ",") + `]}` }
	binHeader := `{"inputs":[{"name":"a","datatype":"FP32","shape":[1,3],"parameters":{"binary_data_size":12}},{"name":"b","datatype":"FP32","shape":[1,3],"parameters":{"binary_data_size":12}}]}`
	for _, c := range []struct {
		name, path string
		header     map[string]string
		body       string
		status     int
		want       string
	}{
		{"unknown model", "/v2/models/nope/infer", nil, req(ok), 404, `no model "nope"`},
		{"bad model name", "/v2/models/..%2Fetc/infer", nil, req(ok), 404, "not a valid model name"},
		{"unknown input", "/v2/models/arith/infer", nil, req(ok, in("b", "FP32", "[1,3]", "[1,2,3]"), in("c", "FP32", "[1]", "[1]")), 400, `model "arith" has no input "c"`},
		{"missing input", "/v2/models/arith/infer", nil, req(ok), 400, `input "b" is missing`},
		{"wrong dtype", "/v2/models/arith/infer", nil, req(ok, in("b", "INT64", "[1,3]", "[1,2,3]")), 400, `input "b" is INT64, but model "arith" takes FP32`},
		{"wrong rank", "/v2/models/arith/infer", nil, req(ok, in("b", "FP32", "[3]", "[1,2,3]")), 400, "rank 1, but the model wants rank 2"},
		{"wrong dim", "/v2/models/arith/infer", nil, req(ok, in("b", "FP32", "[1,2]", "[1,2]")), 400, "dimension 1 is 2, but the model wants 3"},
		{"element count", "/v2/models/arith/infer", nil, req(ok, in("b", "FP32", "[1,3]", "[1,2]")), 400, "data has 2 elements, but its shape holds 3"},
		{"unknown output", "/v2/models/arith/infer", nil, `{"inputs":[` + ok + `,` + in("b", "FP32", "[1,3]", "[1,2,3]") + `],"outputs":[{"name":"quotient"}]}`, 400, `has no output "quotient"`},
		{"malformed json", "/v2/models/arith/infer", nil, `{"inputs":`, 400, "malformed inference request JSON"},
		{"malformed binary header", "/v2/models/arith/infer", map[string]string{"Inference-Header-Content-Length": "abc"}, binHeader, 400, "malformed Inference-Header-Content-Length"},
		{"binary header too long", "/v2/models/arith/infer", map[string]string{"Inference-Header-Content-Length": "100000"}, binHeader, 400, "exceeds the body's"},
		{"binary data short", "/v2/models/arith/infer", map[string]string{"Inference-Header-Content-Length": strconv.Itoa(len(binHeader))}, binHeader + strings.Repeat("x", 20), 400, "binary data ends 4 bytes short"},
		{"body too large", "/v2/models/arith/infer", nil, req(in("a", "FP32", "[1,3]", "["+strings.Repeat("1,", 3000)+"1]")), 413, "exceeds the service's limit of 4096 bytes"},
		{"wrong version", "/v2/models/arith/versions/9/infer", nil, req(ok, in("b", "FP32", "[1,3]", "[1,2,3]")), 404, `has no version "9"`},
		{"no endpoint", "/v2/nothing", nil, "", 404, "no endpoint"},
		{"wrong method", "/v2/health/live", nil, "", 405, "use GET"},
		{"index body", "/v2/repository/index", nil, "{", 400, "malformed repository index request"},
		{"unload unknown", "/v2/repository/models/nope/unload", nil, "", 404, `no model "nope"`},
		{"load broken", "/v2/repository/models/nope/load", nil, "", 404, `no model "nope"`},
	} {
		status, msg := f.post(t, c.path, c.header, c.body)
		require.Equal(t, c.status, status, "%s: %s", c.name, msg)
		require.Contains(t, msg, c.want, c.name)
	}
	// The client reports the status and message.
	_, err := f.c.Infer(context.Background(), "arith", []oip.Tensor{oip.NewTensor("a", []int64{1, 3}, []int32{1, 2, 3})})
	require.Equal(t, http.StatusBadRequest, client.StatusOf(err))
	require.ErrorContains(t, err, `input "a" is INT32`)
}

func TestLoadUnloadIdle(t *testing.T) {
	t.Parallel()
	f := setup(t, sessions.Config{IdleTimeout: time.Hour}, service.Config{})
	ctx := context.Background()
	ready, err := f.c.ModelReady(ctx, "arith")
	require.NoError(t, err)
	require.False(t, ready)
	_, err = f.c.ModelReady(ctx, "nope")
	require.Equal(t, http.StatusNotFound, client.StatusOf(err))

	require.NoError(t, f.c.Load(ctx, "arith"))
	ready, err = f.c.ModelReady(ctx, "arith")
	require.NoError(t, err)
	require.True(t, ready)
	require.NoError(t, f.c.Unload(ctx, "arith"))
	ready, err = f.c.ModelReady(ctx, "arith")
	require.NoError(t, err)
	require.False(t, ready)

	// Idle unloading: a sweep an hour later drops the model; the next
	// request loads it again.
	_, err = f.c.Infer(ctx, "arith", arithInputs([]float32{1, 2, 3}, []float32{1, 1, 1}))
	require.NoError(t, err)
	require.Equal(t, []string{"arith"}, f.mgr.UnloadIdle(time.Now().Add(61*time.Minute)))
	ready, err = f.c.ModelReady(ctx, "arith")
	require.NoError(t, err)
	require.False(t, ready)
	resp, err := f.c.Infer(ctx, "arith", arithInputs([]float32{1, 2, 3}, []float32{1, 1, 1}))
	require.NoError(t, err)
	require.Equal(t, []float32{2, 3, 4}, values(t, resp, "sum"))
	require.EqualValues(t, 3, f.mgr.Loads())
}

func TestTokenAuth(t *testing.T) {
	t.Parallel()
	f := setup(t, sessions.Config{}, service.Config{Token: "s3cret"})
	ctx := context.Background()
	require.NoError(t, f.c.Ready(ctx))
	_, err := f.c.ModelMetadata(ctx, "arith")
	require.NoError(t, err)

	anon, err := client.New(f.srv.URL)
	require.NoError(t, err)
	require.NoError(t, anon.Live(ctx), "health needs no token")
	require.NoError(t, anon.Ready(ctx), "health needs no token")
	_, err = anon.ServerMetadata(ctx)
	require.Equal(t, http.StatusUnauthorized, client.StatusOf(err))
	require.ErrorContains(t, err, "missing bearer token")
	_, err = anon.Infer(ctx, "arith", arithInputs([]float32{1, 2, 3}, []float32{1, 2, 3}))
	require.Equal(t, http.StatusUnauthorized, client.StatusOf(err))
	wrong, err := client.New(f.srv.URL, client.WithToken("guess"))
	require.NoError(t, err)
	_, err = wrong.Models(ctx, false)
	require.Equal(t, http.StatusUnauthorized, client.StatusOf(err))
	require.ErrorContains(t, err, "wrong bearer token")
	require.Equal(t, http.StatusUnauthorized, client.StatusOf(wrong.Load(ctx, "arith")))
}

func TestConcurrentInfers(t *testing.T) {
	t.Parallel()
	f := setup(t, sessions.Config{}, service.Config{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				x := float32(g*1000 + i)
				a := []float32{x, x + 0.5, -x, x, 2 * x, 3}
				b := []float32{1, 2, 3, x, 0.25, x}
				var opts []client.InferOption
				if i%5 == 0 {
					opts = append(opts, client.JSON())
				}
				resp, err := f.c.Infer(ctx, "arith", arithInputs(a, b), opts...)
				if err != nil {
					errs <- err
					return
				}
				sum, _ := oip.Values[float32](resp.Outputs[0])
				prod, _ := oip.Values[float32](resp.Outputs[1])
				for k := range a {
					if sum[k] != a[k]+b[k] || prod[k] != a[k]*b[k] {
						errs <- fmt.Errorf("goroutine %d request %d element %d: got %v, %v", g, i, k, sum[k], prod[k])
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 1, f.mgr.Loads(), "one load under concurrent first requests")
}

func TestNotReadyWithoutLibrary(t *testing.T) {
	t.Parallel()
	f := setup(t, sessions.Config{LibraryPath: filepath.Join(t.TempDir(), "libonnxruntime.so.1")}, service.Config{})
	ctx := context.Background()
	require.NoError(t, f.c.Live(ctx))
	err := f.c.Ready(ctx)
	require.Equal(t, http.StatusServiceUnavailable, client.StatusOf(err))
	require.ErrorContains(t, err, "make accel-deps")
	require.ErrorContains(t, err, "MILLRACE_ORT_LIB")
	_, err = f.c.Infer(ctx, "arith", arithInputs([]float32{1, 2, 3}, []float32{1, 2, 3}))
	require.Equal(t, http.StatusServiceUnavailable, client.StatusOf(err))
	require.ErrorContains(t, err, "make accel-deps")
	models, err := f.c.Models(ctx, false)
	require.NoError(t, err, "the model list needs no runtime")
	require.Len(t, models, 4)
}

func TestCUDARequested(t *testing.T) {
	t.Parallel()
	f := setup(t, sessions.Config{Provider: sessions.CUDA}, service.Config{})
	ctx := context.Background()
	err := f.c.Ready(ctx)
	require.Equal(t, http.StatusServiceUnavailable, client.StatusOf(err))
	require.ErrorContains(t, err, "could not set up the cuda execution provider")
	_, err = f.c.Infer(ctx, "arith", arithInputs([]float32{1, 2, 3}, []float32{1, 2, 3}))
	require.Equal(t, http.StatusServiceUnavailable, client.StatusOf(err))
	require.ErrorContains(t, err, "-provider cpu")
	require.NoError(t, f.c.Live(ctx), "still serving")
}

func TestUnixSocket(t *testing.T) {
	t.Parallel()
	dir := testenv.ModelDir(t, map[string][]byte{"arith": onnxbuild.Arith()}, false)
	mgr := sessions.New(modeldir.New(dir), sessions.Config{LibraryPath: testenv.LibraryPath(t)})
	defer mgr.Close()
	sock := filepath.Join(t.TempDir(), "accel.sock")
	require.NoError(t, os.WriteFile(sock, nil, 0o600))
	_, err := service.Listen("unix:" + sock)
	require.Error(t, err, "a regular file in the way is not replaced")
	require.NoError(t, os.Remove(sock))
	ln, err := service.Listen("unix:" + sock)
	require.NoError(t, err)
	st, err := os.Stat(sock)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	srv := &http.Server{Handler: service.New(mgr, service.Config{})}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := client.New("unix:" + sock)
	require.NoError(t, err)
	resp, err := c.Infer(context.Background(), "arith", arithInputs([]float32{1, 2, 3}, []float32{0.5, 0.5, 0.5}))
	require.NoError(t, err)
	require.Equal(t, []float32{1.5, 2.5, 3.5}, values(t, resp, "sum"))
}

func TestLargeBinaryTensor(t *testing.T) {
	t.Parallel()
	f := setup(t, sessions.Config{}, service.Config{})
	x := make([]float32, 1<<20)
	for i := range x {
		x[i] = float32(i) * float32(math.Pi)
	}
	resp, err := f.c.Infer(context.Background(), "echo", []oip.Tensor{oip.NewTensor("x", []int64{int64(len(x))}, x)})
	require.NoError(t, err)
	require.True(t, bytes.Equal(oip.NewTensor("y", nil, x).Data, resp.Outputs[0].Data))
}
