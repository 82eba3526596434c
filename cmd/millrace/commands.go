package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/millrace/millrace/abi"
)

// subcommand dispatches `millrace GROUP SUB ...` to one of subs.
func subcommand(group string, e *env, args []string, subs map[string]func(args []string) error) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: millrace %s %s", group, strings.Join(sortedKeys(subs), "|"))
	}
	fn, ok := subs[args[0]]
	if !ok {
		return fmt.Errorf("millrace %s: unknown subcommand %q (want %s)", group, args[0], strings.Join(sortedKeys(subs), ", "))
	}
	return fn(args[1:])
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// parseWithClient parses a client command's flags; flags may come before
// or after the positional arguments.
func parseWithClient(name string, e *env, args []string, define func(fs *flag.FlagSet)) (*client, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	opts := clientFlags(fs)
	if define != nil {
		define(fs)
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	c, err := opts.client(e)
	return c, positional, err
}

// ---- module ----

var moduleIDPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

func moduleCmd(ctx context.Context, e *env, args []string) error {
	return subcommand("module", e, args, map[string]func([]string) error{
		"init":  func(a []string) error { return moduleInit(ctx, e, a) },
		"build": func(a []string) error { return moduleBuild(ctx, e, a) },
		"push":  func(a []string) error { return modulePush(ctx, e, a) },
	})
}

// moduleInit scaffolds a module: main.go on the guest SDK, manifest.json,
// go.mod (pointing at a Millrace source tree: the SDK is not published to
// a module proxy) and a test that runs it on the SDK's native fake host.
func moduleInit(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("module init", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	dir := fs.String("dir", "", "directory to create (default ./ID)")
	src := fs.String("src", "", "the Millrace source tree whose guest-sdk the module uses (default $MILLRACE_SRC)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: millrace module init [-dir DIR] [-src MILLRACE_SOURCE] ID")
	}
	id := fs.Arg(0)
	if !moduleIDPattern.MatchString(id) {
		return fmt.Errorf("module id %q: want lowercase letters, digits and _, starting with a letter", id)
	}
	if *src == "" {
		*src = e.getenv("MILLRACE_SRC")
	}
	if *src == "" {
		return errors.New("module init needs the Millrace source tree for its SDK: -src DIR or MILLRACE_SRC (the guest SDK is not on a module proxy yet)")
	}
	root, err := filepath.Abs(*src)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "guest-sdk", "go.mod")); err != nil {
		return fmt.Errorf("-src %s: no guest-sdk/go.mod there: want the root of a Millrace checkout", *src)
	}
	if *dir == "" {
		*dir = id
	}
	if _, err := os.Stat(*dir); err == nil {
		return fmt.Errorf("%s already exists; choose another -dir", *dir)
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	files := map[string]string{
		"go.mod": fmt.Sprintf("module example.com/%s\n\ngo 1.26.0\n\nrequire github.com/millrace/millrace/guest-sdk v0.0.0\n\nreplace (\n\tgithub.com/millrace/millrace => %s\n\tgithub.com/millrace/millrace/guest-sdk => %s\n)\n",
			id, root, filepath.Join(root, "guest-sdk")),
		"main.go":       strings.ReplaceAll(moduleTemplate, "MODULE_ID", id),
		"main_test.go":  strings.ReplaceAll(moduleTestTemplate, "MODULE_ID", id),
		"manifest.json": strings.ReplaceAll(manifestTemplate, "MODULE_ID", id),
		"workflow.yaml": strings.ReplaceAll(workflowTemplate, "MODULE_ID", id),
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(*dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	tidy := exec.CommandContext(ctx, "go", "mod", "tidy")
	tidy.Dir = *dir
	tidy.Env = append(os.Environ(), "GOWORK=off")
	if out, err := tidy.CombinedOutput(); err != nil {
		return fmt.Errorf("go mod tidy in %s: %w\n%s", *dir, err, out)
	}
	fmt.Fprintf(e.stdout, "created module %s in %s: edit main.go and manifest.json, then\n"+
		"  millrace module build -dir %s && millrace module push -grant %s/%s.wasm\n"+
		"  millrace workflow apply -publish %s/workflow.yaml\n"+
		"  millrace workflow run -input '{\"name\":\"Ada\"}' -follow %s\n", id, *dir, *dir, *dir, id, *dir, id)
	return nil
}

const moduleTemplate = `// Command MODULE_ID is a Millrace module: it receives its input as JSON and
// returns its output as JSON (see abi/ABI.md).
package main

import (
	"context"
	"encoding/json"

	millrace "github.com/millrace/millrace/guest-sdk"
)

func init() { millrace.Handle(run) }

func main() {}

type input struct {
	Name string ` + "`json:\"name\"`" + `
}

type output struct {
	Greeting string ` + "`json:\"greeting\"`" + `
}

func run(_ context.Context, raw json.RawMessage) (json.RawMessage, error) {
	var in input
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, err
	}
	millrace.Logger().Info("greeting", "name", in.Name)
	return json.Marshal(output{Greeting: "hello, " + in.Name})
}
`

const moduleTestTemplate = `package main

import (
	"context"
	"encoding/json"
	"testing"
)

func TestRun(t *testing.T) {
	out, err := run(context.Background(), json.RawMessage(` + "`{\"name\":\"world\"}`" + `))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != ` + "`{\"greeting\":\"hello, world\"}`" + ` {
		t.Fatalf("got %s", out)
	}
}
`

const manifestTemplate = `{
  "abi": 1,
  "id": "MODULE_ID",
  "name": "MODULE_ID",
  "version": "0.1.0",
  "description": "Greets by name.",
  "type": "transform",
  "inputs": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
  "outputs": {"type": "object", "properties": {"greeting": {"type": "string"}}},
  "capabilities": {},
  "limits": {"memory_mb": 32, "timeout_ms": 5000}
}
`

// workflowTemplate runs the new module and hands its output to the
// built-in echo, so that a first `workflow apply` has a file to apply and
// shows how nodes and edges are written (docs: README, Workflows).
const workflowTemplate = `# A workflow that runs MODULE_ID, then echo with MODULE_ID's output:
#   millrace workflow apply -publish workflow.yaml
#   millrace workflow run -input '{"name":"Ada"}' -follow MODULE_ID
id: MODULE_ID
name: MODULE_ID
nodes:
  - id: greet
    module: MODULE_ID@0.1.0 # bump with manifest.json's version
  - id: report
    module: echo@1.0.0
    input:
      expression: "{'greeting': nodes.greet.output.greeting, 'run': run.id}"
edges:
  - from: greet
    to: report
`

// moduleBuild compiles a module the way the Makefile builds the built-in
// ones (a wasip1 reactor) and embeds its manifest.
func moduleBuild(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("module build", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	dir := fs.String("dir", ".", "the module's directory (main package and manifest.json)")
	out := fs.String("o", "", "output .wasm (default DIR/ID.wasm)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	manifestPath := filepath.Join(*dir, "manifest.json")
	manifest, err := os.ReadFile(manifestPath)
	if err != nil {
		return err
	}
	m, err := abi.ParseManifest(manifest)
	if err != nil {
		return fmt.Errorf("%s: %w", manifestPath, err)
	}
	if *out == "" {
		*out = filepath.Join(*dir, m.ID+".wasm")
	}
	tmp := *out + ".build"
	defer os.Remove(tmp)
	absTmp, err := filepath.Abs(tmp)
	if err != nil {
		return err
	}
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-buildmode=c-shared", "-o", absTmp, ".")
	build.Dir = *dir
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	build.Stdout, build.Stderr = e.stderr, e.stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared in %s: %w", *dir, err)
	}
	wasm, err := os.ReadFile(tmp)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, abi.AppendManifestSection(wasm, manifest), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "built %s@%s: %s (%s)\n", m.ID, m.Version, *out, size(int64(len(wasm))))
	return nil
}

// modulePush uploads a module (its manifest embedded, or beside it with
// -manifest), drawing a progress bar on a terminal, and optionally grants
// what its manifest requests.
func modulePush(ctx context.Context, e *env, args []string) error {
	var manifestPath string
	var grant bool
	c, pos, err := parseWithClient("module push", e, args, func(fs *flag.FlagSet) {
		fs.StringVar(&manifestPath, "manifest", "", "manifest.json, when the module does not embed it")
		fs.BoolVar(&grant, "grant", false, "grant what the manifest requests (needs modules:grant)")
	})
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: millrace module push [-manifest FILE] [-grant] MODULE.wasm")
	}
	wasm, err := os.ReadFile(pos[0])
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("wasm", filepath.Base(pos[0]))
	w.Write(wasm)
	if manifestPath != "" {
		manifest, err := os.ReadFile(manifestPath)
		if err != nil {
			return err
		}
		w, _ := mw.CreateFormFile("manifest", "manifest.json")
		w.Write(manifest)
	}
	mw.Close()
	var body io.Reader = &buf
	if isTerminal(e.stderr) {
		body = &progressReader{r: &buf, w: e.stderr, label: "uploading " + filepath.Base(pos[0]), total: int64(buf.Len())}
	}
	var v struct {
		ModuleID string          `json:"id"`
		Version  string          `json:"version"`
		SHA256   string          `json:"sha256"`
		Grant    json.RawMessage `json:"grant"`
		Manifest struct {
			Capabilities json.RawMessage `json:"capabilities"`
		} `json:"manifest"`
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodPost, "/v1/modules", body, mw.FormDataContentType(), &raw); err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	if grant {
		caps := v.Manifest.Capabilities
		if len(caps) == 0 {
			caps = json.RawMessage(`{}`)
		}
		path := "/v1/modules/" + url.PathEscape(v.ModuleID) + "/versions/" + url.PathEscape(v.Version) + "/grants"
		if err := c.doJSON(ctx, http.MethodPut, path, map[string]any{"capabilities": caps}, nil); err != nil {
			return fmt.Errorf("granting %s@%s: %w", v.ModuleID, v.Version, err)
		}
	}
	if c.json {
		return c.printJSON(raw)
	}
	c.table([]string{"MODULE", "VERSION", "SHA256", "GRANTED"}, [][]string{{v.ModuleID, v.Version, v.SHA256[:min(12, len(v.SHA256))], strconv.FormatBool(grant || (len(v.Grant) > 0 && string(v.Grant) != "null"))}})
	return nil
}

// ---- workflow ----

func workflowCmd(ctx context.Context, e *env, args []string) error {
	return subcommand("workflow", e, args, map[string]func([]string) error{
		"apply": func(a []string) error { return workflowApply(ctx, e, a) },
		"run":   func(a []string) error { return workflowRun(ctx, e, a) },
	})
}

// workflowApply saves a workflow definition (JSON or YAML) as the draft of
// the workflow it names (its "id" field, or -id, or the file's name), and
// publishes it with -publish.
func workflowApply(ctx context.Context, e *env, args []string) error {
	var id string
	var publish bool
	c, pos, err := parseWithClient("workflow apply", e, args, func(fs *flag.FlagSet) {
		fs.StringVar(&id, "id", "", "workflow id (default: the file's \"id\" field, then its name)")
		fs.BoolVar(&publish, "publish", false, "publish the saved draft as a new version")
	})
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: millrace workflow apply [-id ID] [-publish] FILE.json|FILE.yaml|-")
	}
	doc, err := readDocument(e, pos[0])
	if err != nil {
		return err
	}
	var def map[string]json.RawMessage
	if err := json.Unmarshal(doc, &def); err != nil {
		return fmt.Errorf("%s: a workflow is an object: %w", pos[0], err)
	}
	if raw, ok := def["id"]; ok {
		var fileID string
		if json.Unmarshal(raw, &fileID) == nil && id == "" {
			id = fileID
		}
		delete(def, "id") // the id is the path's, not the definition's
	}
	if id == "" && pos[0] != "-" {
		id = strings.TrimSuffix(filepath.Base(pos[0]), filepath.Ext(pos[0]))
	}
	if id == "" {
		return errors.New("workflow apply: no id: give -id, or an \"id\" field in the file")
	}
	var saved json.RawMessage
	if err := c.doJSON(ctx, http.MethodPut, "/v1/workflows/"+url.PathEscape(id), def, &saved); err != nil {
		return fmt.Errorf("saving workflow %s: %w", id, err)
	}
	version := 0
	if publish {
		var pub struct {
			Version int `json:"version"`
		}
		if err := c.doJSON(ctx, http.MethodPost, "/v1/workflows/"+url.PathEscape(id)+"/publish", nil, &pub); err != nil {
			return fmt.Errorf("publishing workflow %s: %w", id, err)
		}
		version = pub.Version
	}
	if c.json {
		return c.printJSON(map[string]any{"id": id, "published_version": version})
	}
	state := "draft saved"
	if publish {
		state = fmt.Sprintf("published as version %d", version)
	}
	fmt.Fprintf(e.stdout, "workflow %s: %s\n", id, state)
	return nil
}

