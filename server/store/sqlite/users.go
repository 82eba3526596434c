package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/millrace/millrace/server/store"
)

// ts formats a time with a fixed number of digits, so that times stored
// as text compare in time order (sessions' expiry and the audit log's
// times are compared in SQL; RFC 3339 with trimmed zeros would not sort).
func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000000Z07:00") }

// CreateUser stores a new user.
func (s *DB) CreateUser(ctx context.Context, u store.User) error {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO users (id, username, role, password_hash, disabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Username, u.Role, u.PasswordHash, u.Disabled, ts(u.CreatedAt), ts(u.CreatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("user %s: %w", u.Username, store.ErrConflict)
	}
	return err
}

const userColumns = `id, username, role, password_hash, disabled, created_at, updated_at`

func scanUser(row interface{ Scan(...any) error }) (store.User, error) {
	var u store.User
	var created, updated string
	if err := row.Scan(&u.ID, &u.Username, &u.Role, &u.PasswordHash, &u.Disabled, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return u, store.ErrNotFound
		}
		return u, err
	}
	u.CreatedAt, u.UpdatedAt = parseTime(created), parseTime(updated)
	return u, nil
}

// User finds a user by id.
func (s *DB) User(ctx context.Context, id string) (store.User, error) {
	return scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
}

// UserByName finds a user by username.
func (s *DB) UserByName(ctx context.Context, username string) (store.User, error) {
	return scanUser(s.db.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
}

// ListUsers lists users by username.
func (s *DB) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
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
	return expectOne(s.db.ExecContext(ctx, `UPDATE users SET role = COALESCE(?, role), password_hash = COALESCE(?, password_hash),
		disabled = COALESCE(?, disabled), updated_at = ? WHERE id = ?`, c.Role, c.PasswordHash, c.Disabled, ts(time.Now()), id))
}

// DeleteUser removes a user, its tokens and its sessions, and the sessions
// signed in with its tokens.
func (s *DB) DeleteUser(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? OR token_id IN (SELECT id FROM api_tokens WHERE user_id = ?)`, id, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM api_tokens WHERE user_id = ?`, id); err != nil {
			return err
		}
		return expectOne(tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id))
	})
}

// CreateSession stores a new session.
func (s *DB) CreateSession(ctx context.Context, se store.Session) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO sessions (hash, user_id, token_id, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		se.Hash, nullString(se.UserID), nullString(se.TokenID), ts(se.CreatedAt), ts(se.LastSeenAt), ts(se.ExpiresAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("session: %w", store.ErrConflict)
	}
	return err
}

// SessionByHash finds a session by the hash of its id.
func (s *DB) SessionByHash(ctx context.Context, hash []byte) (store.Session, error) {
	var se store.Session
	var userID, tokenID sql.NullString
	var created, seen, expires string
	err := s.db.QueryRowContext(ctx, `SELECT hash, user_id, token_id, created_at, last_seen_at, expires_at FROM sessions WHERE hash = ?`, hash).
		Scan(&se.Hash, &userID, &tokenID, &created, &seen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return se, store.ErrNotFound
	}
	se.UserID, se.TokenID = userID.String, tokenID.String
	se.CreatedAt, se.LastSeenAt, se.ExpiresAt = parseTime(created), parseTime(seen), parseTime(expires)
	return se, err
}

// TouchSession records a session's use.
func (s *DB) TouchSession(ctx context.Context, hash []byte, at time.Time) error {
	return expectOne(s.db.ExecContext(ctx, `UPDATE sessions SET last_seen_at = ? WHERE hash = ?`, ts(at), hash))
}

// DeleteSession ends a session.
func (s *DB) DeleteSession(ctx context.Context, hash []byte) error {
	return expectOne(s.db.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, hash))
}

// DeleteUserSessions ends every session of a user.
func (s *DB) DeleteUserSessions(ctx context.Context, userID string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	return err
}

// PruneSessions deletes expired and idle sessions.
func (s *DB) PruneSessions(ctx context.Context, now, idleBefore time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at < ?`, ts(now), ts(idleBefore))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// AppendAudit adds an entry to the audit log.
func (s *DB) AppendAudit(ctx context.Context, e store.AuditEntry) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO audit_log (at, actor_id, actor_name, action, target, outcome, client_ip, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		ts(e.At), e.ActorID, e.ActorName, e.Action, e.Target, e.Outcome, e.ClientIP, e.Detail)
	return err
}

// ListAudit lists audit entries newest first.
func (s *DB) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, error) {
	var where []string
	var args []any
	if f.Actor != "" {
		where, args = append(where, `(actor_id = ? OR actor_name = ?)`), append(args, f.Actor, f.Actor)
	}
	if f.Action != "" {
		where, args = append(where, `action = ?`), append(args, f.Action)
	}
	if !f.Since.IsZero() {
		where, args = append(where, `at >= ?`), append(args, ts(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, `at < ?`), append(args, ts(f.Until))
	}
	if f.Before > 0 {
		where, args = append(where, `id < ?`), append(args, f.Before)
	}
	q := `SELECT id, at, actor_id, actor_name, action, target, outcome, client_ip, detail FROM audit_log`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	// Built from a fixed set of clauses: the statement cache stays small.
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		var at string
		if err := rows.Scan(&e.ID, &at, &e.ActorID, &e.ActorName, &e.Action, &e.Target, &e.Outcome, &e.ClientIP, &e.Detail); err != nil {
			return nil, err
		}
		e.At = parseTime(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// PruneAudit deletes entries older than before.
func (s *DB) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM audit_log WHERE at < ?`, ts(before))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
