package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/millrace/millrace/abi"
	"github.com/stretchr/testify/require"
)

func TestPackEmbedsTheManifest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in, out, man := filepath.Join(dir, "in.wasm"), filepath.Join(dir, "out.wasm"), filepath.Join(dir, "manifest.json")
	wasm := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	manifest := `{"abi":1,"id":"x","name":"X","version":"1.0.0"}`
	require.NoError(t, os.WriteFile(in, wasm, 0o644))
	require.NoError(t, os.WriteFile(man, []byte(manifest), 0o644))

	var stderr bytes.Buffer
	require.NoError(t, Run(context.Background(), []string{"pack", "-manifest", man, "-o", out, in}, &bytes.Buffer{}, &stderr))
	packed, err := os.ReadFile(out)
	require.NoError(t, err)
	got, ok, err := abi.ManifestFromWasm(packed)
	require.NoError(t, err)
	require.True(t, ok)
	require.JSONEq(t, manifest, string(got))

	err = Run(context.Background(), []string{"pack", "-manifest", man, "-o", out, out}, &bytes.Buffer{}, &stderr)
	require.ErrorContains(t, err, "already carries a manifest")

	require.NoError(t, os.WriteFile(man, []byte(`{"abi":1,"id":"x"}`), 0o644))
	err = Run(context.Background(), []string{"pack", "-manifest", man, "-o", out, in}, &bytes.Buffer{}, &stderr)
	require.ErrorContains(t, err, "name: is required")
}

func TestCommands(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	require.NoError(t, Run(context.Background(), []string{"version"}, &stdout, &bytes.Buffer{}))
	require.Contains(t, stdout.String(), "ABI 1")
	require.ErrorContains(t, Run(context.Background(), []string{"frobnicate"}, &stdout, &bytes.Buffer{}), "unknown command")
	require.Error(t, Run(context.Background(), nil, &stdout, &bytes.Buffer{}))
}

func TestServeRefusesAnUnknownEngine(t *testing.T) {
	t.Parallel()
	err := Run(context.Background(), []string{"serve", "-engine", "v8", "-data", t.TempDir()}, &bytes.Buffer{}, &bytes.Buffer{})
	require.ErrorContains(t, err, `flag -engine: server.engine: unknown sandbox engine "v8"`)

	var out bytes.Buffer
	Run(context.Background(), []string{"serve", "-h"}, &bytes.Buffer{}, &out)
	require.Contains(t, out.String(), "sandbox engine: wazero or wasmtime")
}

func TestServeRefusesAnUnknownAccelMode(t *testing.T) {
	t.Parallel()
	err := Run(context.Background(), []string{"serve", "-data", t.TempDir(), "-accel", "maybe"}, &bytes.Buffer{}, &bytes.Buffer{})
	require.ErrorContains(t, err, `flag -accel: accel.mode: accel mode "maybe": want auto, on or off`)
}
