package backup_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"
	"github.com/millrace/millrace/server/backup"
	"github.com/millrace/millrace/server/internal/pgtest"
	"github.com/millrace/millrace/server/secrets"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/postgres"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// populate writes a row into every table the store has, through the
// store itself, so that the comparison after a restore covers them all.
func populate(t *testing.T, s store.Store, vault *secrets.Vault) {
	ctx := context.Background()
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	require.NoError(t, s.CreateToken(ctx, store.Token{ID: "tok_1", Name: "ci", Hash: []byte{1, 2, 3}, Scopes: []string{"workflows:run"}}))
	_, err := s.TokenByHash(ctx, []byte{1, 2, 3}) // sets last_used_at
	require.NoError(t, err)
	_, err = s.PutModuleVersion(ctx, store.ModuleVersion{ModuleID: "m", Version: "1.0.0", SHA256: "ab", Size: 4, Manifest: raw(`{"id":"m"}`)}, []byte("\x00asm"))
	require.NoError(t, err)
	require.NoError(t, s.SetGrant(ctx, "m", "1.0.0", raw(`{"kv":true}`)))
	require.NoError(t, s.KVSet(ctx, "m", "k", []byte("value\x00\xff"), 1<<20))
	require.NoError(t, s.PutWorkflowDraft(ctx, "w", raw(`{"nodes":[]}`)))
	_, err = s.PublishWorkflow(ctx, "w", raw(`{"nodes":[],"v":1}`))
	require.NoError(t, err)
	require.NoError(t, s.CreateRun(ctx, store.Run{ID: "r1", WorkflowID: "w", Version: 1, Status: "queued", Input: raw(`{"a":"é\n\t\\"}`), Trigger: "manual"}))
	now := time.Now().UTC()
	require.NoError(t, s.PutNodeRun(ctx, store.NodeRun{RunID: "r1", NodeID: "a", Status: "succeeded", Attempts: 1, Input: raw(`{}`), Output: raw(`{"x":1}`), Logs: raw(`[]`), StartedAt: &now, FinishedAt: &now}))
	_, _, err = s.AcquireRunLease(ctx, "r1", "worker", now.Add(time.Minute))
	require.NoError(t, err)
	blob := bytes.Repeat([]byte{0, 1, 2, 254, 255}, 1000)
	sum := sha256.Sum256(blob)
	require.NoError(t, s.PutArtifact(ctx, store.Artifact{ID: "art_1", RunID: "r1", NodeID: "a", Name: "output", ContentType: "application/octet-stream", Size: int64(len(blob)), SHA256: hex.EncodeToString(sum[:]), Data: blob}))
	require.NoError(t, vault.Put(ctx, "API_KEY", []byte("s3cret")))
	require.NoError(t, s.CreateTrigger(ctx, store.Trigger{ID: "trg_1", WorkflowID: "w", Kind: "webhook", Config: raw(`{}`), Secret: []byte{9, 9}}))
	_, _, err = s.RecordDelivery(ctx, "trg_1", "key-1", "r1")
	require.NoError(t, err)
	_, err = s.PutModel(ctx, store.Model{Name: "tiny", Path: "/models/tiny", Description: "d", Version: "1"})
	require.NoError(t, err)
}

// dataFiles writes files into a data directory: data (kept), derived
// (left out).
func dataFiles(t *testing.T, dir string) {
	for name, body := range map[string]string{
		"datasets/faces/001.png":     "png bytes",
		"models/lora/adapter.onnx":   strings.Repeat("w", 70000),
		"notes.txt":                  "",
		"cache/compiled/abc":         "native code: derived",
		"accel/models/tiny.onnx.tmp": "derived",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	}
}

// fileHashes maps every file of dir but the derived ones to its SHA-256.
func fileHashes(t *testing.T, dir string, skip ...string) map[string]string {
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, _ := filepath.Rel(dir, p)
		for _, s := range append([]string{"cache", "accel"}, skip...) {
			if rel == s || strings.HasPrefix(rel, s+string(filepath.Separator)) {
				return nil
			}
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			sum := sha256.Sum256(b)
			out[filepath.ToSlash(rel)] = hex.EncodeToString(sum[:])
		}
		return nil
	}))
	return out
}

