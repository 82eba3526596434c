// Package postgres is the PostgreSQL backend of the store, built on pgx.
// It mirrors the SQLite backend method for method: the same conformance
// suite (storetest) runs against both.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/millrace/millrace/migrations"
	"github.com/millrace/millrace/server/store"
)

// DB is a store.Store on one PostgreSQL database.
type DB struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*DB)(nil)

// Open connects to the database at url (a postgres:// URL or a libpq
// keyword string) and migrates it to the newest schema. Several servers may
// open the same database at once: migrations are serialised by an advisory
// lock.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn's parse errors already hide the password.
		return nil, fmt.Errorf("parsing the PostgreSQL URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &DB{pool: pool}
	if err := s.Migrate(ctx, -1); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrating %s: %w", Redact(url), err)
	}
	return s, nil
}

// Redact describes a connection URL for logs: user, host, port and
// database, never the password.
func Redact(url string) string {
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		return "(a DATABASE_URL that does not parse)"
	}
	out := fmt.Sprintf("postgres://%s@%s/%s", cfg.User, net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))), cfg.Database)
	if sp := cfg.RuntimeParams["search_path"]; sp != "" {
		out += "?search_path=" + sp
	}
	return out
}

// Pool returns the connection pool, for River's pgx driver, which keeps its
// job tables in the same database.
func (s *DB) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// Close closes every connection of the pool.
func (s *DB) Close() error {
	s.pool.Close()
	return nil
}

// migrationLockKey names the advisory lock that serialises migrations of
// one schema. Advisory locks are per database, so the key includes the
// schema: servers kept apart by search_path in one database do not wait for
// each other.
func migrationLockKey(ctx context.Context, conn *pgxpool.Conn) (int64, error) {
	var schema *string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return 0, err
	}
	h := fnv.New64a()
	h.Write([]byte("millrace.migrate\x00"))
	if schema != nil {
		h.Write([]byte(*schema))
	}
	return int64(h.Sum64()), nil
}

// WithMigrationLock runs fn while holding the advisory lock that Migrate
// holds, so that other schema work done at start-up (River's migrations)
// is serialised across processes in the same way.
func (s *DB) WithMigrationLock(ctx context.Context, fn func(context.Context) error) error {
	return s.withMigrationLock(ctx, func(*pgxpool.Conn) error { return fn(ctx) })
}

// withMigrationLock runs fn on a connection holding the migration lock. A
// session-level lock lives on one connection: fn gets that connection.
func (s *DB) withMigrationLock(ctx context.Context, fn func(*pgxpool.Conn) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	key, err := migrationLockKey(ctx, conn)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return fmt.Errorf("waiting for the migration lock: %w", err)
	}
	defer func() {
		unlockCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(unlockCtx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			// The connection may still hold the lock: close it rather
			// than return it to the pool (Release destroys closed ones).
			conn.Conn().Close(unlockCtx)
		}
	}()
	return fn(conn)
}

// Migrate moves the schema to version target: -1 means the newest, 0 means
// empty. It applies up or down migrations in one transaction each, holding
// an advisory lock throughout, so that two servers starting at once do not
// both migrate: the second waits, then finds the work done.
func (s *DB) Migrate(ctx context.Context, target int) error {
	all, err := migrations.For("postgres")
	if err != nil {
		return err
	}
	if target < 0 {
		target = len(all)
	}
	if target > len(all) {
		return fmt.Errorf("schema version %d does not exist; the newest is %d", target, len(all))
	}
	return s.withMigrationLock(ctx, func(conn *pgxpool.Conn) error { return migrate(ctx, conn, all, target) })
}

func migrate(ctx context.Context, conn *pgxpool.Conn, all []migrations.Migration, target int) error {
	// Created under the lock: concurrent CREATE TABLE IF NOT EXISTS can
	// fail on PostgreSQL's catalog unique index.
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)`); err != nil {
		return err
	}
	var current int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return err
	}
	if current > len(all) {
		return fmt.Errorf("the database is at schema version %d, newer than this binary knows (%d): upgrade millrace", current, len(all))
	}
	for current < target {
		m := all[current]
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// No arguments: pgx sends the file with the simple protocol,
			// which runs several statements.
			if _, err := tx.Exec(ctx, m.Up); err != nil {
				return fmt.Errorf("migration %03d_%s up: %w", m.Version, m.Name, err)
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, m.Version, now())
			return err
		}); err != nil {
			return err
		}
		current++
	}
	for current > target {
		m := all[current-1]
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.Down); err != nil {
				return fmt.Errorf("migration %03d_%s down: %w", m.Version, m.Name, err)
			}
			_, err := tx.Exec(ctx, `DELETE FROM schema_migrations WHERE version = $1`, m.Version)
			return err
		}); err != nil {
			return err
		}
		current--
	}
	return nil
}

// PostgreSQL's SQLSTATE codes that the store maps or retries on.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

func hasCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

func isUniqueViolation(err error) bool { return hasCode(err, uniqueViolation) }

func (s *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// now is the time the store stamps rows with. TIMESTAMPTZ keeps
// microseconds; pgx truncates the rest.
func now() time.Time { return time.Now().UTC() }

// pgx returns TIMESTAMPTZ in the local zone; the store promises UTC.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func expectOne(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
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
	_, err = s.pool.Exec(ctx, `INSERT INTO api_tokens (id, name, hash, scopes, user_id, role, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.ID, t.Name, t.Hash, string(scopes), nullString(t.UserID), t.Role, t.ExpiresAt, t.CreatedAt.UTC())
	if isUniqueViolation(err) {
		return fmt.Errorf("token %s: %w", t.ID, store.ErrConflict)
	}
	return err
}

