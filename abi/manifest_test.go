package abi_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/millrace/millrace/abi"
	"github.com/stretchr/testify/require"
)

const validManifest = `{
  "abi": 1, "id": "weather", "name": "Weather", "version": "1.2.0-rc.1+build.5",
  "description": "Fetches the weather.", "author": "A. Author", "license": "MIT",
  "type": "action", "category": "web", "icon": "🌦", "tags": ["http", "weather"],
  "inputs": {"type": "object", "properties": {"city": {"type": "string"}}},
  "outputs": {"type": "object"}, "config": true,
  "capabilities": {"allowed_outbound_hosts": ["https://api.weather.example:443", "https://*.example.org"],
    "kv": true, "secrets": ["WEATHER_API_KEY"], "accel": {"models": ["sdxl-base"]}},
  "limits": {"memory_mb": 64, "timeout_ms": 5000, "max_output_bytes": 65536, "max_log_bytes": 4096}
}`

func TestParseManifestValid(t *testing.T) {
	t.Parallel()
	m, err := abi.ParseManifest([]byte(validManifest))
	require.NoError(t, err)
	require.Equal(t, "weather", m.ID)
	require.Equal(t, []string{"WEATHER_API_KEY"}, m.Capabilities.Secrets)
	require.True(t, m.Capabilities.Requests(abi.CapHTTP))
	require.True(t, m.Capabilities.Requests(abi.CapKV))
	require.True(t, m.Capabilities.Requests(abi.CapCore))
	require.Equal(t, 64, m.Limits.MemoryMB)
}

func TestParseManifestErrorsNameTheField(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, patch, field, msg string
	}{
		{"unknown top-level field", `"colour": "red"`, "colour", "unknown field"},
		{"unknown nested field", `"capabilities": {"kvv": true}`, "capabilities.kvv", "unknown field"},
		{"unknown field in limits", `"limits": {"cpu": 2}`, "limits.cpu", "unknown field"},
		{"wrong type", `"tags": "http"`, "tags", "must be an array"},
		{"bad id", `"id": "Weather!"`, "id", "not a valid id"},
		{"bad version", `"version": "1.2"`, "version", "semantic version"},
		{"leading zero version", `"version": "01.2.3"`, "version", "semantic version"},
		{"abi version", `"abi": 2`, "abi", "not supported"},
		{"bad type", `"type": "daemon"`, "type", "not one of"},
		{"bad tag", `"tags": ["ok", "Not OK"]`, "tags[1]", "not a valid tag"},
		{"bad host", `"capabilities": {"allowed_outbound_hosts": ["https://example.com/path"]}`, "capabilities.allowed_outbound_hosts[0]", "no path"},
		{"bad scheme", `"capabilities": {"allowed_outbound_hosts": ["ftp://example.com"]}`, "capabilities.allowed_outbound_hosts[0]", "scheme"},
		{"bad secret", `"capabilities": {"secrets": ["1KEY"]}`, "capabilities.secrets[0]", "not a valid secret name"},
		{"negative limit", `"limits": {"memory_mb": -1}`, "limits.memory_mb", "out of range"},
		{"huge limit", `"limits": {"timeout_ms": 99999999}`, "limits.timeout_ms", "out of range"},
		{"schema not object", `"inputs": "string"`, "inputs", "JSON Schema"},
		{"reserved port", `"ports": ["ok", "error"]`, "ports[1]", "reserved"},
		{"duplicate port", `"ports": ["ok", "ok"]`, "ports[1]", "once each"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			doc := patch(t, c.patch)
			_, err := abi.ParseManifest(doc)
			var fe *abi.FieldError
			require.True(t, errors.As(err, &fe), "want a FieldError, got %v", err)
			require.Equal(t, c.field, fe.Field, fe.Error())
			require.Contains(t, fe.Msg, c.msg)
		})
	}
}

// patch replaces or adds top-level keys of validManifest.
func patch(t *testing.T, fields string) []byte {
	t.Helper()
	var base, extra map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(validManifest), &base))
	require.NoError(t, json.Unmarshal([]byte("{"+fields+"}"), &extra))
	for k, v := range extra {
		base[k] = v
	}
	b, err := json.Marshal(base)
	require.NoError(t, err)
	return b
}

func TestParseManifestRejectsMalformedDocuments(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{``, `[]`, `"x"`, `{"abi":1}{}`, `{"abi":1,`, strings.Repeat(" ", abi.MaxManifestBytes+1)} {
		_, err := abi.ParseManifest([]byte(doc))
		require.Error(t, err, "%q", doc)
	}
}

func TestManifestSectionRoundTrip(t *testing.T) {
	t.Parallel()
	wasm := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	got, ok, err := abi.ManifestFromWasm(wasm)
	require.NoError(t, err)
	require.False(t, ok)
	require.Nil(t, got)

	packed := abi.AppendManifestSection(wasm, []byte(validManifest))
	got, ok, err = abi.ManifestFromWasm(packed)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, validManifest, string(got))

	twice := abi.AppendManifestSection(packed, []byte(`{}`))
	_, _, err = abi.ManifestFromWasm(twice)
	require.ErrorContains(t, err, "more than one")

	_, _, err = abi.ManifestFromWasm([]byte("\x7fELF"))
	require.ErrorIs(t, err, abi.ErrNotWasm)
	_, _, err = abi.ManifestFromWasm(append(wasm, 0, 0xff, 0xff, 0xff, 0xff, 0x0f))
	require.Error(t, err)
}

func TestErrnoNames(t *testing.T) {
	t.Parallel()
	// The numbering is part of ABI v1 and must never change.
	require.Equal(t, "denied", abi.ErrnoDenied.String())
	require.EqualValues(t, 2, abi.ErrnoDenied)
	require.EqualValues(t, 7, abi.ErrnoNoResult)
	require.Equal(t, "unknown", abi.Errno(99).String())
	for name, cap := range abi.Functions {
		require.NotEmpty(t, cap, name)
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(validManifest))
	f.Add([]byte(`{"abi":1,"id":"a","name":"A","version":"0.0.1","capabilities":{},"limits":{}}`))
	f.Add([]byte(`{"capabilities":{"allowed_outbound_hosts":["http://[::1]:80"]}}`))
	f.Add([]byte(`{"tags":[1,2,3]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := abi.ParseManifest(data)
		if err != nil {
			var fe *abi.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error is not a FieldError: %v", err)
			}
			return
		}
		// Whatever parses must survive a round trip unchanged.
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := abi.ParseManifest(b)
		if err != nil {
			t.Fatalf("re-encoded manifest does not parse: %v\n%s", err, b)
		}
		if m2.ID != m.ID || m2.Version != m.Version {
			t.Fatalf("round trip changed the manifest")
		}
	})
}

func FuzzManifestFromWasm(f *testing.F) {
	base := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	f.Add(base)
	f.Add(abi.AppendManifestSection(base, []byte(`{"abi":1}`)))
	f.Add(append(base, 0, 5, 0xff, 'a', 'b', 'c', 'd'))
	f.Fuzz(func(t *testing.T, wasm []byte) {
		m, ok, err := abi.ManifestFromWasm(wasm)
		if err != nil {
			return
		}
		if ok && len(m) > len(wasm) {
			t.Fatal("manifest longer than the module")
		}
		if !ok {
			packed := abi.AppendManifestSection(wasm, []byte("x"))
			got, ok, err := abi.ManifestFromWasm(packed)
			if err != nil || !ok || string(got) != "x" {
				t.Fatalf("appending to a valid module broke it: %v %v %q", err, ok, got)
			}
		}
	})
}
