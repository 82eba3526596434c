package sandbox

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRedactOutput masks secrets wherever they occur in a JSON output,
// JSON-escaped ones and numbers included, and keeps the output valid JSON.
func TestRedactOutput(t *testing.T) {
	t.Parallel()
	c := &call{secrets: []string{`pa"ss\word`, "123456789", "tok-é"}}
	for _, tc := range []struct{ in, want string }{
		{`{"a":"nothing secret"}`, `{"a":"nothing secret"}`},
		{`{"a":"x pa\"ss\\word y"}`, `{"a":"x [redacted] y"}`},
		{`{"n":123456789,"list":["tok-\u00e9", 1.5]}`, `{"list":["[redacted]",1.5],"n":"[redacted]"}`},
		{`{"tok-é":true}`, `{"[redacted]":true}`},
		{`["tok-\u00e9"]`, `["[redacted]"]`},
	} {
		got := c.redactOutput([]byte(tc.in))
		require.True(t, json.Valid(got), string(got))
		require.JSONEq(t, tc.want, string(got))
	}
	unchanged := []byte(`{"b":1,  "a":2}`)
	require.Equal(t, unchanged, c.redactOutput(unchanged), "outputs without secrets are kept byte for byte")
}
