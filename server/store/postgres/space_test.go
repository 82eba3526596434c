package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/millrace/millrace/server/internal/pgtest"
	"github.com/millrace/millrace/server/store"
	"github.com/stretchr/testify/require"
)

// Retention makes the space of deleted runs reusable at once, and gives
// empty space at the end of the artifacts table back to the file system.
//
// Not parallel: VACUUM can only free rows no other transaction may still
// see, so this test runs alone (Go runs non-parallel tests before the
// parallel ones), instead of racing the other tests' transactions.
func TestRetentionFreesSpace(t *testing.T) {
	ctx := context.Background()
	db := open(t, pgtest.URL(t))
	const perBatch, size = 8, 1 << 20
	add := func(prefix string, finished time.Time) {
		for i := range perBatch {
			id := fmt.Sprintf("run_%s%d", prefix, i)
			require.NoError(t, db.CreateRun(ctx, store.Run{ID: id, WorkflowID: "w", Version: 1, Status: "succeeded", Input: json.RawMessage(`{}`), FinishedAt: &finished}))
			data := make([]byte, size) // random: TOAST cannot compress it
			rand.Read(data)
			require.NoError(t, db.PutArtifact(ctx, store.Artifact{ID: "art_" + id, RunID: id, NodeID: "a", Name: "output", ContentType: "application/octet-stream", Size: size, SHA256: "x", Data: data}))
		}
	}
	// VACUUM frees the space of rows that no transaction can still see:
	// wait until every transaction of other tests (they share the
	// database) that began before the delete has ended.
	settle := func() {
		var deleted time.Time
		require.NoError(t, db.Pool().QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&deleted))
		require.Eventually(t, func() bool {
			var older int
			require.NoError(t, db.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL AND xact_start <= $1`, deleted).Scan(&older))
			return older == 0
		}, 30*time.Second, 10*time.Millisecond)
	}
	tableSize := func() int64 {
		var n int64
		require.NoError(t, db.Pool().QueryRow(ctx, `SELECT pg_total_relation_size('artifacts')`).Scan(&n))
		return n
	}
	now := time.Now()
	add("a", now.Add(-48*time.Hour)) // old
	add("b", now)                    // recent, written after: at the table's end
	full := tableSize()
	require.Greater(t, full, int64(2*perBatch*size))

	// The old half goes. Its space sits before live rows, so it cannot be
	// truncated away, but a new batch of the same size fits in it.
	n, err := db.PruneRuns(ctx, now.Add(-time.Hour), 0, 100)
	require.NoError(t, err)
	require.EqualValues(t, perBatch, n)
	settle()
	require.NoError(t, db.ReclaimSpace(ctx))
	add("c", now)
	require.Less(t, tableSize(), full+full/10, "the new batch reused the freed space (%d bytes before)", full)

	// Everything goes; twice the data written afterwards still fits in
	// the same file. (Whether VACUUM also truncates the file's empty end
	// depends on a lock that parallel tests may hold, so the test asserts
	// reuse, which VACUUM always provides.)
	n, err = db.PruneRuns(ctx, now.Add(time.Hour), 0, 100)
	require.NoError(t, err)
	require.EqualValues(t, 2*perBatch, n)
	settle()
	require.NoError(t, db.ReclaimSpace(ctx))
	add("d", now)
	add("e", now)
	require.Less(t, tableSize(), full+full/10, "the new batches reused the freed space (%d bytes before)", full)
}
