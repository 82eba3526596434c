package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/millrace/millrace/migrations"
	"github.com/millrace/millrace/server/internal/pgtest"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/postgres"
	"github.com/millrace/millrace/server/store/storetest"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, url string) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Exercise(t, func(t *testing.T) store.Store { return open(t, pgtest.URL(t)) })
}

func TestMigrationsMirrorSQLite(t *testing.T) {
	t.Parallel()
	lite, err := migrations.For("sqlite")
	require.NoError(t, err)
	pg, err := migrations.For("postgres")
	require.NoError(t, err)
	require.Equal(t, len(lite), len(pg), "one PostgreSQL migration for each SQLite one")
	for i := range lite {
		require.Equal(t, lite[i].Name, pg[i].Name, "migration %03d", lite[i].Version)
	}
}

func TestMigrateDownAndUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t, pgtest.URL(t))
	require.NoError(t, db.KVSet(ctx, "a", "k", []byte("v"), 0))
	require.NoError(t, db.Migrate(ctx, 0))
	var tables int
	require.NoError(t, db.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'`).Scan(&tables))
	require.Zero(t, tables, "every down migration drops what its up created")
	_, err := db.KVGet(ctx, "a", "k")
	require.Error(t, err, "tables are gone at version 0")
	require.NoError(t, db.Migrate(ctx, -1))
	_, err = db.KVGet(ctx, "a", "k")
	require.ErrorIs(t, err, store.ErrNotFound, "tables are back, empty")
	require.Error(t, db.Migrate(ctx, 99))
}

func TestRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	ctx, url := context.Background(), pgtest.URL(t)
	db := open(t, url)
	_, err := db.Pool().Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (1000, now())`)
	require.NoError(t, err)
	_, err = postgres.Open(ctx, url)
	require.ErrorContains(t, err, "upgrade millrace")
}

func TestConcurrentOpen(t *testing.T) {
	t.Parallel()
	ctx, url := context.Background(), pgtest.URL(t)
	// Servers starting at once on a fresh database: one migrates, the
	// others wait on the advisory lock and find the work done.
	const n = 4
	dbs := make([]*postgres.DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = postgres.Open(ctx, url) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		defer dbs[i].Close()
	}
	var applied int
	require.NoError(t, dbs[0].Pool().QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&applied))
	all, err := migrations.For("postgres")
	require.NoError(t, err)
	require.Equal(t, len(all), applied, "each migration applied once")
	require.NoError(t, dbs[1].KVSet(ctx, "a", "k", []byte("v"), 0))
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx, url := context.Background(), pgtest.URL(t)
	db, err := postgres.Open(ctx, url)
	require.NoError(t, err)
	require.NoError(t, db.KVSet(ctx, "a", "k", []byte("v"), 0))
	require.NoError(t, db.Close())
	db = open(t, url)
	v, err := db.KVGet(ctx, "a", "k")
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
	require.NoError(t, db.Ping(ctx))
}

func TestKVKeysAreBytes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t, pgtest.URL(t))
	// U+0000 is valid UTF-8, which guests may use, and TEXT cannot hold.
	require.NoError(t, db.KVSet(ctx, "a", "k\x00é", []byte("v"), 10))
	v, err := db.KVGet(ctx, "a", "k\x00é")
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
	require.ErrorIs(t, db.KVSet(ctx, "a", "kk", []byte("vvvvv"), 10), store.ErrQuota, "5 bytes of key and value held, 7 more is over 10")
}

// SQLite runs one writer at a time; PostgreSQL runs them together. These
// are the writes whose answers depend on what was there before.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t, pgtest.URL(t))
	const n = 20

	t.Run("PublishWorkflow", func(t *testing.T) {
		require.NoError(t, db.PutWorkflowDraft(ctx, "w", json.RawMessage(`{}`)))
		got := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				v, err := db.PublishWorkflow(ctx, "w", json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)))
				assert(t, err)
				got[i] = v
			})
		}
		wg.Wait()
		slices.Sort(got)
		for i, v := range got {
			require.Equal(t, i+1, v, "versions 1…%d, each once", n)
		}
	})

	t.Run("PutModuleVersion", func(t *testing.T) {
		var created atomic.Int32
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				ok, err := db.PutModuleVersion(ctx, store.ModuleVersion{ModuleID: "m", Version: "1.0.0", SHA256: "cc", Size: 1, Manifest: json.RawMessage(`{}`)}, []byte("x"))
				assert(t, err)
				if ok {
					created.Add(1)
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, 1, created.Load(), "one upload creates; the others find it there")
	})

	t.Run("KVSetQuota", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				err := db.KVSet(ctx, "q", fmt.Sprintf("k%02d", i), make([]byte, 7), 50)
				if err != nil && !errors.Is(err, store.ErrQuota) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		var total int64
		require.NoError(t, db.Pool().QueryRow(ctx, `SELECT SUM(octet_length(key) + octet_length(value)) FROM kv_entries WHERE namespace = 'q'`).Scan(&total))
		require.Equal(t, int64(50), total, "five 10-byte entries fit in 50 bytes, and no more")
	})

	t.Run("RecordDelivery", func(t *testing.T) {
		require.NoError(t, db.CreateTrigger(ctx, store.Trigger{ID: "trg", WorkflowID: "w", Kind: "webhook", Config: json.RawMessage(`{}`)}))
		var created atomic.Int32
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				_, ok, err := db.RecordDelivery(ctx, "trg", "key", "")
				assert(t, err)
				if ok {
					created.Add(1)
				}
			})
		}
		wg.Wait()
		require.EqualValues(t, 1, created.Load())
	})
}

// assert fails the test from any goroutine (require must not be called
// outside the test's own).
func assert(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Error(err)
	}
}

func TestRedact(t *testing.T) {
	t.Parallel()
	got := postgres.Redact("postgres://millrace:s3cret@db.example:5433/prod?sslmode=require")
	require.Equal(t, "postgres://millrace@db.example:5433/prod", got)
	require.NotContains(t, postgres.Redact("host=db user=u password=s3cret dbname=d"), "s3cret")
	_, err := postgres.Open(context.Background(), "postgres://u:s3cret@db:notaport/d")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret", "errors do not leak the password either")
}
