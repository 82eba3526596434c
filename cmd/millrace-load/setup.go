package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The measured workflow: a realistic but cheap chain of the built-in
// modules, each node a fresh Go guest instance.
//
//	shape (json_transform): {name, count, skus} from the webhook body
//	render (text_template): "Hello {{.name}}: {{.count}} items ({{.skus}})"
//	reply (echo): passes the rendered text through, as a last step
//	    (a notifier, a writer) would sit there
const workflowID = "load_webhook_chain"

// Workflow shapes, by -workflow name, for the results.
var workflowShapes = map[string]string{
	"modules": "webhook (sync) -> json_transform -> text_template -> echo",
	"light":   "webhook (sync) -> echo -> echo -> echo, reshaping and rendering in the nodes' CEL input mappings",
}

// lightWorkflow does the same work as modulesWorkflow with the cheapest
// Go guest (echo) in every node and the reshaping and rendering in CEL
// input mappings, which the host evaluates: it measures the orchestration
// with Go-guest instances that cost a few milliseconds, where
// json_transform (27 MB, CEL inside the guest) costs ~100 ms a call.
var lightWorkflow = map[string]any{
	"name":        "load: webhook chain (light)",
	"description": "cmd/millrace-load: reshape the webhook body, render a text, pass it on.",
	"nodes": []any{
		map[string]any{"id": "shape", "module": "echo@1.0.0", "input": map[string]any{"fields": map[string]any{
			"name":  "input.name",
			"count": "size(input.items)",
			"skus":  "input.items.map(i, i.sku).join(', ')",
		}}},
		map[string]any{"id": "render", "module": "echo@1.0.0", "input": map[string]any{
			"expression": "{'text': 'Hello ' + nodes.shape.output.name + ': ' + string(nodes.shape.output.count) + ' items (' + nodes.shape.output.skus + ')'}",
		}},
		map[string]any{"id": "reply", "module": "echo@1.0.0"},
	},
	"edges": []any{
		map[string]any{"from": "shape", "to": "render"},
		map[string]any{"from": "render", "to": "reply"},
	},
}

var modulesWorkflow = map[string]any{
	"name":        "load: webhook chain",
	"description": "cmd/millrace-load: reshape the webhook body, render a text, pass it on.",
	"nodes": []any{
		map[string]any{"id": "shape", "module": "json_transform@1.0.0", "config": map[string]any{"fields": map[string]any{
			"name":  "input.name",
			"count": "size(input.items)",
			"skus":  "input.items.map(i, i.sku).join(', ')",
		}}},
		map[string]any{"id": "render", "module": "text_template@1.0.0", "input": map[string]any{
			"expression": "{'template': 'Hello {{.name}}: {{.count}} items ({{.skus}})', 'data': nodes.shape.output}",
		}},
		map[string]any{"id": "reply", "module": "echo@1.0.0"},
	},
	"edges": []any{
		map[string]any{"from": "shape", "to": "render"},
		map[string]any{"from": "render", "to": "reply"},
	},
}

// requestBody is what client i posts, and wantText what the run must
// answer with: every answer is checked, so a fast wrong answer is an
// error, not a success.
func requestBody(client int) []byte {
	return fmt.Appendf(nil, `{"name":"client-%d","items":[{"sku":"a-1","qty":2},{"sku":"b-2","qty":1},{"sku":"c-3","qty":5}]}`, client)
}

func wantText(client int) string {
	return fmt.Sprintf("Hello client-%d: 3 items (a-1, b-2, c-3)", client)
}

// webhookAnswer is the part of a sync webhook's 200 answer the driver
// checks.
type webhookAnswer struct {
	Status string `json:"status"`
	Output struct {
		Reply struct {
			Text string `json:"text"`
		} `json:"reply"`
	} `json:"output"`
}

// setUp saves and publishes the workflow and creates its sync webhook
// trigger; it returns the trigger's path and secret. The built-in modules
// are installed and granted by the server itself.
func setUp(ctx context.Context, base, token string, syncTimeout time.Duration) (path, secret string, err error) {
	call := func(method, path string, body any, want int, out any) error {
		var r io.Reader
		if body != nil {
			j, err := json.Marshal(body)
			if err != nil {
				return err
			}
			r = bytes.NewReader(j)
		}
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, base+path, r)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		if res.StatusCode != want {
			return fmt.Errorf("%s %s: %s: %s", method, path, res.Status, raw)
		}
		if out != nil {
			return json.Unmarshal(raw, out)
		}
		return nil
	}
	for _, m := range []string{"json_transform", "text_template", "echo"} {
		if err := call(http.MethodGet, "/v1/modules/"+m, nil, http.StatusOK, nil); err != nil {
			return "", "", fmt.Errorf("the server lacks the built-in module %s (build the binary with make build, which embeds them): %w", m, err)
		}
	}
	def := lightWorkflow
	if workflowKind == "modules" {
		def = modulesWorkflow
	}
	if err := call(http.MethodPut, "/v1/workflows/"+workflowID, def, http.StatusOK, nil); err != nil {
		return "", "", err
	}
	if err := call(http.MethodPost, "/v1/workflows/"+workflowID+"/publish", nil, http.StatusCreated, nil); err != nil {
		return "", "", err
	}
	var created struct {
		Path   string `json:"path"`
		Secret string `json:"secret"`
	}
	spec := map[string]any{"kind": "webhook", "webhook": map[string]any{"mode": "sync", "auth": "secret", "timeout_ms": syncTimeout.Milliseconds()}}
	if err := call(http.MethodPost, "/v1/workflows/"+workflowID+"/triggers", spec, http.StatusCreated, &created); err != nil {
		return "", "", err
	}
	if created.Path == "" || created.Secret == "" {
		return "", "", fmt.Errorf("the new trigger has no path or secret: %+v", created)
	}
	return created.Path, created.Secret, nil
}

// workflowKind is the -workflow flag: "light" or "modules".
var workflowKind = "light"
