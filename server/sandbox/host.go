package sandbox

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/egress"
	"github.com/millrace/millrace/server/store"
)

// Memory is the part of a guest's linear memory the host functions use.
// Every access is bounds-checked and reports failure with ok=false; views
// returned by Read are valid only until the guest runs again (memory may
// grow and move), so host functions copy what they keep.
// wazero's api.Memory satisfies it.
type Memory interface {
	Read(offset, byteCount uint32) ([]byte, bool)
	Write(offset uint32, v []byte) bool
	WriteUint32Le(offset, v uint32) bool
	WriteUint64Le(offset uint32, v uint64) bool
}

// Host-side bounds that the ABI fixes (ABI.md §4).
const (
	maxKVKeyBytes    = 512
	maxErrorBytes    = 4 << 10
	maxLogLineBytes  = 64 << 10
	redactedMarker   = "[redacted]"
	maxSecretRedacts = 256
)

// call is the host-side state of one invocation: everything a host function
// may read or change. One goroutine runs the guest, so no locking is needed.
type call struct {
	inv *Invocation

	pending    []byte
	hasPending bool

	output    []byte
	hasOutput bool
	port      string
	errMsg    string
	errSet    bool
	failure   *Failure // a limit the host enforced while the guest ran

	logs        logBuffer
	progress    Progress
	hasProgress bool
	secrets     []string // values revealed to the guest, redacted from logs
	egress      *egress.Policy
	nn          nnState // the tensor ABI's graphs and contexts (nn.go)
	// initializing marks the call that runs a reactor's _initialize when
	// the engine takes its snapshot: there is no invocation, so the
	// millrace_v1 functions answer denied.
	initializing bool
}

func newCall(inv *Invocation) *call {
	c := &call{inv: inv}
	c.logs.max = inv.Limits.MaxLogBytes
	c.logs.redact = c.redact
	if inv.Grant.Allows(abi.CapHTTP) {
		patterns := make([]abi.HostPattern, 0, len(inv.Grant.Capabilities.AllowedOutboundHosts))
		for _, h := range inv.Grant.Capabilities.AllowedOutboundHosts {
			if p, err := abi.ParseHostPattern(h); err == nil {
				patterns = append(patterns, p)
			}
		}
		c.egress = &egress.Policy{
			Allowed:          patterns,
			MaxRequestBytes:  inv.Limits.MaxHTTPBodyBytes,
			MaxResponseBytes: inv.Limits.MaxHTTPBodyBytes,
			Timeout:          inv.Limits.HTTPTimeout,
		}
	}
	return c
}

// fail records the first host-enforced failure; later ones are consequences.
func (c *call) fail(f *Failure) {
	if c.failure == nil {
		c.failure = f
	}
}

func (c *call) setPending(mem Memory, outLenPtr uint32, b []byte) abi.Errno {
	if !mem.WriteUint32Le(outLenPtr, uint32(len(b))) {
		return abi.ErrnoInvalidArgument
	}
	c.pending, c.hasPending = b, true
	return abi.ErrnoSuccess
}

func readString(mem Memory, ptr, n uint32) (string, abi.Errno) {
	b, ok := mem.Read(ptr, n)
	if !ok {
		return "", abi.ErrnoInvalidArgument
	}
	if !utf8.Valid(b) {
		return "", abi.ErrnoInvalidArgument
	}
	return string(b), abi.ErrnoSuccess
}

func (c *call) input(mem Memory, outLenPtr uint32) abi.Errno {
	in := []byte(c.inv.Input)
	if len(in) == 0 {
		in = []byte("null")
	}
	return c.setPending(mem, outLenPtr, in)
}

func (c *call) config(mem Memory, outLenPtr uint32) abi.Errno {
	cfg := []byte(c.inv.Config)
	if len(cfg) == 0 {
		cfg = []byte("{}")
	}
	return c.setPending(mem, outLenPtr, cfg)
}

func (c *call) resultRead(mem Memory, ptr, n uint32) abi.Errno {
	if !c.hasPending {
		return abi.ErrnoNoResult
	}
	if int(n) < len(c.pending) {
		return abi.ErrnoTooLarge
	}
	if !mem.Write(ptr, c.pending) {
		return abi.ErrnoInvalidArgument
	}
	c.pending, c.hasPending = nil, false
	return abi.ErrnoSuccess
}