const tokenColumns = `id, name, hash, scopes, COALESCE(user_id, ''), role, expires_at, created_at, last_used_at`

func scanToken(row pgx.Row) (store.Token, error) {
	var t store.Token
	var scopes string
	if err := row.Scan(&t.ID, &t.Name, &t.Hash, &scopes, &t.UserID, &t.Role, &t.ExpiresAt, &t.CreatedAt, &t.LastUsedAt); err != nil {
		return t, notFound(err)
	}
	if err := json.Unmarshal([]byte(scopes), &t.Scopes); err != nil {
		return t, fmt.Errorf("token %s has malformed scopes: %w", t.ID, err)
	}
	t.CreatedAt, t.LastUsedAt, t.ExpiresAt = t.CreatedAt.UTC(), utcPtr(t.LastUsedAt), utcPtr(t.ExpiresAt)
	return t, nil
}

// TokenByHash finds a token by the hash of its secret.
func (s *DB) TokenByHash(ctx context.Context, hash []byte) (store.Token, error) {
	return scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE hash = $1`, hash))
}

// Token finds a token by id.
func (s *DB) Token(ctx context.Context, id string) (store.Token, error) {
	return scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM api_tokens WHERE id = $1`, id))
}

// TouchToken records a token's use.
func (s *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	return expectOne(s.pool.Exec(ctx, `UPDATE api_tokens SET last_used_at = $1 WHERE id = $2`, at.UTC(), id))
}

// ListTokens lists every token, oldest first.
func (s *DB) ListTokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY created_at, id`)
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
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE token_id = $1`, id); err != nil {
			return err
		}
		return expectOne(tx.Exec(ctx, `DELETE FROM api_tokens WHERE id = $1`, id))
	})
}

// PutModuleVersion stores a version and its bytes; see store.Store.
func (s *DB) PutModuleVersion(ctx context.Context, mv store.ModuleVersion, wasm []byte) (bool, error) {
	// SQLite runs one writer at a time; here two uploads may race. The
	// loser of an insert race (the same version, or a blob deleted under
	// us by DeleteModuleVersion) tries again and then sees the winner's
	// row, so callers get the answer SQLite would have given.
	for attempt := 1; ; attempt++ {
		created, err := s.putModuleVersion(ctx, mv, wasm)
		if attempt < 3 && (hasCode(err, uniqueViolation) || hasCode(err, foreignKeyViolation)) {
			continue
		}
		return created, err
	}
}

func (s *DB) putModuleVersion(ctx context.Context, mv store.ModuleVersion, wasm []byte) (bool, error) {
	created := false
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var existing string
		err := tx.QueryRow(ctx, `SELECT sha256 FROM module_versions WHERE module_id = $1 AND version = $2`, mv.ModuleID, mv.Version).Scan(&existing)
		switch {
		case err == nil && existing == mv.SHA256:
			return nil
		case err == nil:
			return fmt.Errorf("%s@%s already exists with sha256 %s: %w", mv.ModuleID, mv.Version, existing, store.ErrConflict)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		ts := now()
		if wasm == nil {
			wasm = []byte{} // NOT NULL, as SQLite stores an empty blob
		}
		if _, err := tx.Exec(ctx, `INSERT INTO module_blobs (sha256, wasm, created_at) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING`, mv.SHA256, wasm, ts); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO module_versions (module_id, version, sha256, size, manifest, grant_json, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			mv.ModuleID, mv.Version, mv.SHA256, mv.Size, string(mv.Manifest), nullJSON(mv.Grant), ts); err != nil {
			return err
		}
		created = true
		return nil
	})
	return created, err
}

const versionColumns = `module_id, version, sha256, size, manifest, grant_json, created_at`

