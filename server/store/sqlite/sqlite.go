// Package sqlite is the embedded SQLite backend of the store, built on the
// pure-Go modernc.org/sqlite driver so the server needs no cgo.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"time"

	"github.com/millrace/millrace/migrations"
	"github.com/millrace/millrace/server/store"
)

// DB is a store.Store on one SQLite file.
type DB struct {
	db *sql.DB // the one connection that writes, and every transaction
	// rd serves reads that stand alone (a run, a module version, a
	// workflow) from a pool of read-only connections. In WAL mode they
	// read beside the writer, each from the last commit when it starts,
	// so a read after a write returned sees it. Under webhook load, half
	// the statements were such reads, queued for the one connection
	// behind the writes (40 of 50 requests waited there). For an
	// in-memory database rd is db.
	rd *sql.DB
}

var _ store.Store = (*DB)(nil)

// Open opens (creating if needed) the database at path and migrates it to
// the newest schema. ":memory:" gives a private in-memory database.
func Open(ctx context.Context, path string) (*DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"
	if path != ":memory:" {
		dsn += "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	// Incremental auto-vacuum lets ReclaimSpace shrink the file after
	// retention deletes runs. The pragma takes effect on a new database;
	// an older one is converted below.
	dsn += "&_pragma=auto_vacuum(INCREMENTAL)"
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, err
	}
	// One connection: SQLite allows one writer at a time anyway, and a
	// single connection makes every transaction serialisable without
	// SQLITE_BUSY retries (River's SQLite driver asks for the same).
	db.SetMaxOpenConns(1)
	s := &DB{db: db, rd: db}
	if err := s.useIncrementalVacuum(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.Migrate(ctx, -1); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrating %s: %w", path, err)
	}
	if path != ":memory:" {
		// Opened after the migrations, so the file is in WAL mode;
		// query_only makes a write through them an error.
		rd, err := sql.Open(driverName, "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=query_only(1)")
		if err != nil {
			db.Close()
			return nil, err
		}
		rd.SetMaxOpenConns(readers)
		rd.SetMaxIdleConns(readers)
		s.rd = rd
	}
	return s, nil
}

// readers is the size of the read-only pool: reads are short, and more
// connections than cores would only wait for a CPU.
var readers = max(2, runtime.GOMAXPROCS(0))

// SQL returns the underlying pool, for River's SQLite driver, which keeps
// its job tables in the same database.
func (s *DB) SQL() *sql.DB { return s.db }

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close closes the database.
func (s *DB) Close() error {
	if s.rd != s.db {
		s.rd.Close()
	}
	return s.db.Close()
}

// Migrate moves the schema to version target: -1 means the newest, 0 means
// empty. It applies up or down migrations in one transaction each.
func (s *DB) Migrate(ctx context.Context, target int) error {
	all, err := migrations.For("sqlite")
	if err != nil {
		return err
	}
	if target < 0 {
		target = len(all)
	}
	if target > len(all) {
		return fmt.Errorf("schema version %d does not exist; the newest is %d", target, len(all))
	}
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		return err
	}
	var current int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return err
	}
	if current > len(all) {
		return fmt.Errorf("the database is at schema version %d, newer than this binary knows (%d): upgrade millrace", current, len(all))
	}
	for current < target {
		m := all[current]
		if err := s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, m.Up); err != nil {
				return fmt.Errorf("migration %03d_%s up: %w", m.Version, m.Name, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.Version, now())
			return err
		}); err != nil {
			return err
		}
		current++
	}
	for current > target {
		m := all[current-1]
		if err := s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, m.Down); err != nil {
				return fmt.Errorf("migration %03d_%s down: %w", m.Version, m.Name, err)
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = ?`, m.Version)
			return err
		}); err != nil {
			return err
		}
		current--
	}
	return nil
}

func (s *DB) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// CreateToken stores a new token.
func (s *DB) CreateToken(ctx context.Context, t store.Token) error {
	scopes, err := json.Marshal(t.Scopes)
	if err != nil {
		return err
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO api_tokens (id, name, hash, scopes, user_id, role, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.Hash, string(scopes), nullString(t.UserID), t.Role, nullTime(t.ExpiresAt), t.CreatedAt.UTC().Format(time.RFC3339Nano))
	if isUniqueViolation(err) {
		return fmt.Errorf("token %s: %w", t.ID, store.ErrConflict)
	}
	return err
}

const tokenColumns = `id, name, hash, scopes, user_id, role, expires_at, created_at, last_used_at`

func scanToken(row interface{ Scan(...any) error }) (store.Token, error) {
	var t store.Token
	var scopes, created string
	var userID, expires, lastUsed sql.NullString
	if err := row.Scan(&t.ID, &t.Name, &t.Hash, &scopes, &userID, &t.Role, &expires, &created, &lastUsed); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return t, store.ErrNotFound
		}
		return t, err
	}
	if err := json.Unmarshal([]byte(scopes), &t.Scopes); err != nil {
		return t, fmt.Errorf("token %s has malformed scopes: %w", t.ID, err)
	}
	t.UserID = userID.String
	t.CreatedAt = parseTime(created)
	t.ExpiresAt = timePtr(expires)
	t.LastUsedAt = timePtr(lastUsed)
	return t, nil
}

// TokenByHash finds a token by the hash of its secret.
func (s *DB) TokenByHash(ctx context.Context, hash []byte) (store.Token, error) {
	return scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE hash = ?`, hash))
}