func (c *call) outputSet(mem Memory, ptr, n uint32) abi.Errno {
	if int(n) > c.inv.Limits.MaxOutputBytes {
		c.fail(failf(FailOutputLimit, "the module's output is %d bytes, over limits.max_output_bytes (%d)", n, c.inv.Limits.MaxOutputBytes))
		return abi.ErrnoTooLarge
	}
	b, ok := mem.Read(ptr, n)
	if !ok {
		return abi.ErrnoInvalidArgument
	}
	if !json.Valid(b) {
		return abi.ErrnoInvalidArgument
	}
	c.output, c.hasOutput = bytes.Clone(b), true
	return abi.ErrnoSuccess
}

func (c *call) errorSet(mem Memory, ptr, n uint32) abi.Errno {
	b, ok := mem.Read(ptr, min(n, maxErrorBytes))
	if !ok {
		return abi.ErrnoInvalidArgument
	}
	c.errMsg, c.errSet = c.redact(strings.ToValidUTF8(string(b), "\uFFFD")), true
	return abi.ErrnoSuccess
}

func (c *call) log(mem Memory, level, msgPtr, msgLen, attrsPtr, attrsLen uint32) abi.Errno {
	msg, errno := readString(mem, msgPtr, msgLen)
	if errno != abi.ErrnoSuccess {
		return errno
	}
	var attrs map[string]any
	if attrsLen > 0 {
		raw, ok := mem.Read(attrsPtr, attrsLen)
		if !ok {
			return abi.ErrnoInvalidArgument
		}
		if err := json.Unmarshal(raw, &attrs); err != nil {
			return abi.ErrnoInvalidArgument
		}
	}
	c.logs.add(abi.LogLevel(min(level, uint32(abi.LogError))).String(), msg, attrs, "", int(msgLen+attrsLen))
	return abi.ErrnoSuccess
}

func (c *call) reportProgress(mem Memory, done, total, msgPtr, msgLen uint32) abi.Errno {
	msg, errno := readString(mem, msgPtr, min(msgLen, 1024))
	if errno != abi.ErrnoSuccess {
		return errno
	}
	c.progress, c.hasProgress = Progress{Done: done, Total: total, Message: c.redact(msg)}, true
	if c.inv.OnProgress != nil {
		c.inv.OnProgress(c.progress)
	}
	return abi.ErrnoSuccess
}

