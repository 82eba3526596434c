package secrets_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/millrace/millrace/server/internal/pgtest"
	"github.com/millrace/millrace/server/secrets"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/postgres"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backends opens a fresh store of each kind.
var backends = map[string]func(t *testing.T) store.Store{
	"sqlite": func(t *testing.T) store.Store {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		return db
	},
	"postgres": func(t *testing.T) store.Store {
		db, err := postgres.Open(context.Background(), pgtest.URL(t))
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		return db
	},
}

// sealedState puts two secrets and a webhook secret under the vault.
func sealedState(t *testing.T, db store.Store, v *secrets.Vault) {
	ctx := context.Background()
	require.NoError(t, v.Put(ctx, "A", []byte("alpha")))
	require.NoError(t, v.Put(ctx, "B", []byte("beta")))
	require.NoError(t, db.PutWorkflowDraft(ctx, "w", json.RawMessage(`{}`)))
	sealed, err := v.Seal(secrets.TriggerAD("trg_1"), []byte("hook-secret"))
	require.NoError(t, err)
	require.NoError(t, db.CreateTrigger(ctx, store.Trigger{ID: "trg_1", WorkflowID: "w", Kind: "webhook", Config: json.RawMessage(`{}`), Secret: sealed}))
}

func requireOpens(t *testing.T, db store.Store, v *secrets.Vault) {
	t.Helper()
	ctx := context.Background()
	a, err := v.Reveal(ctx, "A")
	require.NoError(t, err)
	require.Equal(t, "alpha", string(a))
	tr, err := db.Trigger(ctx, "trg_1")
	require.NoError(t, err)
	h, err := v.Open(secrets.TriggerAD("trg_1"), tr.Secret)
	require.NoError(t, err)
	require.Equal(t, "hook-secret", string(h))
}

func vaultFromFile(t *testing.T, path string, db store.Store) *secrets.Vault {
	t.Helper()
	key, err := secrets.LoadOrCreateKey(path, "")
	require.NoError(t, err)
	v, err := secrets.New(key, db)
	require.NoError(t, err)
	return v
}

func TestRotateKeyFile(t *testing.T) {
	t.Parallel()
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := open(t)
			path := filepath.Join(t.TempDir(), "secret.key")
			v := vaultFromFile(t, path, db)
			sealedState(t, db, v)
			oldKey, err := os.ReadFile(path)
			require.NoError(t, err)

			n, err := secrets.RotateKeyFile(ctx, v, path)
			require.NoError(t, err)
			require.Equal(t, 3, n)
			requireOpens(t, db, v)
			newKey, err := os.ReadFile(path)
			require.NoError(t, err)
			require.NotEqual(t, oldKey, newKey)
			kept, err := os.ReadFile(path + ".old")
			require.NoError(t, err)
			require.Equal(t, oldKey, kept, "the old key is kept, for backups made before")
			_, err = os.Stat(path + ".next")
			require.ErrorIs(t, err, os.ErrNotExist)
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

			// A restarted server opens everything with the new file; the
			// old key alone opens nothing any more.
			requireOpens(t, db, vaultFromFile(t, path, db))
			oldOnly := filepath.Join(t.TempDir(), "old.key")
			require.NoError(t, os.WriteFile(oldOnly, oldKey, 0o600))
			_, err = vaultFromFile(t, oldOnly, db).Reveal(ctx, "A")
			require.ErrorContains(t, err, "cannot be opened with this key")
		})
	}
}

