package builtin_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/millrace/millrace/server/builtin"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testguests.Cleanup()
	os.Exit(code)
}

// A data directory that holds a built-in's version with other bytes (an
// older build) keeps that copy: Install names it as kept, installs the
// others, and reports no error.
func TestInstallKeepsAnEarlierBuildOfAVersion(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	eng, err := sandbox.NewWazero(ctx, sandbox.WazeroConfig{CacheDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close(context.Background()) })
	reg := registry.New(registry.Config{}, db, eng, nil)

	mods, err := builtin.Modules()
	require.NoError(t, err)
	var echo builtin.Module
	for _, m := range mods {
		if m.Name == "echo" {
			echo = m
		}
	}
	require.NotEmpty(t, echo.Wasm)
	// "An older build": other bytes under echo's manifest.
	older := testguests.Wasm(t, "echo")
	require.NotEqual(t, echo.Wasm, older)
	_, _, err = reg.Upload(ctx, older, echo.Manifest)
	require.NoError(t, err)

	installed, kept, err := builtin.Install(ctx, reg)
	require.NoError(t, err)
	require.Equal(t, []string{"echo"}, kept)
	require.NotContains(t, installed, "echo@1.0.0")
	require.Len(t, installed, len(mods)-1)

	v, err := reg.Get(ctx, "echo", "1.0.0")
	require.NoError(t, err)
	sum := sha256.Sum256(older)
	require.Equal(t, hex.EncodeToString(sum[:]), v.SHA256, "the copy installed first is kept")

	// A second start changes nothing.
	again, keptAgain, err := builtin.Install(ctx, reg)
	require.NoError(t, err)
	require.Equal(t, kept, keptAgain)
	require.ElementsMatch(t, installed, again)
}
