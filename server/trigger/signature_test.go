package trigger

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	secret := []byte("whsec_test")
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"a":1}`)
	good := Sign(string(secret), ts, body)
	require.True(t, strings.HasPrefix(good, "sha256="))

	require.NoError(t, verifySignature(secret, ts, good, body, now))
	require.NoError(t, verifySignature(secret, ts, "sha256="+strings.ToUpper(good[7:]), body, now), "hex digits in either case")
	require.NoError(t, verifySignature(secret, ts, good, body, now.Add(4*time.Minute)), "within the allowed skew")

	for name, c := range map[string]struct {
		ts, sig string
		body    string
		at      time.Time
		msg     string
	}{
		"other body":      {ts, good, `{"a":2}`, now, "does not match"},
		"other secret":    {ts, Sign("other", ts, body), string(body), now, "does not match"},
		"stale":           {ts, good, string(body), now.Add(6 * time.Minute), "away from the server's clock"},
		"future":          {ts, good, string(body), now.Add(-6 * time.Minute), "away from the server's clock"},
		"no timestamp":    {"", good, string(body), now, "missing X-Millrace-Timestamp"},
		"signed ts":       {"+" + ts, good, string(body), now, "not Unix seconds"},
		"fractional ts":   {ts + ".5", good, string(body), now, "not Unix seconds"},
		"no signature":    {ts, "", string(body), now, "missing X-Millrace-Signature"},
		"other algorithm": {ts, "sha1=" + good[7:], string(body), now, `start with "sha256="`},
		"short":           {ts, good[:len(good)-2], string(body), now, "64 hex digits"},
		"not hex":         {ts, "sha256=" + strings.Repeat("zz", 32), string(body), now, "64 hex digits"},
	} {
		err := verifySignature(secret, c.ts, c.sig, []byte(c.body), c.at)
		require.ErrorContains(t, err, c.msg, name)
	}
}

// FuzzWebhookHeaders runs arbitrary signature and timestamp headers and
// bodies through the verifier: it never panics, never accepts a
// signature it did not make, and always accepts one it did.
func FuzzWebhookHeaders(f *testing.F) {
	f.Add("1800000000", "sha256="+strings.Repeat("ab", 32), []byte(`{}`))
	f.Add("", "", []byte(nil))
	f.Add("99999999999999999999", "sha256=", []byte("x"))
	f.Add("1800000000", " sha256=00 ", []byte("\x00"))
	secret := []byte("whsec_fuzz")
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		if _, err := parseTimestamp(ts); err == nil && len(ts) > 12 {
			t.Fatalf("accepted a %d-digit timestamp", len(ts))
		}
		if b, err := parseSignature(sig); err == nil && len(b) != 32 {
			t.Fatalf("accepted a %d-byte signature", len(b))
		}
		if err := verifySignature(secret, ts, sig, body, now); err == nil && sig != Sign(string(secret), ts, body) &&
			!strings.EqualFold(strings.TrimSpace(sig), Sign(string(secret), ts, body)) {
			t.Fatalf("accepted a signature it did not make: ts=%q sig=%q", ts, sig)
		}
		if err := verifySignature(secret, "1800000000", Sign(string(secret), "1800000000", body), body, now); err != nil {
			t.Fatalf("refused its own signature: %v", err)
		}
	})
}