// reportPreview is progress_preview: progress with a small PNG or JPEG.
func (c *call) reportPreview(mem Memory, done, total, msgPtr, msgLen, imgPtr, imgLen uint32) abi.Errno {
	msg, errno := readString(mem, msgPtr, min(msgLen, 1024))
	if errno != abi.ErrnoSuccess {
		return errno
	}
	if imgLen > abi.MaxPreviewBytes {
		return abi.ErrnoTooLarge
	}
	img, ok := mem.Read(imgPtr, imgLen)
	if !ok {
		return abi.ErrnoInvalidArgument
	}
	var mime string
	switch {
	case bytes.HasPrefix(img, []byte("\x89PNG\r\n\x1a\n")):
		mime = "image/png"
	case bytes.HasPrefix(img, []byte{0xff, 0xd8, 0xff}):
		mime = "image/jpeg"
	default:
		return abi.ErrnoInvalidArgument
	}
	c.progress = Progress{Done: done, Total: total, Message: c.redact(msg), Preview: "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(img)}
	c.hasProgress = true
	if c.inv.OnProgress != nil {
		c.inv.OnProgress(c.progress)
	}
	return abi.ErrnoSuccess
}

func (c *call) portSet(mem Memory, ptr, n uint32) abi.Errno {
	name, errno := readString(mem, ptr, min(n, 64))
	if errno != abi.ErrnoSuccess {
		return errno
	}
	ports := c.inv.Ports
	if len(ports) == 0 {
		ports = []string{abi.DefaultOutputPort}
	}
	if !containsString(ports, name) {
		return abi.ErrnoInvalidArgument
	}
	c.port = name
	return abi.ErrnoSuccess
}

func (c *call) kvKey(mem Memory, ptr, n uint32) (string, abi.Errno) {
	if !c.inv.Grant.Allows(abi.CapKV) || c.inv.KV == nil {
		return "", abi.ErrnoDenied
	}
	if n == 0 {
		return "", abi.ErrnoInvalidArgument
	}
	if n > maxKVKeyBytes {
		return "", abi.ErrnoTooLarge
	}
	return readString(mem, ptr, n)
}

// storeErrno maps store errors to the ABI; unexpected errors are io.
func storeErrno(ctx context.Context, err error) abi.Errno {
	switch {
	case err == nil:
		return abi.ErrnoSuccess
	case errors.Is(err, store.ErrNotFound):
		return abi.ErrnoNotFound
	case errors.Is(err, store.ErrQuota):
		return abi.ErrnoTooLarge
	case errors.Is(err, store.ErrNotInteger):
		return abi.ErrnoInvalidArgument
	case ctx.Err() != nil:
		return abi.ErrnoTimeout
	}
	return abi.ErrnoIO
}

func (c *call) kvGet(ctx context.Context, mem Memory, keyPtr, keyLen, outLenPtr uint32) abi.Errno {
	key, errno := c.kvKey(mem, keyPtr, keyLen)
	if errno != abi.ErrnoSuccess {
		return errno
	}
	v, err := c.inv.KV.KVGet(ctx, c.inv.Namespace, key)
	if err != nil {
		return storeErrno(ctx, err)
	}
	return c.setPending(mem, outLenPtr, v)
}

func (c *call) kvSet(ctx context.Context, mem Memory, keyPtr, keyLen, valPtr, valLen uint32) abi.Errno {
	key, errno := c.kvKey(mem, keyPtr, keyLen)
	if errno != abi.ErrnoSuccess {
		return errno
	}
	if int(valLen) > c.inv.Limits.MaxKVValueBytes {
		return abi.ErrnoTooLarge
	}
	v, ok := mem.Read(valPtr, valLen)
	if !ok {
		return abi.ErrnoInvalidArgument
	}
	return storeErrno(ctx, c.inv.KV.KVSet(ctx, c.inv.Namespace, key, bytes.Clone(v), c.inv.Limits.MaxKVTotalBytes))
}

func (c *call) kvDelete(ctx context.Context, mem Memory, keyPtr, keyLen uint32) abi.Errno {
	key, errno := c.kvKey(mem, keyPtr, keyLen)
	if errno != abi.ErrnoSuccess {
		return errno
	}
	return storeErrno(ctx, c.inv.KV.KVDelete(ctx, c.inv.Namespace, key))
}

func (c *call) kvAdd(ctx context.Context, mem Memory, keyPtr, keyLen uint32, delta int64, outPtr uint32) abi.Errno {
	key, errno := c.kvKey(mem, keyPtr, keyLen)
	if errno != abi.ErrnoSuccess {
		return errno
	}
	v, err := c.inv.KV.KVAdd(ctx, c.inv.Namespace, key, delta)
	if err != nil {
		return storeErrno(ctx, err)
	}
	if !mem.WriteUint64Le(outPtr, uint64(v)) {
		return abi.ErrnoInvalidArgument
	}
	return abi.ErrnoSuccess
}

func (c *call) httpSend(ctx context.Context, mem Memory, reqPtr, reqLen, outLenPtr uint32) abi.Errno {
	if c.egress == nil {
		return abi.ErrnoDenied
	}
	// The request JSON carries the body in base64, so it may be 4/3 of the
	// body limit plus headers.
	if int64(reqLen) > c.inv.Limits.MaxHTTPBodyBytes*4/3+1<<20 {
		return abi.ErrnoTooLarge
	}
	raw, ok := mem.Read(reqPtr, reqLen)
	if !ok {
		return abi.ErrnoInvalidArgument
	}
	var req abi.HTTPRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return abi.ErrnoInvalidArgument
	}
	resp, err := c.egress.Do(ctx, req)
	if err != nil {
		c.logs.add("warn", c.redact("http_send: "+err.Error()), nil, "host", 0)
		return egress.Errno(err)
	}
	out, err := json.Marshal(resp)
	if err != nil {
		return abi.ErrnoIO
	}
	return c.setPending(mem, outLenPtr, out)
}

