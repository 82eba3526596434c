package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
	"github.com/millrace/millrace/server/secrets"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestBackupCommands walks the CLI: back up a data directory to a public
// key, refuse a non-empty target, restore with the identity file.
func TestBackupCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(filepath.Join(data, "datasets"), 0o700))
	db, err := sqlite.Open(ctx, filepath.Join(data, "millrace.db"))
	require.NoError(t, err)
	require.NoError(t, db.PutSecret(ctx, "S", []byte("sealed")))
	require.NoError(t, db.Close())
	require.NoError(t, os.WriteFile(filepath.Join(data, "datasets", "a.csv"), []byte("x,y\n1,2\n"), 0o600))

	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	idFile := filepath.Join(dir, "key.txt")
	require.NoError(t, os.WriteFile(idFile, []byte("# test\n"+id.String()+"\n"), 0o600))
	archive := filepath.Join(dir, "b.age")
	var stdout, stderr bytes.Buffer
	require.NoError(t, Run(ctx, []string{"backup", "create", "-data", data, "-o", archive, "-recipient", id.Recipient().String()}, &stdout, &stderr))
	require.Contains(t, stderr.String(), "sqlite database")

	err = Run(ctx, []string{"backup", "restore", "-data", data, "-i", archive, "-identity", idFile}, &stdout, &stderr)
	require.ErrorContains(t, err, "is not empty")

	restored := filepath.Join(dir, "restored")
	require.NoError(t, Run(ctx, []string{"backup", "restore", "-data", restored, "-i", archive, "-identity", idFile}, &stdout, &stderr))
	b, err := os.ReadFile(filepath.Join(restored, "datasets", "a.csv"))
	require.NoError(t, err)
	require.Equal(t, "x,y\n1,2\n", string(b))
	db, err = sqlite.Open(ctx, filepath.Join(restored, "millrace.db"))
	require.NoError(t, err)
	defer db.Close()
	sealed, err := db.Secret(ctx, "S")
	require.NoError(t, err)
	require.Equal(t, "sealed", string(sealed))
	// The restored server's audit log shows the backup (made before the
	// snapshot was taken, so not in it) and the restore itself.
	entries, err := db.ListAudit(ctx, store.AuditFilter{})
	require.NoError(t, err)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
		require.Contains(t, e.ActorName, "cli")
	}
	require.Contains(t, actions, "backup-restore")

	err = Run(ctx, []string{"backup", "create", "-data", data, "-o", archive}, &stdout, &stderr)
	require.ErrorContains(t, err, "needs a passphrase or at least one recipient")
}

func TestSecretsRotateKeyCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	data := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(data, "millrace.db"))
	require.NoError(t, err)
	key, err := secrets.LoadOrCreateKey(filepath.Join(data, "secret.key"), "")
	require.NoError(t, err)
	v, err := secrets.New(key, db)
	require.NoError(t, err)
	require.NoError(t, v.Put(ctx, "S", []byte("value")))
	require.NoError(t, db.Close())

	var stdout bytes.Buffer
	require.NoError(t, Run(ctx, []string{"secrets", "rotate-key", "-data", data}, &stdout, &bytes.Buffer{}))
	require.Contains(t, stdout.String(), "re-encrypted 1 secrets")
	db, err = sqlite.Open(ctx, filepath.Join(data, "millrace.db"))
	require.NoError(t, err)
	defer db.Close()
	key2, err := secrets.LoadOrCreateKey(filepath.Join(data, "secret.key"), "")
	require.NoError(t, err)
	require.NotEqual(t, key, key2)
	v2, err := secrets.New(key2, db)
	require.NoError(t, err)
	got, err := v2.Reveal(ctx, "S")
	require.NoError(t, err)
	require.Equal(t, "value", string(got))
}
