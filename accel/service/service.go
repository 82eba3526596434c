// Package service is millrace-accel's HTTP face: the Open Inference
// Protocol v2 (KServe v2) over the models of a sessions.Manager, with the
// binary tensor data extension and Triton's model repository extension.
package service

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/accel/sessions"
	"github.com/millrace/millrace/accel/training"
	"go.opentelemetry.io/otel/trace"
)

// DefaultMaxBodyBytes bounds request bodies unless Config says otherwise:
// room for a 4096×4096 RGB FP32 image as binary data.
const DefaultMaxBodyBytes = 256 << 20

// Config configures a Service.
type Config struct {
	// Token, when set, must come as "Authorization: Bearer TOKEN" on every
	// request except the health probes.
	Token string
	// MaxBodyBytes bounds request bodies; DefaultMaxBodyBytes when 0.
	MaxBodyBytes int64
	// Version is reported by GET /v2.
	Version string
	// Logger gets one line per failed request (5xx) and per load; nil
	// discards them.
	Logger *slog.Logger
	// Jobs runs training jobs (/v2/training/jobs, training.go); nil
	// serves no training endpoints.
	Jobs *training.Jobs
	// Tracer, when set, gives each load and inference a span that joins
	// the caller's trace (trace.go); nil records none.
	Tracer trace.Tracer
}

// Service serves the protocol. It is an http.Handler.
type Service struct {
	mgr *sessions.Manager
	cfg Config
	mux *http.ServeMux
	log *slog.Logger
}

// New returns a Service over mgr's models.
func New(mgr *sessions.Manager, cfg Config) *Service {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	s := &Service{mgr: mgr, cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.routes()
	return s
}

func (s *Service) routes() {
	get, post := http.MethodGet, http.MethodPost
	s.handle(get, "/v2/health/live", s.live)
	s.handle(get, "/v2/health/ready", s.ready)
	s.handle(get, "/v2", s.serverMetadata)
	s.handle(get, "/v2/{$}", s.serverMetadata)
	s.handle(get, "/v2/models", s.listModels)
	s.handle(post, "/v2/repository/index", s.repositoryIndex)
	s.handle(post, "/v2/repository/models/{name}/load", s.traced("load", s.load))
	s.handle(post, "/v2/repository/models/{name}/unload", s.unload)
	s.trainingRoutes()
	for _, prefix := range []string{"/v2/models/{name}", "/v2/models/{name}/versions/{version}"} {
		s.handle(get, prefix, s.modelMetadata)
		s.handle(get, prefix+"/ready", s.modelReady)
		s.handle(post, prefix+"/infer", s.traced("infer", s.infer))
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s (see the Open Inference Protocol v2)", r.Method, r.URL.Path))
	})
}

// handle registers h for path; other methods get a JSON 405.
func (s *Service) handle(method, path string, h http.HandlerFunc) {
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
			w.Header().Set("Allow", method)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s is not allowed; use %s", r.Method, r.URL.Path, method))
			return
		}
		h(w, r)
	})
}

