package jsonvalue

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	v, err := Decode([]byte(`{"i": 3, "big": 9007199254740993, "f": 1.5, "e": 1e3, "huge": 1e400, "l": [1, "x", null, true]}`))
	require.NoError(t, err)
	require.Equal(t, map[string]any{
		"i":    int64(3),
		"big":  int64(9007199254740993),
		"f":    1.5,
		"e":    1000.0,
		"huge": math.Inf(1),
		"l":    []any{int64(1), "x", nil, true},
	}, v)
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{``, `{`, `1 2`, `{"a":1}]`} {
		_, err := Decode([]byte(doc))
		require.Error(t, err, doc)
	}
}

// FuzzDecode checks that Decode accepts exactly the valid JSON documents
// and that what it returns encodes back to JSON.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`null`, `{"a":[1,2.5,"x",true]}`, `1e400`, `-0`, `"\u00e9"`, `[`, `1 2`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		v, err := Decode(doc)
		if (err == nil) != json.Valid(doc) {
			t.Fatalf("Decode(%q) error %v, but json.Valid says %v", doc, err, json.Valid(doc))
		}
		if err != nil || hasInf(v) {
			return
		}
		if _, err := json.Marshal(v); err != nil {
			t.Fatalf("the decoded value of %q does not encode: %v", doc, err)
		}
	})
}

func hasInf(v any) bool {
	switch v := v.(type) {
	case float64:
		return math.IsInf(v, 0)
	case map[string]any:
		for _, e := range v {
			if hasInf(e) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasInf(e) {
				return true
			}
		}
	}
	return false
}
