//go:build !wasip1

package millracetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/millrace/millrace/abi"
	millrace "github.com/millrace/millrace/guest-sdk"
	"github.com/millrace/millrace/guest-sdk/internal/hostcall"
)

// Limits of ABI.md §4 that the fake host enforces.
const (
	maxKeyBytes   = 512
	maxValueBytes = 1 << 20
	maxErrorBytes = 4 << 10
)

// Host is a fake Millrace host. Set the fields that describe the
// invocation, run a handler with Call or Run, then read the fields that
// describe the result. KV persists across runs, as a module's namespace
// does; the result fields are reset at the start of every run.
//
// Do not touch the fields while a run is in progress: the handler's host
// calls use them.
type Host struct {
	// Input is the invocation's input JSON; nil means null. Call sets it.
	Input []byte
	// Config is the invocation's config JSON; nil means {}.
	Config []byte
	// KV is the module's key-value namespace.
	KV map[string][]byte
	// Secrets holds the values of the secrets an admin has set.
	Secrets map[string]string
	// HTTP serves the requests the module sends with http_send. The fake
	// does not follow redirects. When nil, http_send fails with
	// abi.ErrnoIO, as a refused connection would.
	HTTP http.Handler
	// Models are the models the tensor ABI (package nn) can load, by
	// name; see Model.
	Models map[string]*Model
	// Grants is what the admin granted. nil grants everything: kv, every
	// secret, every host and every model. Otherwise kv, secrets, hosts
	// and models are granted as the Capabilities say, as for a real
	// grant; pass a manifest's Capabilities to test a module under what it
	// requests.
	Grants *abi.Capabilities

	// Output is the last document the module set with output_set, nil if
	// none.
	Output []byte
	// Failed reports whether the invocation failed: the module called
	// error_set or panicked.
	Failed bool
	// Error is the failure message: what the module passed to error_set,
	// or "panic: ..." for a panic.
	Error string
	// Logs holds the module's log records, oldest first.
	Logs []LogRecord
	// Progress holds every progress report, oldest first; the real host
	// keeps only the last.
	Progress []ProgressReport
	// Ports are the ports the module may choose (its manifest's "ports");
	// empty means only "default". Port is the one it chose, "" if none.
	Ports []string
	Port  string

	mu       sync.Mutex // guards the fields during a run
	revealed []string   // secret values read by the module, redacted from logs
	nn       nnState    // graphs and contexts of the tensor ABI, per run
}

// LogRecord is one record the module logged.
type LogRecord struct {
	Level   abi.LogLevel
	Message string
	Attrs   map[string]any // decoded from JSON: numbers are float64
	// Source is "stderr" for the stack of a panic, which the real host
	// captures from stderr; it is empty for records of the log function.
	Source string
}

// ProgressReport is one call of progress.
type ProgressReport struct {
	Done, Total uint32
	Message     string
	Preview     []byte // progress_preview's image
}

// NewHost returns a host with an empty KV namespace, no secrets and every
// capability granted.
func NewHost() *Host {
	return &Host{KV: map[string][]byte{}, Secrets: map[string]string{}}
}

// SetConfig sets Config to v encoded as JSON. It panics if v cannot be
// encoded, which is a mistake in the test.
func (h *Host) SetConfig(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("millracetest: encoding the config: " + err.Error())
	}
	h.Config = b
}

// runMu serialises runs: the host functions reach one installed host, as
// a Wasm instance reaches one host. Parallel tests therefore wait for each
// other here.
var runMu sync.Mutex

// Run runs main with h as the host, then — if main ran no handler — the
// handler the module registered with millrace.Handle from init, as the
// real host would. Pass the module's main function. A panic is recovered
// and recorded as a failure, with its stack as a log record, so a test can
// assert on it.
func (h *Host) Run(main func()) {
	runMu.Lock()
	defer runMu.Unlock()
	h.mu.Lock()
	h.Output, h.Failed, h.Error, h.Logs, h.Progress, h.revealed, h.Port = nil, false, "", nil, nil, nil, ""
	h.nn = nnState{}
	if h.KV == nil {
		h.KV = map[string][]byte{}
	}
	h.mu.Unlock()

	uninstall := hostcall.Install(fake{h})
	defer uninstall()
	defer func() {
		if r := recover(); r != nil {
			h.mu.Lock()
			defer h.mu.Unlock()
			msg := fmt.Sprintf("panic: %v", r)
			if !h.Failed {
				h.Failed, h.Error = true, msg
			}
			h.Logs = append(h.Logs, LogRecord{Level: abi.LogWarn, Message: msg + "\n\n" + string(debug.Stack()), Source: "stderr"})
		}
	}()
	before := hostcall.Runs()
	main()
	if registered := hostcall.Handler(); registered != nil && hostcall.Runs() == before {
		registered()
	}
}

