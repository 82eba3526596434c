package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWritesTheCorpusAsJSONL(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "spam.jsonl")
	var stderr bytes.Buffer
	require.NoError(t, run([]string{"-o", out}, nil, &stderr))
	require.Contains(t, stderr.String(), "6046 messages (1896 spam, 4150 ham)")
	f, err := os.Open(out)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<26)
	n := 0
	for sc.Scan() {
		var row struct{ Text, Label string }
		require.NoError(t, json.Unmarshal(sc.Bytes(), &row))
		require.Contains(t, []string{"spam", "ham"}, row.Label)
		n++
	}
	require.NoError(t, sc.Err())
	require.Equal(t, 6046, n)
	require.Error(t, run([]string{"-corpus", t.TempDir()}, nil, &stderr), "an empty folder is no corpus")
}
