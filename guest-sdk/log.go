package millrace

import (
	"bytes"
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/guest-sdk/internal/hostcall"
)

// Logger returns a logger whose records go to the host's log function. The
// slog level maps to the ABI's (below Info: debug, below Warn: info, below
// Error: warn, else error); attributes become a JSON object, with the
// keys of groups joined by dots ("req.method"). The host timestamps each
// record and bounds the total volume, so logging never fails the module.
func Logger() *slog.Logger {
	return slog.New(&logHandler{})
}

// logHandler is immutable: WithAttrs and WithGroup return copies.
type logHandler struct {
	prefix string  // open groups, each followed by a dot
	attrs  []field // attributes added with WithAttrs, keys already prefixed
}

// field is one attribute with its value already encoded as JSON.
type field struct {
	key   string
	value json.RawMessage
}

var _ slog.Handler = (*logHandler)(nil)

// Enabled reports true for every level: the host keeps debug records too,
// and filtering there keeps one place to change it.
func (h *logHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	fields := h.attrs[:len(h.attrs):len(h.attrs)] // appending must not share h's array
	r.Attrs(func(a slog.Attr) bool {
		fields = appendAttr(fields, h.prefix, a)
		return true
	})
	// The host refuses invalid UTF-8; a mangled message beats a lost one.
	hostcall.Log(abiLevel(r.Level), strings.ToValidUTF8(r.Message, "\uFFFD"), encodeFields(fields))
	return nil
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	h2 := *h
	h2.attrs = h.attrs[:len(h.attrs):len(h.attrs)]
	for _, a := range attrs {
		h2.attrs = appendAttr(h2.attrs, h.prefix, a)
	}
	return &h2
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + name + "."
	return &h2
}

func abiLevel(l slog.Level) abi.LogLevel {
	switch {
	case l < slog.LevelInfo:
		return abi.LogDebug
	case l < slog.LevelWarn:
		return abi.LogInfo
	case l < slog.LevelError:
		return abi.LogWarn
	}
	return abi.LogError
}

// appendAttr flattens a into fields following slog's rules: empty
// attributes are dropped, groups are flattened with dots, and a group with
// an empty key is inlined.
func appendAttr(fields []field, prefix string, a slog.Attr) []field {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return fields
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, ga := range a.Value.Group() {
			fields = appendAttr(fields, prefix, ga)
		}
		return fields
	}
	return append(fields, field{key: prefix + a.Key, value: encodeValue(a.Value)})
}

// encodeValue turns an attribute value into JSON. Values JSON cannot hold
// (NaN, channels, cycles) fall back to their fmt form so a record is never
// lost to an awkward attribute.
func encodeValue(v slog.Value) json.RawMessage {
	var x any
	switch v.Kind() {
	case slog.KindDuration:
		x = v.Duration().String()
	case slog.KindTime:
		x = v.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		x = v.Any()
		switch a := x.(type) {
		case json.Marshaler, encoding.TextMarshaler:
		case error:
			x = a.Error()
		case fmt.Stringer:
			x = a.String()
		}
	default:
		x = v.Any()
	}
	b, err := json.Marshal(x)
	if err != nil {
		b, _ = json.Marshal(fmt.Sprintf("%+v", x))
	}
	return b
}

// encodeFields writes fields as one JSON object in their order. A key
// given twice keeps its first position and its last value, as a decoder
// would; no fields gives nil, the ABI's "no attributes".
func encodeFields(fields []field) []byte {
	if len(fields) == 0 {
		return nil
	}
	seen := make(map[string]int, len(fields))
	uniq := make([]field, 0, len(fields))
	for _, f := range fields {
		if i, ok := seen[f.key]; ok {
			uniq[i].value = f.value
			continue
		}
		seen[f.key] = len(uniq)
		uniq = append(uniq, f)
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range uniq {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(f.value)
	}
	buf.WriteByte('}')
	return buf.Bytes()
}