// Call runs fn as millrace.Handle(fn) would under the real host, with in
// encoded as the input. It returns the decoded output, or the failure
// message as an error. To send input that In cannot express, set h.Input
// and use Run.
func Call[In, Out any](h *Host, fn func(ctx context.Context, in In) (Out, error), in In) (Out, error) {
	var out Out
	doc, err := json.Marshal(in)
	if err != nil {
		return out, fmt.Errorf("millracetest: encoding the input: %w", err)
	}
	h.Input = doc
	h.Run(func() { millrace.Handle(fn) })
	if h.Failed {
		return out, errors.New(h.Error)
	}
	if h.Output != nil {
		if err := json.Unmarshal(h.Output, &out); err != nil {
			return out, fmt.Errorf("millracetest: decoding the output %s: %w", h.Output, err)
		}
	}
	return out, nil
}

// fake implements hostcall.Host for a Host; it keeps those methods out of
// Host's own method set.
type fake struct{ h *Host }

var _ hostcall.Host = fake{}

func (f fake) Input() []byte {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if f.h.Input == nil {
		return []byte("null")
	}
	return bytes.Clone(f.h.Input)
}

func (f fake) Config() []byte {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if f.h.Config == nil {
		return []byte("{}")
	}
	return bytes.Clone(f.h.Config)
}

func (f fake) OutputSet(doc []byte) abi.Errno {
	if !json.Valid(doc) {
		return abi.ErrnoInvalidArgument
	}
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	f.h.Output = bytes.Clone(doc)
	return abi.ErrnoSuccess
}

func (f fake) ErrorSet(msg string) abi.Errno {
	if len(msg) > maxErrorBytes {
		msg = msg[:maxErrorBytes]
	}
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	f.h.Failed, f.h.Error = true, f.h.redact(strings.ToValidUTF8(msg, "\uFFFD"))
	return abi.ErrnoSuccess
}

func (f fake) Log(level abi.LogLevel, msg string, attrs []byte) abi.Errno {
	if !utf8.ValidString(msg) {
		return abi.ErrnoInvalidArgument
	}
	var m map[string]any
	if len(attrs) > 0 {
		if err := json.Unmarshal(attrs, &m); err != nil {
			return abi.ErrnoInvalidArgument
		}
	}
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	for k, v := range m {
		if s, ok := v.(string); ok {
			m[k] = f.h.redact(s)
		}
	}
	f.h.Logs = append(f.h.Logs, LogRecord{Level: min(level, abi.LogError), Message: f.h.redact(msg), Attrs: m})
	return abi.ErrnoSuccess
}

func (f fake) PortSet(name string) abi.Errno {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	ports := f.h.Ports
	if len(ports) == 0 {
		ports = []string{abi.DefaultOutputPort}
	}
	if !slices.Contains(ports, name) {
		return abi.ErrnoInvalidArgument
	}
	f.h.Port = name
	return abi.ErrnoSuccess
}

func (f fake) Progress(done, total uint32, msg string) abi.Errno {
	if !utf8.ValidString(msg) {
		return abi.ErrnoInvalidArgument
	}
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	f.h.Progress = append(f.h.Progress, ProgressReport{Done: done, Total: total, Message: f.h.redact(msg)})
	return abi.ErrnoSuccess
}

func (f fake) ProgressPreview(done, total uint32, msg string, image []byte) abi.Errno {
	if !utf8.ValidString(msg) {
		return abi.ErrnoInvalidArgument
	}
	if len(image) > abi.MaxPreviewBytes {
		return abi.ErrnoTooLarge
	}
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	f.h.Progress = append(f.h.Progress, ProgressReport{Done: done, Total: total, Message: f.h.redact(msg), Preview: append([]byte(nil), image...)})
	return abi.ErrnoSuccess
}

// kvKey checks the grant and the key; the caller holds h.mu.
func (h *Host) kvKey(key string) abi.Errno {
	switch {
	case h.Grants != nil && !h.Grants.KV:
		return abi.ErrnoDenied
	case key == "" || !utf8.ValidString(key):
		return abi.ErrnoInvalidArgument
	case len(key) > maxKeyBytes:
		return abi.ErrnoTooLarge
	}
	return abi.ErrnoSuccess
}

