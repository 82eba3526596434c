package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sdxl")
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-o", dir, "-variant", "fp16", "-turbo"}, &out))
	require.Contains(t, out.String(), dir)
	cfg, err := os.ReadFile(filepath.Join(dir, "scheduler/scheduler_config.json"))
	require.NoError(t, err)
	require.Contains(t, string(cfg), "EulerAncestralDiscreteScheduler")
	require.FileExists(t, filepath.Join(dir, "unet/model.onnx_data"))

	require.ErrorContains(t, run(context.Background(), nil, &out), "-o DIR")
	require.ErrorContains(t, run(context.Background(), []string{"-o", dir, "-variant", "int8"}, &out), "int8")
}
