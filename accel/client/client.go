// Package client is a Go client of the Open Inference Protocol v2 (KServe
// v2) over HTTP: millrace-accel's protocol, which NVIDIA Triton and KServe
// also serve. It is pure Go (no cgo, no ONNX Runtime), so the Millrace
// server imports it to talk to a local accel child process over a Unix
// socket or to a remote inference server over TCP.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/millrace/millrace/accel/oip"
	"go.opentelemetry.io/otel/propagation"
)

// Client talks to one inference server. It is safe for concurrent use.
type Client struct {
	base  string
	hc    *http.Client
	token string
}

// Option configures a Client.
type Option func(*Client)

// WithToken sends "Authorization: Bearer token" on every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithHTTPClient uses hc instead of a client of New's own. For a Unix
// socket address, hc's transport must dial it.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// New returns a client of the server at addr: "unix:/path/to.sock",
// "http://host:port" (or https), or a bare "host:port".
func New(addr string, opts ...Option) (*Client, error) {
	c := &Client{}
	var transport *http.Transport
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if path == "" {
			return nil, errors.New("client: unix: address needs a socket path")
		}
		transport = &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", path)
			},
		}
		c.base = "http://accel"
	} else {
		if !strings.Contains(addr, "://") {
			addr = "http://" + addr
		}
		u, err := url.Parse(addr)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("client: bad server address %q (want unix:/path, http://host:port or host:port)", addr)
		}
		c.base = strings.TrimSuffix(u.String(), "/")
		transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	// Many concurrent inferences to one server should reuse connections.
	transport.MaxIdleConnsPerHost = 64
	c.hc = &http.Client{Transport: transport}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Error is a request the server refused, with the protocol's error message.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("inference server: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// StatusOf is the HTTP status of err when it is an *Error, else 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

