package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/millrace/millrace/server/store/storetest"
	"github.com/stretchr/testify/require"
)

func open(t *testing.T) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "millrace.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Exercise(t, func(t *testing.T) store.Store { return open(t) })
}

func TestMigrateDownAndUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	require.NoError(t, db.KVSet(ctx, "a", "k", []byte("v"), 0))
	require.NoError(t, db.Migrate(ctx, 0))
	_, err := db.KVGet(ctx, "a", "k")
	require.Error(t, err, "tables are gone at version 0")
	require.NoError(t, db.Migrate(ctx, -1))
	_, err = db.KVGet(ctx, "a", "k")
	require.ErrorIs(t, err, store.ErrNotFound, "tables are back, empty")
	require.Error(t, db.Migrate(ctx, 99))
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	db, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	require.NoError(t, db.KVSet(ctx, "a", "k", []byte("v"), 0))
	require.NoError(t, db.Close())
	db, err = sqlite.Open(ctx, path)
	require.NoError(t, err)
	defer db.Close()
	v, err := db.KVGet(ctx, "a", "k")
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
}