// sqliteTables dumps every table of a SQLite database, row by row.
func sqliteTables(t *testing.T, path string) map[string][]string {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	require.NoError(t, err)
	var names []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		names = append(names, n)
	}
	require.NoError(t, rows.Err())
	out := map[string][]string{}
	for _, n := range names {
		r, err := db.Query(`SELECT * FROM "` + n + `" ORDER BY rowid`)
		if err != nil { // WITHOUT ROWID tables
			r, err = db.Query(`SELECT * FROM "` + n + `" ORDER BY 1`)
		}
		require.NoError(t, err)
		cols, _ := r.Columns()
		out[n] = []string{}
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(t, r.Scan(ptrs...))
			out[n] = append(out[n], fmt.Sprintf("%q", vals))
		}
		require.NoError(t, r.Err())
		r.Close()
	}
	return out
}

// postgresTables dumps every table of the URL's schema, sorted.
func postgresTables(t *testing.T, url string) map[string]string {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`)
	require.NoError(t, err)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	out := map[string]string{}
	for _, n := range names {
		var buf bytes.Buffer
		_, err := conn.PgConn().CopyTo(ctx, &buf, `COPY (SELECT * FROM `+pgx.Identifier{n}.Sanitize()+` ORDER BY 1) TO STDOUT`)
		require.NoError(t, err)
		out[n] = buf.String()
	}
	var seqs []string
	rows, err = conn.Query(ctx, `SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() ORDER BY 1`)
	require.NoError(t, err)
	seqs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	for _, s := range seqs {
		var last int64
		var called bool
		require.NoError(t, conn.QueryRow(ctx, `SELECT last_value, is_called FROM `+pgx.Identifier{s}.Sanitize()).Scan(&last, &called))
		out["sequence "+s] = fmt.Sprint(last, called)
	}
	return out
}

func newIdentity(t *testing.T) *age.X25519Identity {
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	return id
}

// TestBackupRestoreSQLite backs up a populated SQLite server, wipes its
// data directory, restores, and compares every table and every file.
func TestBackupRestoreSQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	db, err := sqlite.Open(ctx, filepath.Join(dir, "millrace.db"))
	require.NoError(t, err)
	migrator, err := rivermigrate.New(riversqlite.New(db.SQL()), nil)
	require.NoError(t, err)
	_, err = migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	require.NoError(t, err)
	key, err := secrets.LoadOrCreateKey(filepath.Join(dir, "secret.key"), "")
	require.NoError(t, err)
	vault, err := secrets.New(key, db)
	require.NoError(t, err)
	populate(t, db, vault)
	dataFiles(t, dir)

	id := newIdentity(t)
	var archive bytes.Buffer
	m, err := backup.Create(ctx, &archive, backup.Source{DataDir: dir, DB: db, ServerVersion: "test"}, id.Recipient())
	require.NoError(t, err)
	require.Equal(t, backup.DialectSQLite, m.Dialect)
	require.True(t, m.SecretKeyIncluded)
	require.NoError(t, db.Close())
	wantTables := sqliteTables(t, filepath.Join(dir, "millrace.db"))
	wantFiles := fileHashes(t, dir, "millrace.db", "millrace.db-wal", "millrace.db-shm")
	require.Contains(t, wantFiles, "models/lora/adapter.onnx")

	require.NoError(t, os.RemoveAll(dir))
	_, err = backup.Restore(ctx, bytes.NewReader(archive.Bytes()), backup.Target{DataDir: dir}, id)
	require.NoError(t, err)
	require.Equal(t, wantTables, sqliteTables(t, filepath.Join(dir, "millrace.db")))
	require.Contains(t, wantTables["secrets"][0], "API_KEY")
	gotFiles := fileHashes(t, dir, "millrace.db")
	require.Equal(t, wantFiles, gotFiles)
	_, err = os.Stat(filepath.Join(dir, "cache"))
	require.ErrorIs(t, err, fs.ErrNotExist, "the compiled cache is derived and stays out of the backup")

	// The restored server opens its secrets with the restored key.
	db2, err := sqlite.Open(ctx, filepath.Join(dir, "millrace.db"))
	require.NoError(t, err)
	defer db2.Close()
	key2, err := secrets.LoadOrCreateKey(filepath.Join(dir, "secret.key"), "")
	require.NoError(t, err)
	vault2, err := secrets.New(key2, db2)
	require.NoError(t, err)
	v, err := vault2.Reveal(ctx, "API_KEY")
	require.NoError(t, err)
	require.Equal(t, "s3cret", string(v))
	fi, err := os.Stat(filepath.Join(dir, "secret.key"))
	require.NoError(t, err)
	require.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
}

// TestBackupRestorePostgres does the same on PostgreSQL: the snapshot is
// read in one REPEATABLE READ transaction and loaded into an empty schema.
func TestBackupRestorePostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srcURL, dstURL := pgtest.URL(t), pgtest.URL(t)
	dir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	db, err := postgres.Open(ctx, srcURL)
	require.NoError(t, err)
	migrator, err := rivermigrate.New(riverpgxv5.New(db.Pool()), nil)
	require.NoError(t, err)
	_, err = migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	require.NoError(t, err)
	// A River job moves a sequence, which the restore must carry over.
	_, err = db.Pool().Exec(ctx, `INSERT INTO river_job (args, kind, max_attempts, queue, state, scheduled_at) VALUES ('{}', 'k', 3, 'default', 'available', now())`)
	require.NoError(t, err)
	key, err := secrets.LoadOrCreateKey(filepath.Join(dir, "secret.key"), "")
	require.NoError(t, err)
	vault, err := secrets.New(key, db)
	require.NoError(t, err)
	populate(t, db, vault)
	dataFiles(t, dir)

	pass := filepath.Join(t.TempDir(), "pass")
	require.NoError(t, os.WriteFile(pass, []byte("correct horse battery staple\n"), 0o600))
	rs, err := backup.Recipients(pass, nil, "")
	require.NoError(t, err)
	var archive bytes.Buffer
	m, err := backup.Create(ctx, &archive, backup.Source{DataDir: dir, DB: db, ServerVersion: "test"}, rs...)
	require.NoError(t, err)
	require.Equal(t, backup.DialectPostgres, m.Dialect)
	require.Positive(t, m.RiverVersion)
	db.Close()
	wantTables := postgresTables(t, srcURL)
	require.Contains(t, wantTables, "river_job")
	wantFiles := fileHashes(t, dir)

	require.NoError(t, os.RemoveAll(dir))
	ids, err := backup.Identities(pass, nil)
	require.NoError(t, err)
	_, err = backup.Restore(ctx, bytes.NewReader(archive.Bytes()), backup.Target{DataDir: dir, DatabaseURL: dstURL}, ids...)
	require.NoError(t, err)
	require.Equal(t, wantTables, postgresTables(t, dstURL))
	require.Equal(t, wantFiles, fileHashes(t, dir))

	// A second restore into the now-populated database is refused.
	_, err = backup.Restore(ctx, bytes.NewReader(archive.Bytes()), backup.Target{DataDir: filepath.Join(t.TempDir(), "d"), DatabaseURL: dstURL}, ids...)
	require.ErrorIs(t, err, backup.ErrNotEmpty)

	// The restored database opens and serves.
	db2, err := postgres.Open(ctx, dstURL)
	require.NoError(t, err)
	defer db2.Close()
	vault2, err := secrets.New(key, db2)
	require.NoError(t, err)
	v, err := vault2.Reveal(ctx, "API_KEY")
	require.NoError(t, err)
	require.Equal(t, "s3cret", string(v))
}