// Token finds a token by id.
func (s *DB) Token(ctx context.Context, id string) (store.Token, error) {
	return scanToken(s.db.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE id = ?`, id))
}

// TouchToken records a token's use.
func (s *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	return expectOne(s.db.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, at.UTC().Format(time.RFC3339Nano), id))
}

// ListTokens lists every token, oldest first.
func (s *DB) ListTokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteToken revokes a token and ends its sessions.
func (s *DB) DeleteToken(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE token_id = ?`, id); err != nil {
			return err
		}
		return expectOne(tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE id = ?`, id))
	})
}

func expectOne(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// PutModuleVersion stores a version and its bytes; see store.Store.
func (s *DB) PutModuleVersion(ctx context.Context, mv store.ModuleVersion, wasm []byte) (bool, error) {
	created := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var existing string
		err := tx.QueryRowContext(ctx, `SELECT sha256 FROM module_versions WHERE module_id = ? AND version = ?`, mv.ModuleID, mv.Version).Scan(&existing)
		switch {
		case err == nil && existing == mv.SHA256:
			return nil
		case err == nil:
			return fmt.Errorf("%s@%s already exists with sha256 %s: %w", mv.ModuleID, mv.Version, existing, store.ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		ts := now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO module_blobs (sha256, wasm, created_at) VALUES (?, ?, ?) ON CONFLICT (sha256) DO NOTHING`, mv.SHA256, wasm, ts); err != nil {
			return err
		}
		var grant any
		if mv.Grant != nil {
			grant = string(mv.Grant)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO module_versions (module_id, version, sha256, size, manifest, grant_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			mv.ModuleID, mv.Version, mv.SHA256, mv.Size, string(mv.Manifest), grant, ts); err != nil {
			return err
		}
		created = true
		return nil
	})
	return created, err
}

const versionColumns = `module_id, version, sha256, size, manifest, grant_json, created_at`

func scanVersion(row interface{ Scan(...any) error }) (store.ModuleVersion, error) {
	var mv store.ModuleVersion
	var manifest, created string
	var grant sql.NullString
	if err := row.Scan(&mv.ModuleID, &mv.Version, &mv.SHA256, &mv.Size, &manifest, &grant, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return mv, store.ErrNotFound
		}
		return mv, err
	}
	mv.Manifest = json.RawMessage(manifest)
	if grant.Valid {
		mv.Grant = json.RawMessage(grant.String)
	}
	mv.CreatedAt = parseTime(created)
	return mv, nil
}

// ModuleVersion returns one version's metadata.
func (s *DB) ModuleVersion(ctx context.Context, moduleID, version string) (store.ModuleVersion, error) {
	return scanVersion(s.rd.QueryRowContext(ctx, `SELECT `+versionColumns+` FROM module_versions WHERE module_id = ? AND version = ?`, moduleID, version))
}

// ListModuleVersions lists versions of one module, or of all when moduleID
// is empty.
func (s *DB) ListModuleVersions(ctx context.Context, moduleID string) ([]store.ModuleVersion, error) {
	rows, err := s.rd.QueryContext(ctx, `SELECT `+versionColumns+` FROM module_versions WHERE ? = '' OR module_id = ? ORDER BY module_id, created_at, version`, moduleID, moduleID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.ModuleVersion
	for rows.Next() {
		mv, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, mv)
	}
	return out, rows.Err()
}

// ModuleWasm returns the bytes with the given sha256.
func (s *DB) ModuleWasm(ctx context.Context, sha256 string) ([]byte, error) {
	var wasm []byte
	err := s.db.QueryRowContext(ctx, `SELECT wasm FROM module_blobs WHERE sha256 = ?`, sha256).Scan(&wasm)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return wasm, err
}

// DeleteModuleVersion removes a version and any bytes left unreferenced.
func (s *DB) DeleteModuleVersion(ctx context.Context, moduleID, version string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var sha string
		err := tx.QueryRowContext(ctx, `SELECT sha256 FROM module_versions WHERE module_id = ? AND version = ?`, moduleID, version).Scan(&sha)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM module_versions WHERE module_id = ? AND version = ?`, moduleID, version); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM module_blobs WHERE sha256 = ? AND NOT EXISTS (SELECT 1 FROM module_versions WHERE sha256 = ?)`, sha, sha)
		return err
	})
}

// SetGrant replaces a version's grant.
func (s *DB) SetGrant(ctx context.Context, moduleID, version string, grant json.RawMessage) error {
	return expectOne(s.db.ExecContext(ctx, `UPDATE module_versions SET grant_json = ? WHERE module_id = ? AND version = ?`, string(grant), moduleID, version))
}

