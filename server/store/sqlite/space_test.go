package sqlite_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

// fileSize is the database's size on disk after a checkpoint, which moves
// the write-ahead log into the main file.
func fileSize(t *testing.T, db *sqlite.DB, path string) int64 {
	t.Helper()
	_, err := db.SQL().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	require.NoError(t, err)
	st, err := os.Stat(path)
	require.NoError(t, err)
	return st.Size()
}

// Retention gives the space of deleted runs back to the file system.
func TestRetentionFreesSpace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	db, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	defer db.Close()
	const runs, size = 8, 1 << 20
	old := time.Now().Add(-48 * time.Hour)
	for i := range runs {
		id := fmt.Sprintf("run_%02d", i)
		require.NoError(t, db.CreateRun(ctx, store.Run{ID: id, WorkflowID: "w", Version: 1, Status: "succeeded", Input: json.RawMessage(`{}`), FinishedAt: &old}))
		data := make([]byte, size)
		rand.Read(data)
		require.NoError(t, db.PutArtifact(ctx, store.Artifact{ID: "art_" + id, RunID: id, NodeID: "a", Name: "output", ContentType: "application/octet-stream", Size: size, SHA256: "x", Data: data}))
	}
	before := fileSize(t, db, path)
	require.Greater(t, before, int64(runs*size))

	n, err := db.PruneRuns(ctx, time.Now().Add(-time.Hour), 0, 100)
	require.NoError(t, err)
	require.EqualValues(t, runs, n)
	require.NoError(t, db.ReclaimSpace(ctx))
	var free int64
	require.NoError(t, db.SQL().QueryRow(`PRAGMA freelist_count`).Scan(&free))
	require.Zero(t, free, "no free pages left in the file")
	after := fileSize(t, db, path)
	require.Less(t, after, before-int64(runs-1)*size, "the file shrank by what was deleted (%d → %d bytes)", before, after)
}

// A database made before auto_vacuum was set is converted when opened.
func TestOpenConvertsToIncrementalVacuum(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	raw, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	_, err = raw.Exec(`CREATE TABLE leftover (x INTEGER); INSERT INTO leftover VALUES (42)`)
	require.NoError(t, err)
	var mode int
	require.NoError(t, raw.QueryRow(`PRAGMA auto_vacuum`).Scan(&mode))
	require.Zero(t, mode, "SQLite's default: no auto-vacuum")
	require.NoError(t, raw.Close())

	db, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, db.SQL().QueryRow(`PRAGMA auto_vacuum`).Scan(&mode))
	require.Equal(t, 2, mode, "INCREMENTAL")
	var x int
	require.NoError(t, db.SQL().QueryRow(`SELECT x FROM leftover`).Scan(&x))
	require.Equal(t, 42, x, "the data survives the conversion")
}