func scanVersion(row pgx.Row) (store.ModuleVersion, error) {
	var mv store.ModuleVersion
	var manifest string
	var grant *string
	if err := row.Scan(&mv.ModuleID, &mv.Version, &mv.SHA256, &mv.Size, &manifest, &grant, &mv.CreatedAt); err != nil {
		return mv, notFound(err)
	}
	mv.Manifest, mv.Grant = json.RawMessage(manifest), jsonPtr(grant)
	mv.CreatedAt = mv.CreatedAt.UTC()
	return mv, nil
}

// ModuleVersion returns one version's metadata.
func (s *DB) ModuleVersion(ctx context.Context, moduleID, version string) (store.ModuleVersion, error) {
	return scanVersion(s.pool.QueryRow(ctx, `SELECT `+versionColumns+` FROM module_versions WHERE module_id = $1 AND version = $2`, moduleID, version))
}

// ListModuleVersions lists versions of one module, or of all when moduleID
// is empty, by module id then upload time.
func (s *DB) ListModuleVersions(ctx context.Context, moduleID string) ([]store.ModuleVersion, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+versionColumns+` FROM module_versions WHERE $1::text = '' OR module_id = $1 ORDER BY module_id, created_at, version`, moduleID)
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
	err := s.pool.QueryRow(ctx, `SELECT wasm FROM module_blobs WHERE sha256 = $1`, sha256).Scan(&wasm)
	if err != nil {
		return nil, notFound(err)
	}
	return wasm, nil
}

// DeleteModuleVersion removes a version and any bytes left unreferenced.
func (s *DB) DeleteModuleVersion(ctx context.Context, moduleID, version string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		var sha string
		err := tx.QueryRow(ctx, `DELETE FROM module_versions WHERE module_id = $1 AND version = $2 RETURNING sha256`, moduleID, version).Scan(&sha)
		if err != nil {
			return notFound(err)
		}
		// Lock the blob first: an upload inserting a version that shares
		// it holds a key-share lock until it commits, so the check below
		// then sees that version and keeps the bytes. Without the lock the
		// delete would fail on the foreign key instead.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM module_blobs WHERE sha256 = $1 FOR UPDATE`, sha); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM module_blobs WHERE sha256 = $1 AND NOT EXISTS (SELECT 1 FROM module_versions WHERE sha256 = $1)`, sha)
		return err
	})
}

// SetGrant replaces a version's grant.
func (s *DB) SetGrant(ctx context.Context, moduleID, version string, grant json.RawMessage) error {
	return expectOne(s.pool.Exec(ctx, `UPDATE module_versions SET grant_json = $1 WHERE module_id = $2 AND version = $3`, string(grant), moduleID, version))
}

// KVGet returns the value under key.
func (s *DB) KVGet(ctx context.Context, namespace, key string) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM kv_entries WHERE namespace = $1 AND key = $2`, namespace, []byte(key)).Scan(&v)
	if err != nil {
		return nil, notFound(err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// kvLockClass is the first key of the two-key advisory locks that
// serialise quota checks per namespace. Two-key and one-key (migration)
// advisory locks never collide.
const kvLockClass = 0x6b76 // "kv"

func namespaceLockKey(namespace string) int32 {
	h := fnv.New32a()
	h.Write([]byte(namespace))
	return int32(h.Sum32())
}

// KVSet stores a value within the namespace quota.
func (s *DB) KVSet(ctx context.Context, namespace, key string, value []byte, maxTotal int64) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		// Two writers in one namespace must not both pass the quota check
		// on the same total (SQLite has one writer; here they queue on
		// this lock until commit).
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(kvLockClass), namespaceLockKey(namespace)); err != nil {
			return err
		}
		var others int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(octet_length(key) + octet_length(value)), 0) FROM kv_entries WHERE namespace = $1 AND key <> $2`,
			namespace, []byte(key)).Scan(&others); err != nil {
			return err
		}
		if maxTotal > 0 && others+int64(len(key)+len(value)) > maxTotal {
			return fmt.Errorf("namespace %s would hold %d bytes, over its %d-byte limit: %w", namespace, others+int64(len(key)+len(value)), maxTotal, store.ErrQuota)
		}
		if value == nil {
			value = []byte{}
		}
		_, err := tx.Exec(ctx, `INSERT INTO kv_entries (namespace, key, value, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`, namespace, []byte(key), value, now())
		return err
	})
}

