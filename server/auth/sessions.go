package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/millrace/millrace/server/store"
)

// SessionCookie is the name of the console's session cookie.
const SessionCookie = "millrace_session"

// CSRFHeader carries the session's CSRF token on unsafe requests.
const CSRFHeader = "X-CSRF-Token"

// SessionConfig bounds a session's life: it ends after IdleTimeout
// without use, and after Lifetime whatever happens.
type SessionConfig struct {
	IdleTimeout time.Duration
	Lifetime    time.Duration
}

// DefaultSessionConfig: 12 hours idle, 7 days at most.
var DefaultSessionConfig = SessionConfig{IdleTimeout: 12 * time.Hour, Lifetime: 7 * 24 * time.Hour}

// ErrSessionExpired means the session cookie names no live session.
var ErrSessionExpired = errors.New("the session has expired or was ended; sign in again")

// touchEvery is how often a credential's last-used time is written at
// most: the hot path reads, and writes once a minute per credential.
const touchEvery = time.Minute

// Sessions creates and resolves console sessions.
type Sessions struct {
	store store.Store
	cfg   SessionConfig
	Now   func() time.Time // the clock; tests move it

	mu        sync.Mutex
	touched   map[string]time.Time // session hash → last written use
	lastPrune time.Time
}

// NewSessions returns a session service; zero fields of cfg take
// DefaultSessionConfig.
func NewSessions(s store.Store, cfg SessionConfig) *Sessions {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultSessionConfig.IdleTimeout
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = DefaultSessionConfig.Lifetime
	}
	return &Sessions{store: s, cfg: cfg, Now: time.Now, touched: map[string]time.Time{}}
}

// Config returns the session limits in force.
func (s *Sessions) Config() SessionConfig { return s.cfg }

// sessionIDLen is the length of a session id: 32 random bytes, base64url.
const sessionIDLen = 43

// NewSession is a session just created: the cookie value, which is never
// stored, and the CSRF token derived from it.
type NewSession struct {
	ID        string
	CSRFToken string
	ExpiresAt time.Time // the end of its absolute lifetime
}

// Create starts a session for a user (userID) or for a token (tokenID).
func (s *Sessions) Create(ctx context.Context, userID, tokenID string) (NewSession, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return NewSession{}, err
	}
	id := base64.RawURLEncoding.EncodeToString(raw)
	now := s.Now().UTC()
	rec := store.Session{Hash: Hash(id), UserID: userID, TokenID: tokenID, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.cfg.Lifetime)}
	if err := s.store.CreateSession(ctx, rec); err != nil {
		return NewSession{}, err
	}
	s.pruneNow(ctx, now)
	return NewSession{ID: id, CSRFToken: CSRFToken(id), ExpiresAt: rec.ExpiresAt}, nil
}

// pruneNow deletes dead sessions, at most once an hour, from the sign-in
// path: sessions only accumulate through sign-ins.
func (s *Sessions) pruneNow(ctx context.Context, now time.Time) {
	s.mu.Lock()
	due := now.Sub(s.lastPrune) > time.Hour
	if due {
		s.lastPrune = now
	}
	s.mu.Unlock()
	if due {
		if _, err := s.store.PruneSessions(ctx, now, now.Add(-s.cfg.IdleTimeout)); err != nil {
			slog.WarnContext(ctx, "pruning sessions", "err", err)
		}
	}
}

// ParseSessionID checks a cookie value's shape before it is hashed and
// looked up.
func ParseSessionID(v string) (string, bool) {
	if len(v) != sessionIDLen {
		return "", false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return "", false
		}
	}
	return v, true
}

// Resolve finds the live session a cookie value names, ending it if it
// expired, and records its use (at most once a minute).
func (s *Sessions) Resolve(ctx context.Context, cookie string) (store.Session, error) {
	id, ok := ParseSessionID(cookie)
	if !ok {
		return store.Session{}, ErrSessionExpired
	}
	hash := Hash(id)
	rec, err := s.store.SessionByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return rec, ErrSessionExpired
	} else if err != nil {
		return rec, err
	}
	now := s.Now().UTC()
	if !now.Before(rec.ExpiresAt) || now.Sub(rec.LastSeenAt) > s.cfg.IdleTimeout {
		if err := s.store.DeleteSession(ctx, hash); err != nil && !errors.Is(err, store.ErrNotFound) {
			slog.WarnContext(ctx, "ending an expired session", "err", err)
		}
		return rec, ErrSessionExpired
	}
	key := string(hash)
	s.mu.Lock()
	last, seen := s.touched[key]
	due := now.Sub(rec.LastSeenAt) >= touchEvery && (!seen || now.Sub(last) >= touchEvery)
	if due {
		if len(s.touched) > 10_000 {
			clear(s.touched) // only saves writes; forgetting is harmless
		}
		s.touched[key] = now
	}
	s.mu.Unlock()
	if due {
		if err := s.store.TouchSession(ctx, hash, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			slog.WarnContext(ctx, "recording a session's use", "err", err)
		}
	}
	return rec, nil
}

// End deletes the session a cookie value names; an unknown one is fine.
func (s *Sessions) End(ctx context.Context, cookie string) error {
	id, ok := ParseSessionID(cookie)
	if !ok {
		return nil
	}
	err := s.store.DeleteSession(ctx, Hash(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// ExpiresAt is when a session ends unless used again: the earlier of its
// idle deadline and its absolute expiry.
func (s *Sessions) ExpiresAt(rec store.Session) time.Time {
	idle := s.Now().UTC().Add(s.cfg.IdleTimeout)
	if rec.ExpiresAt.Before(idle) {
		return rec.ExpiresAt
	}
	return idle
}

// CSRFToken derives a session's CSRF token from its id. It is safe to show
// to page scripts: the id cannot be recovered from it, and another site
// can read neither (the cookie is HttpOnly and SameSite=Strict). Being
// derived, it needs no storage and ends with the session.
func CSRFToken(sessionID string) string {
	sum := sha256.Sum256([]byte("millrace-csrf\x00" + sessionID))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// CheckCSRF reports, in constant time, whether header is the CSRF token of
// the session with the given id.
func CheckCSRF(sessionID, header string) bool {
	if header == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(CSRFToken(sessionID)), []byte(header)) == 1
}
