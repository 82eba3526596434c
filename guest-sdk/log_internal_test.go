//go:build !wasip1

package millrace

import (
	"encoding/json"
	"log/slog"
	"testing"
)

// FuzzEncodeFields checks that log attributes always make a valid JSON
// object, whatever the keys and values hold, so the host never refuses a
// record.
func FuzzEncodeFields(f *testing.F) {
	f.Add("key", "value", 1.5)
	f.Add("", "\xff\x00\"\\", -0.0)
	f.Add("a.b", "\u2028", 1e308)
	f.Fuzz(func(t *testing.T, key, value string, num float64) {
		var fields []field
		fields = appendAttr(fields, "g.", slog.String(key, value))
		fields = appendAttr(fields, "", slog.Float64(key+"n", num))
		fields = appendAttr(fields, "", slog.Any(value, []string{key, value}))
		doc := encodeFields(fields)
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			t.Fatalf("encodeFields gave %q: %v", doc, err)
		}
	})
}