// KVGet returns the value under key.
func (s *DB) KVGet(ctx context.Context, namespace, key string) ([]byte, error) {
	var v []byte
	err := s.db.QueryRowContext(ctx, `SELECT value FROM kv_entries WHERE namespace = ? AND key = ?`, namespace, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if v == nil && err == nil {
		v = []byte{}
	}
	return v, err
}

// KVSet stores a value within the namespace quota.
func (s *DB) KVSet(ctx context.Context, namespace, key string, value []byte, maxTotal int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var others int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(SUM(LENGTH(CAST(key AS BLOB)) + LENGTH(value)), 0) FROM kv_entries WHERE namespace = ? AND key <> ?`, namespace, key).Scan(&others); err != nil {
			return err
		}
		if maxTotal > 0 && others+int64(len(key)+len(value)) > maxTotal {
			return fmt.Errorf("namespace %s would hold %d bytes, over its %d-byte limit: %w", namespace, others+int64(len(key)+len(value)), maxTotal, store.ErrQuota)
		}
		if value == nil {
			value = []byte{}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO kv_entries (namespace, key, value, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, namespace, key, value, now())
		return err
	})
}

// KVDelete removes a key; a missing key is not an error.
func (s *DB) KVDelete(ctx context.Context, namespace, key string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM kv_entries WHERE namespace = ? AND key = ?`, namespace, key)
	return err
}

// KVAdd adds delta to the integer under key.
func (s *DB) KVAdd(ctx context.Context, namespace, key string, delta int64) (int64, error) {
	var result int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var cur int64
		var raw []byte
		err := tx.QueryRowContext(ctx, `SELECT value FROM kv_entries WHERE namespace = ? AND key = ?`, namespace, key).Scan(&raw)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			cur, err = strconv.ParseInt(string(raw), 10, 64)
			if err != nil {
				return fmt.Errorf("key %q: %w", key, store.ErrNotInteger)
			}
		}
		if (delta > 0 && cur > math.MaxInt64-delta) || (delta < 0 && cur < math.MinInt64-delta) {
			return fmt.Errorf("key %q: adding %d to %d overflows: %w", key, delta, cur, store.ErrNotInteger)
		}
		result = cur + delta
		_, err = tx.ExecContext(ctx, `INSERT INTO kv_entries (namespace, key, value, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			namespace, key, []byte(strconv.FormatInt(result, 10)), now())
		return err
	})
	return result, err
}

// PutSecret creates or replaces a sealed secret.
func (s *DB) PutSecret(ctx context.Context, name string, sealed []byte) error {
	ts := now()
	_, err := s.db.ExecContext(ctx, `INSERT INTO secrets (name, sealed, created_at, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at`, name, sealed, ts, ts)
	return err
}

// Secret returns a sealed secret.
func (s *DB) Secret(ctx context.Context, name string) ([]byte, error) {
	var sealed []byte
	err := s.db.QueryRowContext(ctx, `SELECT sealed FROM secrets WHERE name = ?`, name).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return sealed, err
}

// ListSecrets lists secret names and times, never values.
func (s *DB) ListSecrets(ctx context.Context) ([]store.SecretInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, created_at, updated_at FROM secrets ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.SecretInfo
	for rows.Next() {
		var si store.SecretInfo
		var c, u string
		if err := rows.Scan(&si.Name, &c, &u); err != nil {
			return nil, err
		}
		si.CreatedAt, si.UpdatedAt = parseTime(c), parseTime(u)
		out = append(out, si)
	}
	return out, rows.Err()
}

// DeleteSecret removes a secret.
func (s *DB) DeleteSecret(ctx context.Context, name string) error {
	return expectOne(s.db.ExecContext(ctx, `DELETE FROM secrets WHERE name = ?`, name))
}

// ResealAll replaces every sealed value in one transaction.
func (s *DB) ResealAll(ctx context.Context, reseal func(store.SealedValue) ([]byte, error)) (int, error) {
	n := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var all []store.SealedValue
		for _, q := range []struct{ kind, sql string }{
			{store.SealedSecret, `SELECT name, sealed FROM secrets ORDER BY name`},
			{store.SealedTrigger, `SELECT id, secret FROM triggers WHERE secret IS NOT NULL ORDER BY id`},
		} {
			rows, err := tx.QueryContext(ctx, q.sql)
			if err != nil {
				return err
			}
			for rows.Next() {
				v := store.SealedValue{Kind: q.kind}
				if err := rows.Scan(&v.ID, &v.Sealed); err != nil {
					rows.Close()
					return err
				}
				all = append(all, v)
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return err
			}
		}
		ts := now()
		for _, v := range all {
			sealed, err := reseal(v)
			if err != nil {
				return err
			}
			if v.Kind == store.SealedSecret {
				_, err = tx.ExecContext(ctx, `UPDATE secrets SET sealed = ?, updated_at = ? WHERE name = ?`, sealed, ts, v.ID)
			} else {
				_, err = tx.ExecContext(ctx, `UPDATE triggers SET secret = ? WHERE id = ?`, sealed, v.ID)
			}
			if err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
