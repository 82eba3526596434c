package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image/png"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/onnxbuild/sdxl"
	"github.com/millrace/millrace/server"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/internal/acceltest"
)

// Stable Diffusion XL as a new user meets it: register an Optimum-layout
// folder (the generated tiny one) through the API, run a workflow that
// turns a prompt into a PNG with the built-in module, watch its steps
// arrive as run events with previews, get the same image again with the
// same seed, and cancel a long generation.
func TestStableDiffusionXLWorkflow(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{DataDir: t.TempDir(), Listener: ln, Out: out, Ready: func(addr string) { ready <- addr },
			Accel: accel.Config{Mode: accel.ModeOn, Binary: acceltest.Binary(t), Library: acceltest.Library(t), Args: []string{"-intra-op-threads", "1"}}})
	}()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	var base string
	select {
	case addr := <-ready:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("server stopped: %v\n%s", err, out.String())
	}
	p := &process{base: base}
	token := regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`).FindString(out.String())
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if p.call(t, token, http.MethodGet, "/v1/accel", nil)["state"] == "ready" {
			break
		}
		require.True(t, time.Now().Before(deadline), "the accelerator did not become ready")
	}

	// A folder missing a part is refused, naming it.
	broken := filepath.Join(t.TempDir(), "broken")
	require.NoError(t, sdxl.Write(broken, sdxl.Options{Turbo: true}))
	require.NoError(t, os.Remove(filepath.Join(broken, "unet", "model.onnx_data")))
	status, problem := rawCall(t, base, token, http.MethodPut, "/v1/models/sdxl-turbo", map[string]any{"path": broken})
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Contains(t, problem, "unet/model.onnx_data")
	require.Contains(t, problem, `"location":"body.path"`)

	// The built-in module is granted the names sdxl-turbo, sdxl-base and
	// sdxl: registering a folder under one makes it usable.
	turbo := filepath.Join(t.TempDir(), "sdxl-turbo")
	require.NoError(t, sdxl.Write(turbo, sdxl.Options{Turbo: true}))
	m := p.call(t, token, http.MethodPut, "/v1/models/sdxl-turbo", map[string]any{"path": turbo, "description": "tiny SDXL-Turbo"})
	require.Equal(t, "pipeline", m["kind"])
	got := p.call(t, token, http.MethodGet, "/v1/models/sdxl-turbo", nil)
	require.Len(t, got["parts"], 5)

	p.call(t, token, http.MethodPut, "/v1/workflows/draw", map[string]any{"name": "draw", "nodes": []any{
		map[string]any{"id": "draw", "module": "stable_diffusion_xl@1.0.0"},
	}})
	p.call(t, token, http.MethodPost, "/v1/workflows/draw/publish", nil)

	input := map[string]any{"prompt": "a lighthouse at dusk", "width": 64, "height": 64, "steps": 4, "seed": 1234}
	id := p.call(t, token, http.MethodPost, "/v1/workflows/draw/runs", map[string]any{"input": input})["id"].(string)
	events := runEvents(t, base, token, id, nil)
	var steps []float64
	for _, e := range events {
		if e["type"] == "node.progress" {
			data := e["data"].(map[string]any)
			steps = append(steps, data["done"].(float64))
			require.Equal(t, float64(4), data["total"])
			require.True(t, strings.HasPrefix(data["preview"].(string), "data:image/png;base64,"))
		}
	}
	require.Equal(t, []float64{1, 2, 3, 4}, steps, "the steps, live, in order")
	first := image(t, p, base, token, id)
	require.Contains(t, string(first), "a lighthouse at dusk\nSteps: 4, Sampler: Euler a")

	id = p.call(t, token, http.MethodPost, "/v1/workflows/draw/runs", map[string]any{"input": input})["id"].(string)
	runEvents(t, base, token, id, nil)
	require.Equal(t, first, image(t, p, base, token, id), "the same seed gives the same PNG")

	// Image to image downstream: the first node's 512×512 PNG is large, so
	// the run keeps it as an artifact, and the second node gets it back
	// as its init_image.
	p.call(t, token, http.MethodPut, "/v1/workflows/redraw", map[string]any{"name": "redraw", "nodes": []any{
		map[string]any{"id": "draw", "module": "stable_diffusion_xl@1.0.0"},
		map[string]any{"id": "repaint", "module": "stable_diffusion_xl@1.0.0", "input": map[string]any{"fields": map[string]any{
			"prompt": "'the lighthouse in snow'", "init_image": "nodes.draw.output.image", "strength": "0.5", "steps": "2", "seed": "7",
		}}},
	}, "edges": []any{map[string]any{"from": "draw", "to": "repaint"}}})
	p.call(t, token, http.MethodPost, "/v1/workflows/redraw/publish", nil)
	id = p.call(t, token, http.MethodPost, "/v1/workflows/redraw/runs", map[string]any{"input": map[string]any{"prompt": "a lighthouse", "steps": 1, "seed": 5}})["id"].(string)
	runEvents(t, base, token, id, nil)
	run := p.call(t, token, http.MethodGet, "/v1/runs/"+id, nil)
	require.Equal(t, "succeeded", run["status"], run["error"])
	for _, n := range run["nodes"].([]any) {
		out := n.(map[string]any)["output"].(map[string]any)
		require.Contains(t, out, "$artifact", "a 512×512 PNG is kept as an artifact")
	}
	repainted := nodeImage(t, p, base, token, id, "repaint")
	require.Contains(t, string(repainted), "the lighthouse in snow\nSteps: 2, Sampler: Euler a, CFG scale: 0, Seed: 7, Size: 512x512")
	require.Contains(t, string(repainted), "Denoising strength: 0.5")

	// Cancelling stops the generation: no step after the one running.
	input["steps"] = 1000
	id = p.call(t, token, http.MethodPost, "/v1/workflows/draw/runs", map[string]any{"input": input})["id"].(string)
	canceledAt := -1.0
	events = runEvents(t, base, token, id, func(e map[string]any) {
		if e["type"] == "node.progress" && canceledAt < 0 {
			canceledAt = e["data"].(map[string]any)["done"].(float64)
			p.call(t, token, http.MethodPost, "/v1/runs/"+id+"/cancel", nil)
		}
	})
	require.Equal(t, "canceled", p.call(t, token, http.MethodGet, "/v1/runs/"+id, nil)["status"])
	last := 0.0
	for _, e := range events {
		if e["type"] == "node.progress" {
			last = e["data"].(map[string]any)["done"].(float64)
		}
	}
	require.Less(t, last, 1000.0, "the generation did not run to its end")
	t.Logf("canceled at step %v; the last step reported was %v", canceledAt, last)
}

// rawCall is a request whose status the caller checks.
func rawCall(t *testing.T, base, token, method, path string, body any) (int, string) {
	t.Helper()
	j, _ := json.Marshal(body)
	req, err := http.NewRequest(method, base+path, bytes.NewReader(j))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

// runEvents reads a run's event stream to its end, calling each (if set)
// as events arrive.
func runEvents(t *testing.T, base, token, id string, each func(map[string]any)) []map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/v1/runs/"+id+"/events", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var events []map[string]any
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			var e map[string]any
			require.NoError(t, json.Unmarshal([]byte(data), &e))
			events = append(events, e)
			if each != nil {
				each(e)
			}
		}
	}
	return events
}

// image returns the PNG the run's draw node made: its output is large,
// so the run keeps it as an artifact.
func image(t *testing.T, p *process, base, token, id string) []byte {
	return nodeImage(t, p, base, token, id, "draw")
}

// nodeImage returns the PNG a node of a run made.
func nodeImage(t *testing.T, p *process, base, token, id, node string) []byte {
	t.Helper()
	run := p.call(t, token, http.MethodGet, "/v1/runs/"+id, nil)
	require.Equal(t, "succeeded", run["status"], run["error"])
	var output map[string]any
	for _, n := range run["nodes"].([]any) {
		if n.(map[string]any)["id"] == node {
			output, _ = n.(map[string]any)["output"].(map[string]any)
		}
	}
	require.NotNil(t, output, run)
	if ref, ok := output["$artifact"].(string); ok {
		status, body := rawCall(t, base, token, http.MethodGet, "/v1/runs/"+id+"/artifacts/"+ref, nil)
		require.Equal(t, http.StatusOK, status, body)
		output = nil
		require.NoError(t, json.Unmarshal([]byte(body), &output))
	}
	b, err := base64.StdEncoding.DecodeString(output["image"].(string))
	require.NoError(t, err)
	_, err = png.DecodeConfig(bytes.NewReader(b))
	require.NoError(t, err)
	return b
}