// TestRotationSurvivesACrash stops a rotation after the transaction
// committed but before the key file was replaced (the worst moment), and
// before it committed, and lets the next start finish it.
func TestRotationSurvivesACrash(t *testing.T) {
	t.Parallel()
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := open(t)
			path := filepath.Join(t.TempDir(), "secret.key")
			v := vaultFromFile(t, path, db)
			sealedState(t, db, v)

			// Step 1 done, crash before step 3: only path.next exists.
			next := make([]byte, secrets.KeySize)
			next[0] = 7
			require.NoError(t, os.WriteFile(path+".next", []byte(encode(next)), 0o600))
			restarted := vaultFromFile(t, path, db)
			resumed, n, err := secrets.ResumeRotation(ctx, restarted, path)
			require.NoError(t, err)
			require.True(t, resumed)
			require.Equal(t, 3, n)
			requireOpens(t, db, vaultFromFile(t, path, db))
			b, _ := os.ReadFile(path)
			require.Equal(t, encode(next), string(b))

			// Step 3 committed, crash before step 4: the data is under
			// path.next's key while path holds the previous one.
			next2 := make([]byte, secrets.KeySize)
			next2[0] = 8
			require.NoError(t, os.WriteFile(path+".next", []byte(encode(next2)), 0o600))
			crashed := vaultFromFile(t, path, db)
			_, err = crashed.Rotate(ctx, next2)
			require.NoError(t, err)
			restarted = vaultFromFile(t, path, db)
			_, err = restarted.Reveal(ctx, "A")
			require.Error(t, err, "the key file is behind the data")
			resumed, _, err = secrets.ResumeRotation(ctx, restarted, path)
			require.NoError(t, err)
			require.True(t, resumed)
			requireOpens(t, db, restarted)
			requireOpens(t, db, vaultFromFile(t, path, db))

			resumed, _, err = secrets.ResumeRotation(ctx, restarted, path)
			require.NoError(t, err)
			require.False(t, resumed, "nothing to resume after a finished rotation")
		})
	}
}

// TestRotateFailsWhole: a value that does not open (sealed under a lost
// key) stops the rotation before anything changes.
func TestRotateFailsWhole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := backends["sqlite"](t)
	path := filepath.Join(t.TempDir(), "secret.key")
	v := vaultFromFile(t, path, db)
	sealedState(t, db, v)
	require.NoError(t, db.PutSecret(ctx, "LOST", []byte("sealed under a key nobody has any more")))
	before, _ := os.ReadFile(path)
	_, err := secrets.RotateKeyFile(ctx, v, path)
	require.ErrorContains(t, err, "secret LOST")
	after, _ := os.ReadFile(path)
	require.Equal(t, before, after)
	_, err = os.Stat(path + ".next")
	require.ErrorIs(t, err, os.ErrNotExist, "a rotation that changed nothing leaves nothing to resume")
	requireOpens(t, db, v)
	requireOpens(t, db, vaultFromFile(t, path, db))
}

func encode(key []byte) string { return base64.StdEncoding.EncodeToString(key) + "\n" }

// TestPreviousKeyStillOpens: a server that has not learnt of a rotation
// seals a value under the old key; a server started with the rotated key
// file still opens it (secret.key.old), and the next rotation re-encrypts
// it under the newest key.
func TestPreviousKeyStillOpens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := backends["sqlite"](t)
	path := filepath.Join(t.TempDir(), "secret.key")
	straggler := vaultFromFile(t, path, db)
	sealedState(t, db, straggler)
	rotator := vaultFromFile(t, path, db)
	_, err := secrets.RotateKeyFile(ctx, rotator, path)
	require.NoError(t, err)
	require.NoError(t, straggler.Put(ctx, "LATE", []byte("late value")))

	restarted := vaultFromFile(t, path, db)
	_, _, err = secrets.ResumeRotation(ctx, restarted, path)
	require.NoError(t, err)
	got, err := restarted.Reveal(ctx, "LATE")
	require.NoError(t, err)
	require.Equal(t, "late value", string(got))

	_, err = secrets.RotateKeyFile(ctx, restarted, path)
	require.NoError(t, err)
	fresh := vaultFromFile(t, path, db)
	got, err = fresh.Reveal(ctx, "LATE")
	require.NoError(t, err, "re-encrypted under the newest key")
	require.Equal(t, "late value", string(got))
	requireOpens(t, db, fresh)
}
