//go:build !wasip1

package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/guest-sdk/millracetest"
	"github.com/millrace/millrace/modules/internal/moduletest"
)

func TestManifest(t *testing.T) {
	t.Parallel()
	m := moduletest.Manifest(t)
	require.Equal(t, abi.Capabilities{}, m.Capabilities)
}

func TestEcho(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{`null`, `42`, `"text"`, `[1,2.5,"x"]`, `{"a":{"b":[true,null]}}`} {
		h := millracetest.NewHost()
		out, err := millracetest.Call(h, run, json.RawMessage(doc))
		require.NoError(t, err)
		require.JSONEq(t, doc, string(out))
		require.Len(t, h.Logs, 1)
		require.Equal(t, abi.LogInfo, h.Logs[0].Level)
	}
}

func TestEchoRejectsInvalidInput(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Input = []byte(`{"unterminated": `)
	h.Run(main)
	require.True(t, h.Failed)
	require.Contains(t, h.Error, "input: ")
}
