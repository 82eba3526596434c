// Package moduletest holds checks that every built-in module's tests share.
package moduletest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/abi"
)

// Manifest parses manifest.json in the current directory (go test runs in
// the module's folder) with the host's parser and checks the conventions
// of built-in modules: the id is the folder's name, the version a release
// (bumped when the module's behaviour changes: a data directory keeps the
// bytes it installed for a version), and author and license the shared
// ones.
func Manifest(t *testing.T) *abi.Manifest {
	t.Helper()
	data, err := os.ReadFile("manifest.json")
	require.NoError(t, err)
	m, err := abi.ParseManifest(data)
	require.NoError(t, err)

	wd, err := os.Getwd()
	require.NoError(t, err)
	require.Equal(t, filepath.Base(wd), m.ID, "the id must be the folder's name")
	require.Equal(t, abi.Version, m.ABI)
	require.Regexp(t, `^[1-9][0-9]*\.[0-9]+\.[0-9]+$`, m.Version, "a released version, 1.0.0 or later")
	require.Equal(t, "Millrace", m.Author)
	require.Equal(t, "Apache-2.0", m.License)
	for name, field := range map[string]string{"name": m.Name, "description": m.Description, "type": m.Type, "category": m.Category, "icon": m.Icon} {
		require.NotEmpty(t, field, name)
	}
	require.NotEmpty(t, m.Tags)
	for name, schema := range map[string][]byte{"inputs": m.Inputs, "outputs": m.Outputs, "config": m.Config} {
		require.NotEmpty(t, schema, name)
	}
	return m
}
