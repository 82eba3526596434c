package secrets_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/millrace/millrace/server/secrets"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

func TestSealAndReveal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	require.NoError(t, err)
	defer db.Close()

	keyPath := filepath.Join(dir, "secret.key")
	key, err := secrets.LoadOrCreateKey(keyPath, "")
	require.NoError(t, err)
	fi, err := os.Stat(keyPath)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	again, err := secrets.LoadOrCreateKey(keyPath, "")
	require.NoError(t, err)
	require.Equal(t, key, again, "the key is stable across restarts")

	v, err := secrets.New(key, db)
	require.NoError(t, err)
	require.NoError(t, v.Put(ctx, "API_KEY", []byte("hunter2")))
	got, err := v.Reveal(ctx, "API_KEY")
	require.NoError(t, err)
	require.Equal(t, "hunter2", string(got))

	sealed, err := db.Secret(ctx, "API_KEY")
	require.NoError(t, err)
	require.NotContains(t, string(sealed), "hunter2", "stored sealed, not in clear")

	// A sealed value moved to another name does not open.
	require.NoError(t, db.PutSecret(ctx, "OTHER", sealed))
	_, err = v.Reveal(ctx, "OTHER")
	require.Error(t, err)

	_, err = v.Reveal(ctx, "MISSING")
	require.ErrorIs(t, err, store.ErrNotFound)

	other, err := secrets.New(make([]byte, 32), db)
	require.NoError(t, err)
	_, err = other.Reveal(ctx, "API_KEY")
	require.ErrorContains(t, err, "cannot be opened with this key")
}

func TestKeyFileChecks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "k")
	require.NoError(t, os.WriteFile(path, []byte("not base64!"), 0o600))
	_, err := secrets.LoadOrCreateKey(path, "")
	require.ErrorContains(t, err, "base64")
	require.NoError(t, os.Chmod(path, 0o644))
	_, err = secrets.LoadOrCreateKey(path, "")
	require.ErrorContains(t, err, "chmod 600")
	_, err = secrets.LoadOrCreateKey(path, "AAAA")
	require.ErrorContains(t, err, "32-byte")
}

func TestSealBindsAdditionalData(t *testing.T) {
	t.Parallel()
	v, err := secrets.New(make([]byte, 32), nil)
	require.NoError(t, err)
	sealed, err := v.Seal("trigger:trg_1", []byte("s3cret"))
	require.NoError(t, err)
	require.NotContains(t, string(sealed), "s3cret")
	plain, err := v.Open("trigger:trg_1", sealed)
	require.NoError(t, err)
	require.Equal(t, "s3cret", string(plain))
	_, err = v.Open("trigger:trg_2", sealed)
	require.Error(t, err, "sealed for another owner")
	_, err = v.Open("trigger:trg_1", sealed[:5])
	require.ErrorContains(t, err, "corrupt")
}