// runView is the part of a run the client shows.
type runView struct {
	ID         string          `json:"id"`
	WorkflowID string          `json:"workflow_id"`
	Version    int             `json:"version"`
	Status     string          `json:"status"`
	Output     json.RawMessage `json:"output,omitempty"`
	Error      string          `json:"error,omitempty"`
	Trigger    string          `json:"trigger"`
	CreatedAt  time.Time       `json:"created_at"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
	Nodes      []struct {
		ID       string          `json:"id"`
		Status   string          `json:"status"`
		Attempts int             `json:"attempts"`
		Error    string          `json:"error,omitempty"`
		Logs     json.RawMessage `json:"logs,omitempty"`
	} `json:"nodes"`
}

func runFinished(status string) bool {
	return status == "succeeded" || status == "failed" || status == "canceled"
}

// workflowRun starts a run; -wait waits for it to finish (drawing the
// nodes' progress on a terminal), -follow prints its events as they come.
func workflowRun(ctx context.Context, e *env, args []string) error {
	var input string
	var wait, follow bool
	var version int
	c, pos, err := parseWithClient("workflow run", e, args, func(fs *flag.FlagSet) {
		fs.StringVar(&input, "input", "", "the run's input: JSON, or @FILE (JSON or YAML)")
		fs.BoolVar(&wait, "wait", false, "wait for the run to finish; exit non-zero unless it succeeded")
		fs.BoolVar(&follow, "follow", false, "print the run's events as they happen (implies -wait)")
		fs.IntVar(&version, "version", 0, "run this published version (default the latest)")
	})
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: millrace workflow run [-input JSON|@FILE] [-wait] [-follow] WORKFLOW")
	}
	body := map[string]any{}
	if input != "" {
		var doc []byte
		if rest, ok := strings.CutPrefix(input, "@"); ok {
			if doc, err = readDocument(e, rest); err != nil {
				return err
			}
		} else {
			doc = []byte(input)
		}
		if !json.Valid(doc) {
			return fmt.Errorf("-input: not JSON: %s", input)
		}
		body["input"] = json.RawMessage(doc)
	}
	if version > 0 {
		body["version"] = version
	}
	var run runView
	if err := c.doJSON(ctx, http.MethodPost, "/v1/workflows/"+url.PathEscape(pos[0])+"/runs", body, &run); err != nil {
		return err
	}
	if follow {
		if err := followRun(ctx, c, run.ID); err != nil {
			return err
		}
		wait = true
	}
	if !wait {
		if c.json {
			return c.printJSON(run)
		}
		fmt.Fprintf(e.stdout, "run %s queued (millrace runs get %s; millrace runs logs -follow %s)\n", run.ID, run.ID, run.ID)
		return nil
	}
	final, err := waitRun(ctx, c, run.ID)
	if err != nil {
		return err
	}
	if err := showRun(c, final); err != nil {
		return err
	}
	if final.Status != "succeeded" {
		return fmt.Errorf("run %s %s: %s", final.ID, final.Status, final.Error)
	}
	return nil
}

// waitRun polls a run until it finishes, drawing its nodes' progress on a
// terminal.
func waitRun(ctx context.Context, c *client, id string) (runView, error) {
	tty := isTerminal(c.e.stderr)
	delay := 50 * time.Millisecond
	for {
		var run runView
		if err := c.doJSON(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(id), nil, &run); err != nil {
			return run, err
		}
		if tty {
			done := 0
			for _, n := range run.Nodes {
				if runFinished(n.Status) || n.Status == "skipped" {
					done++
				}
			}
			fmt.Fprintf(c.e.stderr, "\rrun %s: %s, %d node(s) finished  ", id, run.Status, done)
		}
		if runFinished(run.Status) {
			if tty {
				fmt.Fprintln(c.e.stderr)
			}
			return run, nil
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

func showRun(c *client, run runView) error {
	if c.json {
		return c.printJSON(run)
	}
	c.table([]string{"RUN", "WORKFLOW", "VERSION", "STATUS", "TRIGGER", "CREATED"}, [][]string{{run.ID, run.WorkflowID, strconv.Itoa(run.Version), run.Status, run.Trigger, run.CreatedAt.Local().Format(time.DateTime)}})
	if len(run.Nodes) > 0 {
		fmt.Fprintln(c.e.stdout)
		rows := [][]string{}
		for _, n := range run.Nodes {
			rows = append(rows, []string{n.ID, n.Status, strconv.Itoa(n.Attempts), n.Error})
		}
		c.table([]string{"NODE", "STATUS", "ATTEMPTS", "ERROR"}, rows)
	}
	if len(run.Output) > 0 {
		fmt.Fprintf(c.e.stdout, "\noutput: %s\n", run.Output)
	}
	if run.Error != "" {
		fmt.Fprintf(c.e.stdout, "\nerror: %s\n", run.Error)
	}
	return nil
}

// ---- runs ----

func runsCmd(ctx context.Context, e *env, args []string) error {
	return subcommand("runs", e, args, map[string]func([]string) error{
		"list": func(a []string) error { return runsList(ctx, e, a) },
		"get":  func(a []string) error { return runsGet(ctx, e, a) },
		"logs": func(a []string) error { return runsLogs(ctx, e, a) },
	})
}

func runsList(ctx context.Context, e *env, args []string) error {
	var workflow, status string
	var limit int
	c, pos, err := parseWithClient("runs list", e, args, func(fs *flag.FlagSet) {
		fs.StringVar(&workflow, "workflow", "", "only runs of this workflow")
		fs.StringVar(&status, "status", "", "only runs in this status (queued, running, succeeded, failed, canceled)")
		fs.IntVar(&limit, "limit", 50, "how many, newest first (at most 500)")
	})
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return errors.New("usage: millrace runs list [-workflow ID] [-status STATUS] [-limit N]")
	}
	q := url.Values{}
	if workflow != "" {
		q.Set("workflow", workflow)
	}
	if status != "" {
		q.Set("status", status)
	}
	q.Set("limit", strconv.Itoa(limit))
	var out struct {
		Runs       []runView `json:"runs"`
		NextCursor string    `json:"next_cursor,omitempty"`
	}
	if err := c.doJSON(ctx, http.MethodGet, "/v1/runs?"+q.Encode(), nil, &out); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(out)
	}
	rows := [][]string{}
	for _, r := range out.Runs {
		rows = append(rows, []string{r.ID, r.WorkflowID, strconv.Itoa(r.Version), r.Status, r.Trigger, r.CreatedAt.Local().Format(time.DateTime)})
	}
	c.table([]string{"RUN", "WORKFLOW", "VERSION", "STATUS", "TRIGGER", "CREATED"}, rows)
	return nil
}

func runsGet(ctx context.Context, e *env, args []string) error {
	c, pos, err := parseWithClient("runs get", e, args, nil)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: millrace runs get RUN_ID")
	}
	var run runView
	if err := c.doJSON(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(pos[0]), nil, &run); err != nil {
		return err
	}
	return showRun(c, run)
}

// runsLogs prints the logs the run's nodes wrote; with -follow it prints
// the run's events live (Server-Sent Events) until it finishes, then the
// logs.
func runsLogs(ctx context.Context, e *env, args []string) error {
	var follow bool
	c, pos, err := parseWithClient("runs logs", e, args, func(fs *flag.FlagSet) {
		fs.BoolVar(&follow, "follow", false, "print events as they happen, until the run finishes")
	})
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: millrace runs logs [-follow] RUN_ID")
	}
	if follow {
		if err := followRun(ctx, c, pos[0]); err != nil {
			return err
		}
	}
	var run runView
	if err := c.doJSON(ctx, http.MethodGet, "/v1/runs/"+url.PathEscape(pos[0]), nil, &run); err != nil {
		return err
	}
	for _, n := range run.Nodes {
		var logs []map[string]any
		json.Unmarshal(n.Logs, &logs)
		for _, l := range logs {
			if c.json {
				l["node_id"] = n.ID
				b, _ := json.Marshal(l)
				fmt.Fprintln(e.stdout, string(b))
				continue
			}
			msg, _ := l["message"].(string)
			level, _ := l["level"].(string)
			extra := []string{}
			attrs, _ := l["attrs"].(map[string]any)
			for k, v := range attrs {
				extra = append(extra, fmt.Sprintf("%s=%v", k, v))
			}
			fmt.Fprintf(e.stdout, "%-12s %-5s %s %s\n", n.ID, strings.ToUpper(level), msg, strings.Join(sortedStrings(extra), " "))
		}
	}
	return nil
}

func sortedStrings(s []string) []string {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return sortedKeys(m)
}

// followRun prints a run's events until run.finished.
func followRun(ctx context.Context, c *client, id string) error {
	return sseEvents(ctx, c, "/v1/runs/"+url.PathEscape(id)+"/events", func(data []byte) bool {
		var ev struct {
			Type   string          `json:"type"`
			NodeID string          `json:"node_id"`
			Status string          `json:"status"`
			Time   time.Time       `json:"time"`
			Data   json.RawMessage `json:"data"`
		}
		json.Unmarshal(data, &ev)
		if c.json {
			fmt.Fprintln(c.e.stdout, string(data))
		} else {
			line := fmt.Sprintf("%s %-14s", ev.Time.Local().Format("15:04:05.000"), ev.Type)
			if ev.NodeID != "" {
				line += " " + ev.NodeID
			}
			if ev.Status != "" {
				line += " " + ev.Status
			}
			if len(ev.Data) > 0 && string(ev.Data) != `{"error":""}` {
				line += " " + string(ev.Data)
			}
			fmt.Fprintln(c.e.stdout, line)
		}
		return ev.Type != "run.finished" && ev.Type != "error"
	})
}

// ---- token ----

func tokenCmd(ctx context.Context, e *env, args []string) error {
	return subcommand("token", e, args, map[string]func([]string) error{
		"create": func(a []string) error { return tokenCreate(ctx, e, a) },
		"list":   func(a []string) error { return tokenList(ctx, e, a) },
		"revoke": func(a []string) error { return tokenRevoke(ctx, e, a) },
	})
}

func tokenCreate(ctx context.Context, e *env, args []string) error {
	var scopes string
	c, pos, err := parseWithClient("token create", e, args, func(fs *flag.FlagSet) {
		fs.StringVar(&scopes, "scopes", "", "comma-separated scopes, such as workflows:read,workflows:run (required)")
	})
	if err != nil {
		return err
	}
	if len(pos) != 1 || scopes == "" {
		return errors.New("usage: millrace token create -scopes SCOPE[,SCOPE...] NAME")
	}
	var out struct {
		ID     string   `json:"id"`
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
		Token  string   `json:"token"`
	}
	if err := c.doJSON(ctx, http.MethodPost, "/v1/tokens", map[string]any{"name": pos[0], "scopes": strings.Split(scopes, ",")}, &out); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(out)
	}
	fmt.Fprintf(e.stdout, "token %s (%s), scopes %s; shown only this once:\n%s\n", out.ID, out.Name, strings.Join(out.Scopes, ","), out.Token)
	return nil
}

func tokenList(ctx context.Context, e *env, args []string) error {
	c, _, err := parseWithClient("token list", e, args, nil)
	if err != nil {
		return err
	}
	var out struct {
		Tokens []struct {
			ID     string   `json:"id"`
			Name   string   `json:"name"`
			Scopes []string `json:"scopes"`
		} `json:"tokens"`
	}
	if err := c.doJSON(ctx, http.MethodGet, "/v1/tokens", nil, &out); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(out)
	}
	rows := [][]string{}
	for _, t := range out.Tokens {
		rows = append(rows, []string{t.ID, t.Name, strings.Join(t.Scopes, ",")})
	}
	c.table([]string{"ID", "NAME", "SCOPES"}, rows)
	return nil
}

func tokenRevoke(ctx context.Context, e *env, args []string) error {
	c, pos, err := parseWithClient("token revoke", e, args, nil)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: millrace token revoke TOKEN_ID")
	}
	if err := c.doJSON(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(pos[0]), nil, nil); err != nil {
		return err
	}
	if !c.json {
		fmt.Fprintf(e.stdout, "token %s revoked\n", pos[0])
	}
	return nil
}
