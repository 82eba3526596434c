package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"
)

// clientOptions are the flags every client command takes. The server URL
// and token come from flags, else $MILLRACE_URL and $MILLRACE_TOKEN, else
// the client file (~/.config/millrace/cli.yaml, or $MILLRACE_CLI_CONFIG),
// else http://127.0.0.1:8080 and no token.
type clientOptions struct {
	server, token string
	json          bool
}

// cliFile is ~/.config/millrace/cli.yaml.
type cliFile struct {
	Server string `yaml:"server"`
	Token  string `yaml:"token"`
}

func clientFlags(fs *flag.FlagSet) *clientOptions {
	o := &clientOptions{}
	fs.StringVar(&o.server, "server", "", "server URL (default $MILLRACE_URL, then cli.yaml, then http://127.0.0.1:8080)")
	fs.StringVar(&o.token, "token", "", "API token (default $MILLRACE_TOKEN, then cli.yaml)")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of a table")
	return o
}

// client talks to the REST API.
type client struct {
	base, token string
	http        *http.Client
	e           *env
	json        bool
}

func (o *clientOptions) client(e *env) (*client, error) {
	server, token := o.server, o.token
	if server == "" {
		server = e.getenv("MILLRACE_URL")
	}
	if token == "" {
		token = e.getenv("MILLRACE_TOKEN")
	}
	if server == "" || token == "" {
		path := e.getenv("MILLRACE_CLI_CONFIG")
		if path == "" {
			if dir, err := os.UserConfigDir(); err == nil {
				path = filepath.Join(dir, "millrace", "cli.yaml")
			}
		}
		if data, err := os.ReadFile(path); err == nil {
			var f cliFile
			dec := yaml.NewDecoder(bytes.NewReader(data))
			dec.KnownFields(true)
			if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("client config %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
			}
			if server == "" {
				server = f.Server
			}
			if token == "" {
				token = f.Token
			}
		}
	}
	if server == "" {
		server = "http://127.0.0.1:8080"
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server %q: want an http:// or https:// URL", server)
	}
	return &client{base: strings.TrimSuffix(server, "/"), token: token, http: &http.Client{}, e: e, json: o.json}, nil
}

// apiError is a problem document (RFC 9457) the server answered.
type apiError struct {
	Status int
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Errors []struct {
		Message  string `json:"message"`
		Location string `json:"location"`
	} `json:"errors"`
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("the server answered %d", e.Status)
	if e.Detail != "" {
		msg += ": " + e.Detail
	} else if e.Title != "" {
		msg += ": " + e.Title
	}
	for _, d := range e.Errors {
		msg += fmt.Sprintf("\n  %s: %s", d.Location, d.Message)
	}
	return msg
}

// do sends a request and decodes a JSON answer into out (unless nil).
func (c *client) do(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w (is the server running? set -server or MILLRACE_URL)", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode >= 300 {
		pe := &apiError{Status: res.StatusCode}
		json.Unmarshal(raw, pe)
		if res.StatusCode == http.StatusUnauthorized && c.token == "" {
			pe.Detail += " (no token: set -token or MILLRACE_TOKEN)"
		}
		return pe
	}
	if out != nil && len(raw) > 0 {
		if dst, ok := out.(*json.RawMessage); ok {
			*dst = append((*dst)[:0], bytes.TrimSpace(raw)...)
			return nil
		}
		return json.Unmarshal(raw, out)
	}
	return nil
}

// doJSON sends v as JSON.
func (c *client) doJSON(ctx context.Context, method, path string, v, out any) error {
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	return c.do(ctx, method, path, body, "application/json", out)
}

// printJSON writes v indented.
func (c *client) printJSON(v any) error {
	enc := json.NewEncoder(c.e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes rows under a header, aligned.
func (c *client) table(header []string, rows [][]string) {
	tw := tabwriter.NewWriter(c.e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// isTerminal reports whether w is a terminal: progress bars are drawn only
// there, never into files or pipes.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressReader draws an upload's progress on a terminal.
type progressReader struct {
	r           io.Reader
	w           io.Writer
	label       string
	done, total int64
	last        time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if time.Since(p.last) > 100*time.Millisecond || err == io.EOF {
		p.last = time.Now()
		const width = 30
		frac := 1.0
		if p.total > 0 {
			frac = min(1, float64(p.done)/float64(p.total))
		}
		bar := strings.Repeat("=", int(frac*width)) + strings.Repeat(" ", width-int(frac*width))
		fmt.Fprintf(p.w, "\r%s [%s] %3.0f%% %s/%s", p.label, bar, frac*100, size(p.done), size(p.total))
		if err == io.EOF {
			fmt.Fprintln(p.w)
		}
	}
	return n, err
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// sseEvents reads a Server-Sent Events stream, calling fn with each data
// payload until the stream ends, fn returns false, or ctx is done.
func sseEvents(ctx context.Context, c *client, path string, fn func(data []byte) bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		pe := &apiError{Status: res.StatusCode}
		raw, _ := io.ReadAll(res.Body)
		json.Unmarshal(raw, pe)
		return pe
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		case line == "":
			if len(data) > 0 {
				if !fn(data) {
					return nil
				}
				data = nil
			}
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}

// readDocument reads a JSON or YAML file ("-" is stdin) as JSON.
func readDocument(e *env, path string) ([]byte, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(e.stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		if !json.Valid(trimmed) {
			var v any
			err := json.Unmarshal(trimmed, &v)
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return trimmed, nil
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