// KVDelete removes a key; a missing key is not an error.
func (s *DB) KVDelete(ctx context.Context, namespace, key string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM kv_entries WHERE namespace = $1 AND key = $2`, namespace, []byte(key))
	return err
}

// KVAdd adds delta to the integer under key.
func (s *DB) KVAdd(ctx context.Context, namespace, key string, delta int64) (int64, error) {
	var result int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// A missing key counts as 0: insert it as "0" so there is always a
		// row to lock. Concurrent adders then queue on the row lock of
		// SELECT … FOR UPDATE and each reads the previous one's sum. The
		// parsing stays in Go so that what counts as an integer is
		// exactly what the SQLite backend accepts.
		var raw []byte
		found := false
		for range 3 {
			if _, err := tx.Exec(ctx, `INSERT INTO kv_entries (namespace, key, value, updated_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (namespace, key) DO NOTHING`, namespace, []byte(key), []byte("0"), now()); err != nil {
				return err
			}
			err := tx.QueryRow(ctx, `SELECT value FROM kv_entries WHERE namespace = $1 AND key = $2 FOR UPDATE`, namespace, []byte(key)).Scan(&raw)
			if err == nil {
				found = true
				break
			}
			// A KVDelete between the two statements leaves no row: insert
			// again (each statement sees what committed before it).
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		if !found {
			return fmt.Errorf("key %q keeps being deleted while adding to it", key)
		}
		cur, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return fmt.Errorf("key %q: %w", key, store.ErrNotInteger)
		}
		if (delta > 0 && cur > math.MaxInt64-delta) || (delta < 0 && cur < math.MinInt64-delta) {
			return fmt.Errorf("key %q: adding %d to %d overflows: %w", key, delta, cur, store.ErrNotInteger)
		}
		result = cur + delta
		_, err = tx.Exec(ctx, `UPDATE kv_entries SET value = $3, updated_at = $4 WHERE namespace = $1 AND key = $2`,
			namespace, []byte(key), []byte(strconv.FormatInt(result, 10)), now())
		return err
	})
	return result, err
}

// PutSecret creates or replaces a sealed secret.
func (s *DB) PutSecret(ctx context.Context, name string, sealed []byte) error {
	ts := now()
	if sealed == nil {
		sealed = []byte{}
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO secrets (name, sealed, created_at, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at`, name, sealed, ts, ts)
	return err
}

// Secret returns a sealed secret.
func (s *DB) Secret(ctx context.Context, name string) ([]byte, error) {
	var sealed []byte
	err := s.pool.QueryRow(ctx, `SELECT sealed FROM secrets WHERE name = $1`, name).Scan(&sealed)
	if err != nil {
		return nil, notFound(err)
	}
	return sealed, nil
}

// ListSecrets lists secret names and times, never values.
func (s *DB) ListSecrets(ctx context.Context) ([]store.SecretInfo, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, created_at, updated_at FROM secrets ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.SecretInfo
	for rows.Next() {
		var si store.SecretInfo
		if err := rows.Scan(&si.Name, &si.CreatedAt, &si.UpdatedAt); err != nil {
			return nil, err
		}
		si.CreatedAt, si.UpdatedAt = si.CreatedAt.UTC(), si.UpdatedAt.UTC()
		out = append(out, si)
	}
	return out, rows.Err()
}

// DeleteSecret removes a secret.
func (s *DB) DeleteSecret(ctx context.Context, name string) error {
	return expectOne(s.pool.Exec(ctx, `DELETE FROM secrets WHERE name = $1`, name))
}

// ResealAll replaces every sealed value in one transaction.
func (s *DB) ResealAll(ctx context.Context, reseal func(store.SealedValue) ([]byte, error)) (int, error) {
	n := 0
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		n = 0
		var all []store.SealedValue
		for _, q := range []struct{ kind, sql string }{
			// FOR UPDATE: a concurrent write of one of these values
			// waits for the rotation instead of being overwritten by it.
			{store.SealedSecret, `SELECT name, sealed FROM secrets ORDER BY name FOR UPDATE`},
			{store.SealedTrigger, `SELECT id, secret FROM triggers WHERE secret IS NOT NULL ORDER BY id FOR UPDATE`},
		} {
			rows, err := tx.Query(ctx, q.sql)
			if err != nil {
				return err
			}
			vals, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.SealedValue, error) {
				v := store.SealedValue{Kind: q.kind}
				return v, r.Scan(&v.ID, &v.Sealed)
			})
			if err != nil {
				return err
			}
			all = append(all, vals...)
		}
		ts := now()
		for _, v := range all {
			sealed, err := reseal(v)
			if err != nil {
				return err
			}
			if v.Kind == store.SealedSecret {
				_, err = tx.Exec(ctx, `UPDATE secrets SET sealed = $1, updated_at = $2 WHERE name = $3`, sealed, ts, v.ID)
			} else {
				_, err = tx.Exec(ctx, `UPDATE triggers SET secret = $1 WHERE id = $2`, sealed, v.ID)
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