func (c *Client) do(ctx context.Context, method, path string, header http.Header, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if size >= 0 && body != nil {
		req.ContentLength = size
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// The caller's span, if any, becomes the parent of the server's
	// (W3C traceparent); without one nothing is added.
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e oip.ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return nil, &Error{Status: resp.StatusCode, Message: e.Error}
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	size := int64(-1)
	h := http.Header{}
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, size = bytes.NewReader(data), int64(len(data))
		h.Set("Content-Type", "application/json")
	}
	resp, err := c.do(ctx, method, path, h, body, size)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Live reports nil when the server is live.
func (c *Client) Live(ctx context.Context) error {
	return c.getJSON(ctx, http.MethodGet, "/v2/health/live", nil, nil)
}

// Ready reports nil when the server is ready; otherwise an *Error whose
// message says why (millrace-accel: how to make it ready).
func (c *Client) Ready(ctx context.Context) error {
	return c.getJSON(ctx, http.MethodGet, "/v2/health/ready", nil, nil)
}

// ServerMetadata returns GET /v2.
func (c *Client) ServerMetadata(ctx context.Context) (*oip.ServerMetadata, error) {
	var md oip.ServerMetadata
	return &md, c.getJSON(ctx, http.MethodGet, "/v2", nil, &md)
}

// Models lists the server's models through the repository index (POST
// /v2/repository/index, as Triton serves it); readyOnly keeps the loaded ones.
func (c *Client) Models(ctx context.Context, readyOnly bool) ([]oip.RepositoryModel, error) {
	var models []oip.RepositoryModel
	return models, c.getJSON(ctx, http.MethodPost, "/v2/repository/index", oip.RepositoryIndexRequest{Ready: readyOnly}, &models)
}

// ModelMetadata returns the model's inputs and outputs.
func (c *Client) ModelMetadata(ctx context.Context, model string) (*oip.ModelMetadata, error) {
	var md oip.ModelMetadata
	return &md, c.getJSON(ctx, http.MethodGet, "/v2/models/"+url.PathEscape(model), nil, &md)
}

// ModelReady reports whether the model is loaded and ready. An unknown
// model is an error.
func (c *Client) ModelReady(ctx context.Context, model string) (bool, error) {
	err := c.getJSON(ctx, http.MethodGet, "/v2/models/"+url.PathEscape(model)+"/ready", nil, nil)
	if StatusOf(err) == http.StatusServiceUnavailable || StatusOf(err) == http.StatusBadRequest {
		return false, nil
	}
	return err == nil, err
}

// Load asks the server to load the model.
func (c *Client) Load(ctx context.Context, model string) error {
	return c.getJSON(ctx, http.MethodPost, "/v2/repository/models/"+url.PathEscape(model)+"/load", struct{}{}, nil)
}

// Unload asks the server to unload the model.
func (c *Client) Unload(ctx context.Context, model string) error {
	return c.getJSON(ctx, http.MethodPost, "/v2/repository/models/"+url.PathEscape(model)+"/unload", struct{}{}, nil)
}

// InferOption adjusts one inference request.
type InferOption func(*inferConfig)

type inferConfig struct {
	json    bool
	outputs []string
	id      string
}

// JSON sends inputs and asks for outputs as JSON instead of binary tensor
// data: slower, but what a server without the binary extension takes.
func JSON() InferOption { return func(c *inferConfig) { c.json = true } }

// Outputs asks for the named outputs only, in this order.
func Outputs(names ...string) InferOption {
	return func(c *inferConfig) { c.outputs = append(c.outputs, names...) }
}

// ID sets the request's id, which the response repeats.
func ID(id string) InferOption { return func(c *inferConfig) { c.id = id } }

// Infer runs the model on inputs. By default tensors travel as binary
// tensor data both ways. Output data aliases one buffer per response.
func (c *Client) Infer(ctx context.Context, model string, inputs []oip.Tensor, opts ...InferOption) (*oip.InferResponse, error) {
	var cfg inferConfig
	for _, o := range opts {
		o(&cfg)
	}
	req := &oip.InferRequest{ID: cfg.id, Inputs: inputs, BinaryOutput: !cfg.json}
	for _, name := range cfg.outputs {
		req.Outputs = append(req.Outputs, oip.RequestedOutput{Name: name})
	}
	header, blobs, err := oip.EncodeInferRequest(req, !cfg.json)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	size := int64(len(header))
	for _, b := range blobs {
		size += int64(len(b))
	}
	if cfg.json {
		h.Set("Content-Type", "application/json")
	} else {
		h.Set("Content-Type", "application/octet-stream")
		h.Set(oip.HeaderContentLength, strconv.Itoa(len(header)))
	}
	readers := make([]io.Reader, 0, 1+len(blobs))
	readers = append(readers, bytes.NewReader(header))
	for _, b := range blobs {
		readers = append(readers, bytes.NewReader(b))
	}
	// The tensors are streamed from the caller's buffers, which it may
	// reuse once Infer returns; net/http can still be reading a request
	// body then (when the server answered early), so the body goes dead
	// on return.
	reqBody := &returnGuard{r: io.MultiReader(readers...)}
	defer reqBody.close()
	resp, err := c.do(ctx, http.MethodPost, "/v2/models/"+url.PathEscape(model)+"/infer", h, reqBody, size)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body []byte
	if resp.ContentLength >= 0 {
		body = make([]byte, resp.ContentLength)
		_, err = io.ReadFull(resp.Body, body)
	} else {
		body, err = io.ReadAll(resp.Body)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the inference response: %w", err)
	}
	return oip.ParseInferResponse(resp.Header.Get(oip.HeaderContentLength), body)
}

// returnGuard is a reader that stops reading its source once closed, so
// no read of the caller's memory can happen after the call returned.
type returnGuard struct {
	mu     sync.Mutex
	r      io.Reader
	closed bool
}

func (g *returnGuard) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return 0, errors.New("the inference call has returned")
	}
	return g.r.Read(p)
}

func (g *returnGuard) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}