// ServeHTTP checks the bearer token and routes the request.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Token != "" && !strings.HasPrefix(r.URL.Path, "/v2/health/") {
		auth := r.Header.Get("Authorization")
		token, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.Token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="millrace-accel"`)
			msg := "missing bearer token: send Authorization: Bearer TOKEN (the -token / MILLRACE_ACCEL_TOKEN of the service)"
			if ok {
				msg = "wrong bearer token"
			}
			writeError(w, http.StatusUnauthorized, msg)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Service) live(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, oip.LiveResponse{Live: true})
}

func (s *Service) ready(w http.ResponseWriter, r *http.Request) {
	if err := s.mgr.Ready(); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, oip.ReadyResponse{Ready: false, Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, oip.ReadyResponse{Ready: true})
}

func (s *Service) serverMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, oip.ServerMetadata{
		Name: "millrace-accel", Version: s.cfg.Version,
		Extensions: []string{oip.ExtensionBinaryData, oip.ExtensionRepository},
	})
}

func (s *Service) index(ctx context.Context, readyOnly bool) ([]oip.RepositoryModel, error) {
	models, err := s.mgr.Source().List(ctx)
	if err != nil {
		return nil, err
	}
	out := []oip.RepositoryModel{}
	for _, m := range models {
		version := m.Version
		if version == "" {
			version = "1"
		}
		e := oip.RepositoryModel{Name: m.Name, Version: version, State: oip.StateReady}
		if !s.mgr.Loaded(m.Name) {
			if readyOnly {
				continue
			}
			e.State, e.Reason = oip.StateUnavailable, "unloaded (loads on first use)"
		}
		out = append(out, e)
	}
	return out, nil
}

func (s *Service) listModels(w http.ResponseWriter, r *http.Request) {
	models, err := s.index(r.Context(), false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, oip.ModelList{Models: models})
}

func (s *Service) repositoryIndex(w http.ResponseWriter, r *http.Request) {
	var req oip.RepositoryIndexRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<16))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			writeError(w, http.StatusBadRequest, "malformed repository index request: "+err.Error())
			return
		}
	}
	models, err := s.index(r.Context(), req.Ready)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, models)
}

func (s *Service) load(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	start := time.Now()
	if err := s.mgr.Load(r.Context(), name); err != nil {
		s.fail(w, r, err)
		return
	}
	s.log.Info("model loaded", "model", name, "took", time.Since(start))
	writeJSON(w, http.StatusOK, oip.ReadyResponse{Name: name, Ready: true})
}

func (s *Service) unload(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.mgr.Source().Model(r.Context(), name); err != nil && !s.mgr.Loaded(name) {
		s.fail(w, r, err)
		return
	}
	s.mgr.Unload(name)
	writeJSON(w, http.StatusOK, oip.ReadyResponse{Name: name, Ready: false})
}

// acquire loads the request's model and checks the version in its path.
func (s *Service) acquire(w http.ResponseWriter, r *http.Request) *sessions.Session {
	sess, err := s.mgr.Acquire(r.Context(), r.PathValue("name"))
	if err != nil {
		s.fail(w, r, err)
		return nil
	}
	md := sess.Metadata()
	if v := r.PathValue("version"); v != "" && v != md.Version {
		sess.Release()
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q has no version %q (it has %q)", md.Name, v, md.Version))
		return nil
	}
	return sess
}

func (s *Service) modelMetadata(w http.ResponseWriter, r *http.Request) {
	sess := s.acquire(w, r)
	if sess == nil {
		return
	}
	defer sess.Release()
	writeJSON(w, http.StatusOK, sess.Metadata().OIP())
}

func (s *Service) modelReady(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if s.mgr.Loaded(name) {
		writeJSON(w, http.StatusOK, oip.ReadyResponse{Name: name, Ready: true})
		return
	}
	if _, err := s.mgr.Source().Model(r.Context(), name); err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, oip.ReadyResponse{Name: name, Ready: false,
		Error: fmt.Sprintf("model %q is not loaded; it loads on first use, or POST /v2/repository/models/%s/load", name, name)})
}

func (s *Service) infer(w http.ResponseWriter, r *http.Request) {
	headerLength := r.Header.Get(oip.HeaderContentLength)
	body, err := s.readBody(w, r, headerLength)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := oip.ParseInferRequest(headerLength, body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sess := s.acquire(w, r)
	if sess == nil {
		return
	}
	defer sess.Release()
	md := sess.Metadata()
	inputs, err := md.CheckInputs(req.Inputs)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	wanted := make([]string, len(req.Outputs))
	for i, o := range req.Outputs {
		wanted[i] = o.Name
	}
	if err := md.CheckOutputs(wanted); err != nil {
		s.fail(w, r, err)
		return
	}
	outs, err := sess.Run(inputs)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := &oip.InferResponse{ModelName: md.Name, ModelVersion: md.Version, ID: req.ID, Outputs: outs}
	if len(wanted) > 0 {
		resp.Outputs = resp.Outputs[:0:0]
		for _, name := range wanted {
			for _, o := range outs {
				if o.Name == name {
					resp.Outputs = append(resp.Outputs, o)
				}
			}
		}
	}
	header, blobs, err := oip.EncodeInferResponse(resp, req.WantsBinary)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	h := w.Header()
	if len(blobs) > 0 || hasBinary(resp, req) {
		h.Set("Content-Type", "application/octet-stream")
		h.Set(oip.HeaderContentLength, strconv.Itoa(len(header)))
	} else {
		h.Set("Content-Type", "application/json")
	}
	size := len(header)
	for _, b := range blobs {
		size += len(b)
	}
	h.Set("Content-Length", strconv.Itoa(size))
	w.WriteHeader(http.StatusOK)
	bufs := append(net.Buffers{header}, blobs...)
	bufs.WriteTo(w)
}

func hasBinary(resp *oip.InferResponse, req *oip.InferRequest) bool {
	for _, o := range resp.Outputs {
		if req.WantsBinary(o.Name) {
			return true
		}
	}
	return false
}

// readBody reads a request body of at most MaxBodyBytes. When the length
// is known it reads into a buffer placed so that the binary tensor data
// after the JSON header starts 64-byte aligned, as ONNX Runtime's own
// buffers do, so input tensors use the body in place.
func (s *Service) readBody(w http.ResponseWriter, r *http.Request, headerLength string) ([]byte, error) {
	max := s.cfg.MaxBodyBytes
	if r.ContentLength > max {
		return nil, &http.MaxBytesError{Limit: max}
	}
	rd := http.MaxBytesReader(w, r.Body, max)
	if r.ContentLength < 0 {
		return io.ReadAll(rd)
	}
	hl, _ := strconv.ParseInt(headerLength, 10, 64) // checked by the parser
	n := r.ContentLength
	buf := make([]byte, n+64)
	off := 0
	if hl > 0 && hl <= n {
		addr := uintptr(unsafe.Pointer(&buf[0])) + uintptr(hl)
		off = int((64 - addr%64) % 64)
	}
	body := buf[off : off+int(n) : off+int(n)]
	if _, err := io.ReadFull(rd, body); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errBadRequest(fmt.Sprintf("request body ended after fewer than its Content-Length of %d bytes", n))
		}
		return nil, err
	}
	return body, nil
}

type errBadRequest string

func (e errBadRequest) Error() string { return string(e) }

// fail answers with the status that err's kind calls for.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, err error) {
	var maxBytes *http.MaxBytesError
	var bad errBadRequest
	status := http.StatusInternalServerError
	msg := err.Error()
	switch {
	case errors.As(err, &maxBytes):
		status = http.StatusRequestEntityTooLarge
		msg = fmt.Sprintf("request body exceeds the service's limit of %d bytes (-max-body)", maxBytes.Limit)
	case errors.As(err, &bad), errors.Is(err, sessions.ErrInvalidInput):
		status = http.StatusBadRequest
	case errors.Is(err, sessions.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, sessions.ErrUnsupported):
		status = http.StatusNotImplemented
	case errors.Is(err, sessions.ErrLibrary), errors.Is(err, sessions.ErrProvider):
		status = http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	}
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", msg)
	}
	writeError(w, status, msg)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, oip.ErrorResponse{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status, data = http.StatusInternalServerError, []byte(`{"error":"encoding the response failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	w.Write(data)
}

// Listen opens addr: "unix:/path/to.sock" for a Unix socket (any stale
// socket file there is replaced; the socket is made owner-only), or
// "host:port" for TCP.
func Listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix:")
	if !ok {
		return net.Listen("tcp", addr)
	}
	if path == "" {
		return nil, errors.New("listen address unix: needs a path, e.g. unix:/run/millrace/accel.sock")
	}
	if st, err := os.Lstat(path); err == nil && st.Mode().Type() == os.ModeSocket {
		os.Remove(path)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}