func (f fake) KVGet(key string) ([]byte, abi.Errno) {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if errno := f.h.kvKey(key); errno != abi.ErrnoSuccess {
		return nil, errno
	}
	v, ok := f.h.KV[key]
	if !ok {
		return nil, abi.ErrnoNotFound
	}
	return bytes.Clone(v), abi.ErrnoSuccess
}

func (f fake) KVSet(key string, value []byte) abi.Errno {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if errno := f.h.kvKey(key); errno != abi.ErrnoSuccess {
		return errno
	}
	if len(value) > maxValueBytes {
		return abi.ErrnoTooLarge
	}
	f.h.KV[key] = append([]byte{}, value...) // non-nil: the key is set
	return abi.ErrnoSuccess
}

func (f fake) KVDelete(key string) abi.Errno {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if errno := f.h.kvKey(key); errno != abi.ErrnoSuccess {
		return errno
	}
	delete(f.h.KV, key)
	return abi.ErrnoSuccess
}

func (f fake) KVAdd(key string, delta int64) (int64, abi.Errno) {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if errno := f.h.kvKey(key); errno != abi.ErrnoSuccess {
		return 0, errno
	}
	var cur int64
	if v, ok := f.h.KV[key]; ok {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return 0, abi.ErrnoInvalidArgument
		}
		cur = n
	}
	if delta > 0 && cur > math.MaxInt64-delta || delta < 0 && cur < math.MinInt64-delta {
		return 0, abi.ErrnoInvalidArgument
	}
	cur += delta
	f.h.KV[key] = strconv.AppendInt(nil, cur, 10)
	return cur, abi.ErrnoSuccess
}

func (f fake) SecretGet(name string) ([]byte, abi.Errno) {
	if !utf8.ValidString(name) {
		return nil, abi.ErrnoInvalidArgument
	}
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	if f.h.Grants != nil && !slices.Contains(f.h.Grants.Secrets, name) {
		return nil, abi.ErrnoDenied
	}
	v, ok := f.h.Secrets[name]
	if !ok {
		return nil, abi.ErrnoNotFound
	}
	if v != "" {
		f.h.revealed = append(f.h.revealed, v)
	}
	return []byte(v), abi.ErrnoSuccess
}

// redact hides the secret values the module has read, as the real host
// does in logs and error messages; the caller holds h.mu.
func (h *Host) redact(s string) string {
	for _, v := range h.revealed {
		s = strings.ReplaceAll(s, v, "[redacted]")
	}
	return s
}

func (f fake) HTTPSend(doc []byte) ([]byte, abi.Errno) {
	var req abi.HTTPRequest
	if err := json.Unmarshal(doc, &req); err != nil {
		return nil, abi.ErrnoInvalidArgument
	}
	u, err := url.Parse(req.URL)
	if err != nil || u.User != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, abi.ErrnoInvalidArgument
	}
	f.h.mu.Lock()
	allowed := f.h.allowsURL(u)
	handler := f.h.HTTP
	f.h.mu.Unlock()
	if !allowed {
		return nil, abi.ErrnoDenied
	}
	if handler == nil {
		return nil, abi.ErrnoIO
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	r, err := http.NewRequest(method, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return nil, abi.ErrnoInvalidArgument
	}
	// Make it look like a request a server received.
	r.RequestURI = u.RequestURI()
	r.RemoteAddr = "192.0.2.1:1234"
	for k, vs := range req.Headers {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, r)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body) // a recorder's body cannot fail
	out, err := json.Marshal(abi.HTTPResponse{Status: res.StatusCode, Headers: res.Header, Body: body})
	if err != nil {
		return nil, abi.ErrnoIO
	}
	return out, abi.ErrnoSuccess
}

// allowsURL matches u against the granted host patterns; the caller holds
// h.mu. Unlike the real host it resolves no names, so it cannot refuse
// private addresses.
func (h *Host) allowsURL(u *url.URL) bool {
	if h.Grants == nil {
		return true
	}
	port := abi.DefaultPort(u.Scheme)
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return false
		}
		port = n
	}
	host := abi.NormalizeHost(u.Hostname())
	for _, s := range h.Grants.AllowedOutboundHosts {
		if p, err := abi.ParseHostPattern(s); err == nil && p.Matches(u.Scheme, host, port) {
			return true
		}
	}
	return false
}
