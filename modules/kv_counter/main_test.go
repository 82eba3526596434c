//go:build !wasip1

package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/guest-sdk/millracetest"
	"github.com/millrace/millrace/modules/internal/moduletest"
)

func ptr(n int64) *int64 { return &n }

func TestManifest(t *testing.T) {
	t.Parallel()
	m := moduletest.Manifest(t)
	require.True(t, m.Capabilities.KV)
}

func TestCounter(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Grants = &moduletest.Manifest(t).Capabilities

	out, err := millracetest.Call(h, run, input{})
	require.NoError(t, err)
	require.Equal(t, output{Key: "default", Value: 1}, out)

	out, err = millracetest.Call(h, run, input{})
	require.NoError(t, err)
	require.Equal(t, output{Key: "default", Value: 2}, out)

	out, err = millracetest.Call(h, run, input{Key: "visits", Delta: ptr(-5)})
	require.NoError(t, err)
	require.Equal(t, output{Key: "visits", Value: -5}, out)

	out, err = millracetest.Call(h, run, input{Key: "visits", Delta: ptr(0)})
	require.NoError(t, err)
	require.Equal(t, output{Key: "visits", Value: -5}, out)

	require.Equal(t, "2", string(h.KV["default"]))
}

func TestCounterErrors(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.KV["text"] = []byte("not a number")
	_, err := millracetest.Call(h, run, input{Key: "text"})
	require.EqualError(t, err, "kv_add: invalid_argument")

	h.Grants = &moduletest.Manifest(t).Capabilities
	h.Grants.KV = false
	_, err = millracetest.Call(h, run, input{})
	require.EqualError(t, err, "kv_add: denied")
}
