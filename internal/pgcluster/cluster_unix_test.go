//go:build unix

package pgcluster

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestFindBinaries(t *testing.T) {
	t.Parallel()
	_, err := findBinariesIn(t.TempDir(), t.TempDir()+"/*/bin")
	require.ErrorContains(t, err, "scripts/ensure-postgres.sh", "the message says how to get them")

	// Debian's layout: the newest version wins.
	root := t.TempDir()
	for _, v := range []string{"9", "15", "13"} {
		bin := filepath.Join(root, v, "bin")
		require.NoError(t, os.MkdirAll(bin, 0o755))
		for _, name := range []string{"initdb", "postgres"} {
			require.NoError(t, os.WriteFile(filepath.Join(bin, name), nil, 0o755))
		}
	}
	dir, err := findBinariesIn(t.TempDir(), root+"/*/bin")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, "15", "bin"), dir)

	// On PATH, through a symbolic link, as /usr/local/bin/initdb may be.
	onPath := t.TempDir()
	require.NoError(t, os.Symlink(filepath.Join(root, "13", "bin", "initdb"), filepath.Join(onPath, "initdb")))
	dir, err = findBinariesIn(onPath, t.TempDir()+"/*/bin")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, "13", "bin"), dir)
}

// A cluster starts with the caller's settings over the defaults, serves,
// and leaves nothing behind when stopped.
func TestStartStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server; skipped with -short")
	}
	if _, err := findBinaries(); err != nil {
		// A missing server is a broken set-up, not a reason to pass:
		// make test installs it (scripts/ensure-postgres.sh).
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := Start(ctx, "fsync=on", "application_name=pgcluster_test")
	require.NoError(t, err)
	t.Cleanup(func() { c.Stop() })
	require.Positive(t, c.Pid())
	conn, err := pgx.Connect(ctx, c.URL)
	require.NoError(t, err)
	var fsync, sync string
	require.NoError(t, conn.QueryRow(ctx, `SELECT current_setting('fsync'), current_setting('synchronous_commit')`).Scan(&fsync, &sync))
	require.Equal(t, "on", fsync, "a later -c overrides the default")
	require.Equal(t, "off", sync, "defaults not overridden stay")
	conn.Close(ctx)

	require.NoError(t, c.Stop())
	_, err = os.Stat(c.dir)
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = pgx.Connect(ctx, c.URL)
	require.Error(t, err, "the server is gone")
}