func (c *call) secretGet(ctx context.Context, mem Memory, namePtr, nameLen, outLenPtr uint32) abi.Errno {
	name, errno := readString(mem, namePtr, min(nameLen, 256))
	if errno != abi.ErrnoSuccess {
		return errno
	}
	if c.inv.Secrets == nil || !containsString(c.inv.Grant.Capabilities.Secrets, name) {
		return abi.ErrnoDenied
	}
	v, err := c.inv.Secrets.Reveal(ctx, name)
	if err != nil {
		return storeErrno(ctx, err)
	}
	if len(v) > 0 && len(c.secrets) < maxSecretRedacts {
		c.secrets = append(c.secrets, string(v))
	}
	return c.setPending(mem, outLenPtr, v)
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// redact replaces every secret value the guest has seen with a marker, so
// a module cannot leak a secret into logs that admins and other users read.
func (c *call) redact(s string) string {
	for _, v := range c.secrets {
		s = strings.ReplaceAll(s, v, redactedMarker)
	}
	return s
}

// redactOutput masks secret values in the module's JSON output as in its
// logs: a module that was given a secret must not pass it on into run
// outputs, which everyone who may read the run sees (a node that needs
// the secret asks for it itself). Only outputs of modules that read a
// secret are examined: decoded (so JSON escapes cannot hide a value),
// masked, and re-encoded when something was masked, so that the output
// stays valid JSON; otherwise it is returned as the module wrote it.
func (c *call) redactOutput(out []byte) []byte {
	if len(c.secrets) == 0 {
		return out
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return out // not JSON: the host refused it already (outputSet)
	}
	changed := false
	v = c.redactValue(v, &changed)
	if !changed {
		return out
	}
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(`"` + redactedMarker + `"`)
	}
	return b
}

func (c *call) redactValue(v any, changed *bool) any {
	mask := func(s string) string {
		r := c.redact(s)
		if r != s {
			*changed = true
		}
		return r
	}
	switch x := v.(type) {
	case string:
		return mask(x)
	case json.Number:
		if r := mask(x.String()); r != x.String() {
			return r
		}
	case []any:
		for i := range x {
			x[i] = c.redactValue(x[i], changed)
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[mask(k)] = c.redactValue(e, changed)
		}
		return out
	}
	return v
}

// logBuffer keeps log records up to a byte budget and counts the rest.
type logBuffer struct {
	max     int
	used    int
	dropped int
	records []LogRecord
	redact  func(string) string
}

func (l *logBuffer) add(level, msg string, attrs map[string]any, source string, size int) {
	if size == 0 {
		size = len(msg)
	}
	if l.used+size > l.max {
		l.dropped++
		return
	}
	l.used += size
	msg = l.redact(msg)
	for k, v := range attrs {
		if s, ok := v.(string); ok {
			attrs[k] = l.redact(s)
		}
	}
	l.records = append(l.records, LogRecord{Time: time.Now().UTC(), Level: level, Message: msg, Attrs: attrs, Source: source})
}

// streamWriter turns a guest's stdout or stderr into log records, one per
// line, within the same byte budget as the log host function.
type streamWriter struct {
	logs   *logBuffer
	level  string
	source string
	buf    []byte
}

func (w *streamWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			room := maxLogLineBytes - len(w.buf)
			if len(p) <= room {
				w.buf = append(w.buf, p...)
				break
			}
			w.buf = append(w.buf, p[:room]...)
			p = p[room:]
			w.flush()
			continue
		}
		w.buf = append(w.buf, p[:i]...)
		p = p[i+1:]
		w.flush()
	}
	return n, nil
}

func (w *streamWriter) flush() {
	if len(w.buf) == 0 {
		return
	}
	w.logs.add(w.level, strings.ToValidUTF8(string(w.buf), "\uFFFD"), nil, w.source, len(w.buf))
	w.buf = w.buf[:0]
}

// flushDropped appends one record saying how many were dropped, so a
// reader of the logs knows they are incomplete.
func (l *logBuffer) flushDropped() {
	if l.dropped > 0 {
		l.records = append(l.records, LogRecord{Time: time.Now().UTC(), Level: "warn", Source: "host",
			Message: strconv.Itoa(l.dropped) + " log records dropped: the module exceeded limits.max_log_bytes (" + strconv.Itoa(l.max) + " bytes)"})
	}
}
