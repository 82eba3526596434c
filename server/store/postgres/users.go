package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/millrace/millrace/server/store"
)

// CreateUser stores a new user.
func (s *DB) CreateUser(ctx context.Context, u store.User) error {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO users (id, username, role, password_hash, disabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)`,
		u.ID, u.Username, u.Role, u.PasswordHash, u.Disabled, u.CreatedAt.UTC())
	if isUniqueViolation(err) {
		return fmt.Errorf("user %s: %w", u.Username, store.ErrConflict)
	}
	return err
}

const userColumns = `id, username, role, password_hash, disabled, created_at, updated_at`

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	if err := row.Scan(&u.ID, &u.Username, &u.Role, &u.PasswordHash, &u.Disabled, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return u, notFound(err)
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, nil
}

// User finds a user by id.
func (s *DB) User(ctx context.Context, id string) (store.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

// UserByName finds a user by username.
func (s *DB) UserByName(ctx context.Context, username string) (store.User, error) {
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = $1`, username))
}

// ListUsers lists users by username.
func (s *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// ChangeUser sets only the given fields: a NULL parameter keeps the
// stored value, so a racing change of another field is not undone.
func (s *DB) ChangeUser(ctx context.Context, id string, c store.UserChange) error {
	return expectOne(s.pool.Exec(ctx, `UPDATE users SET role = COALESCE($1, role), password_hash = COALESCE($2, password_hash),
		disabled = COALESCE($3, disabled), updated_at = $4 WHERE id = $5`, c.Role, c.PasswordHash, c.Disabled, now(), id))
}

// DeleteUser removes a user, its tokens and its sessions, and the sessions
// signed in with its tokens.
func (s *DB) DeleteUser(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1 OR token_id IN (SELECT id FROM api_tokens WHERE user_id = $1)`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM api_tokens WHERE user_id = $1`, id); err != nil {
			return err
		}
		return expectOne(tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id))
	})
}

// CreateSession stores a new session.
func (s *DB) CreateSession(ctx context.Context, se store.Session) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions (hash, user_id, token_id, created_at, last_seen_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		se.Hash, nullString(se.UserID), nullString(se.TokenID), se.CreatedAt.UTC(), se.LastSeenAt.UTC(), se.ExpiresAt.UTC())
	if isUniqueViolation(err) {
		return fmt.Errorf("session: %w", store.ErrConflict)
	}
	return err
}

// SessionByHash finds a session by the hash of its id.
func (s *DB) SessionByHash(ctx context.Context, hash []byte) (store.Session, error) {
	var se store.Session
	err := s.pool.QueryRow(ctx, `SELECT hash, COALESCE(user_id, ''), COALESCE(token_id, ''), created_at, last_seen_at, expires_at FROM sessions WHERE hash = $1`, hash).
		Scan(&se.Hash, &se.UserID, &se.TokenID, &se.CreatedAt, &se.LastSeenAt, &se.ExpiresAt)
	se.CreatedAt, se.LastSeenAt, se.ExpiresAt = se.CreatedAt.UTC(), se.LastSeenAt.UTC(), se.ExpiresAt.UTC()
	return se, notFound(err)
}

// TouchSession records a session's use.
func (s *DB) TouchSession(ctx context.Context, hash []byte, at time.Time) error {
	return expectOne(s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = $1 WHERE hash = $2`, at.UTC(), hash))
}

// DeleteSession ends a session.
func (s *DB) DeleteSession(ctx context.Context, hash []byte) error {
	return expectOne(s.pool.Exec(ctx, `DELETE FROM sessions WHERE hash = $1`, hash))
}

// DeleteUserSessions ends every session of a user.
func (s *DB) DeleteUserSessions(ctx context.Context, userID string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
	return err
}

// PruneSessions deletes expired and idle sessions.
func (s *DB) PruneSessions(ctx context.Context, now, idleBefore time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2`, now.UTC(), idleBefore.UTC())
	return tag.RowsAffected(), err
}

// AppendAudit adds an entry to the audit log.
func (s *DB) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO audit_log (at, actor_id, actor_name, action, target, outcome, client_ip, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		e.At.UTC(), e.ActorID, e.ActorName, e.Action, e.Target, e.Outcome, e.ClientIP, e.Detail)
	return err
}

// ListAudit lists audit entries newest first.
func (s *DB) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if f.Actor != "" {
		p := arg(f.Actor)
		where = append(where, `(actor_id = `+p+` OR actor_name = `+p+`)`)
	}
	if f.Action != "" {
		where = append(where, `action = `+arg(f.Action))
	}
	if !f.Since.IsZero() {
		where = append(where, `at >= `+arg(f.Since.UTC()))
	}
	if !f.Until.IsZero() {
		where = append(where, `at < `+arg(f.Until.UTC()))
	}
	if f.Before > 0 {
		where = append(where, `id < `+arg(f.Before))
	}
	q := `SELECT id, at, actor_id, actor_name, action, target, outcome, client_ip, detail FROM audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	q += ` ORDER BY id DESC LIMIT ` + arg(limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		if err := rows.Scan(&e.ID, &e.At, &e.ActorID, &e.ActorName, &e.Action, &e.Target, &e.Outcome, &e.ClientIP, &e.Detail); err != nil {
			return nil, err
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// PruneAudit deletes entries older than before.
func (s *DB) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM audit_log WHERE at < $1`, before.UTC())
	return tag.RowsAffected(), err
}
