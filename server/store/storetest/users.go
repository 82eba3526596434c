package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/millrace/millrace/server/store"
	"github.com/stretchr/testify/require"
)

func exerciseUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	alice := store.User{ID: "usr_a", Username: "alice", Role: "editor", PasswordHash: "$argon2id$x"}
	require.NoError(t, s.CreateUser(ctx, alice))
	require.ErrorIs(t, s.CreateUser(ctx, store.User{ID: "usr_b", Username: "alice", Role: "viewer"}), store.ErrConflict, "usernames are unique")
	require.NoError(t, s.CreateUser(ctx, store.User{ID: "usr_b", Username: "bob", Role: "viewer"}))

	got, err := s.User(ctx, "usr_a")
	require.NoError(t, err)
	require.Equal(t, "alice", got.Username)
	require.Equal(t, "editor", got.Role)
	require.Equal(t, "$argon2id$x", got.PasswordHash)
	require.False(t, got.Disabled)
	require.False(t, got.CreatedAt.IsZero())
	got, err = s.UserByName(ctx, "bob")
	require.NoError(t, err)
	require.Equal(t, "usr_b", got.ID)
	_, err = s.UserByName(ctx, "carol")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = s.User(ctx, "usr_nope")
	require.ErrorIs(t, err, store.ErrNotFound)

	admin, oldHash, disabled := "admin", "$argon2id$y", true
	require.NoError(t, s.ChangeUser(ctx, "usr_a", store.UserChange{Role: &admin, PasswordHash: &oldHash, Disabled: &disabled}))
	got, _ = s.User(ctx, "usr_a")
	require.Equal(t, "admin", got.Role)
	require.Equal(t, "$argon2id$y", got.PasswordHash)
	require.True(t, got.Disabled)
	require.False(t, got.UpdatedAt.Before(got.CreatedAt))

	// ChangeUser writes only the fields it is given.
	hash, role, enabled := "$argon2id$z", "viewer", false
	require.NoError(t, s.ChangeUser(ctx, "usr_a", store.UserChange{PasswordHash: &hash}))
	got, _ = s.User(ctx, "usr_a")
	require.Equal(t, "$argon2id$z", got.PasswordHash)
	require.Equal(t, "admin", got.Role)
	require.True(t, got.Disabled, "a new password does not enable the user")
	require.NoError(t, s.ChangeUser(ctx, "usr_a", store.UserChange{Role: &role, Disabled: &enabled}))
	got, _ = s.User(ctx, "usr_a")
	require.Equal(t, "viewer", got.Role)
	require.False(t, got.Disabled)
	require.Equal(t, "$argon2id$z", got.PasswordHash, "a role change keeps the password")
	require.ErrorIs(t, s.ChangeUser(ctx, "usr_nope", store.UserChange{Role: &role}), store.ErrNotFound)

	list, err := s.ListUsers(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "alice", list[0].Username)
	require.Equal(t, "bob", list[1].Username)

	// A user's tokens and sessions go with it; other users' stay.
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, s.CreateToken(ctx, store.Token{ID: "tok_a", Name: "a", Hash: []byte("ha"), Scopes: []string{}, UserID: "usr_a", Role: "editor", ExpiresAt: &exp}))
	require.NoError(t, s.CreateToken(ctx, store.Token{ID: "tok_b", Name: "b", Hash: []byte("hb"), Scopes: []string{"modules:read"}, UserID: "usr_b"}))
	tok, err := s.TokenByHash(ctx, []byte("ha"))
	require.NoError(t, err)
	require.Equal(t, "usr_a", tok.UserID)
	require.Equal(t, "editor", tok.Role)
	require.Equal(t, exp, *tok.ExpiresAt)
	now := time.Now().UTC()
	require.NoError(t, s.CreateSession(ctx, store.Session{Hash: []byte("sa"), UserID: "usr_a", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}))
	require.NoError(t, s.CreateSession(ctx, store.Session{Hash: []byte("sat"), TokenID: "tok_a", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}))
	require.NoError(t, s.CreateSession(ctx, store.Session{Hash: []byte("sb"), UserID: "usr_b", CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour)}))

	require.NoError(t, s.DeleteUser(ctx, "usr_a"))
	require.ErrorIs(t, s.DeleteUser(ctx, "usr_a"), store.ErrNotFound)
	_, err = s.Token(ctx, "tok_a")
	require.ErrorIs(t, err, store.ErrNotFound, "the user's token is gone")
	for _, h := range []string{"sa", "sat"} {
		_, err = s.SessionByHash(ctx, []byte(h))
		require.ErrorIs(t, err, store.ErrNotFound, "session %s is gone", h)
	}
	_, err = s.Token(ctx, "tok_b")
	require.NoError(t, err, "another user's token stays")
	_, err = s.SessionByHash(ctx, []byte("sb"))
	require.NoError(t, err, "another user's session stays")
}

func exerciseSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	require.NoError(t, s.CreateUser(ctx, store.User{ID: "usr_a", Username: "alice", Role: "viewer"}))
	require.NoError(t, s.CreateToken(ctx, store.Token{ID: "tok_1", Name: "t", Hash: []byte("h"), Scopes: []string{"*"}}))
	fresh := store.Session{Hash: []byte("fresh"), UserID: "usr_a", CreatedAt: t0, LastSeenAt: t0, ExpiresAt: t0.Add(7 * 24 * time.Hour)}
	require.NoError(t, s.CreateSession(ctx, fresh))
	require.ErrorIs(t, s.CreateSession(ctx, fresh), store.ErrConflict)
	require.NoError(t, s.CreateSession(ctx, store.Session{Hash: []byte("idle"), UserID: "usr_a", CreatedAt: t0.Add(-24 * time.Hour), LastSeenAt: t0.Add(-13 * time.Hour), ExpiresAt: t0.Add(6 * 24 * time.Hour)}))
	require.NoError(t, s.CreateSession(ctx, store.Session{Hash: []byte("old"), TokenID: "tok_1", CreatedAt: t0.Add(-8 * 24 * time.Hour), LastSeenAt: t0, ExpiresAt: t0.Add(-time.Hour)}))

	got, err := s.SessionByHash(ctx, []byte("fresh"))
	require.NoError(t, err)
	require.Equal(t, "usr_a", got.UserID)
	require.Empty(t, got.TokenID)
	require.Equal(t, t0, got.LastSeenAt)
	require.Equal(t, t0.Add(7*24*time.Hour), got.ExpiresAt)
	got, err = s.SessionByHash(ctx, []byte("old"))
	require.NoError(t, err)
	require.Equal(t, "tok_1", got.TokenID)
	require.Empty(t, got.UserID)

	require.NoError(t, s.TouchSession(ctx, []byte("fresh"), t0.Add(time.Minute)))
	got, _ = s.SessionByHash(ctx, []byte("fresh"))
	require.Equal(t, t0.Add(time.Minute), got.LastSeenAt)
	require.ErrorIs(t, s.TouchSession(ctx, []byte("nope"), t0), store.ErrNotFound)

	n, err := s.PruneSessions(ctx, t0, t0.Add(-12*time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 2, n, "the idle and the expired session go")
	_, err = s.SessionByHash(ctx, []byte("fresh"))
	require.NoError(t, err)

	require.NoError(t, s.DeleteSession(ctx, []byte("fresh")))
	require.ErrorIs(t, s.DeleteSession(ctx, []byte("fresh")), store.ErrNotFound)

	// Revoking a token ends the sessions signed in with it; ending a
	// user's sessions leaves others alone.
	require.NoError(t, s.CreateSession(ctx, store.Session{Hash: []byte("t"), TokenID: "tok_1", CreatedAt: t0, LastSeenAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	require.NoError(t, s.CreateSession(ctx, store.Session{Hash: []byte("u"), UserID: "usr_a", CreatedAt: t0, LastSeenAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	require.NoError(t, s.DeleteToken(ctx, "tok_1"))
	_, err = s.SessionByHash(ctx, []byte("t"))
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, s.DeleteUserSessions(ctx, "usr_a"))
	_, err = s.SessionByHash(ctx, []byte("u"))
	require.ErrorIs(t, err, store.ErrNotFound)
}

func exerciseAudit(t *testing.T, s store.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range 10 {
		actor := "usr_a"
		if i%2 == 1 {
			actor = "tok_b"
		}
		require.NoError(t, s.AppendAudit(ctx, store.AuditEntry{
			// Sub-second steps with trailing zeros check that times
			// compare as times, not as text.
			At: t0.Add(time.Duration(i) * 100 * time.Millisecond), ActorID: actor, ActorName: "name-" + actor,
			Action: fmt.Sprintf("action-%d", i%3), Target: fmt.Sprintf("/v1/x/%d", i), Outcome: "success", ClientIP: "127.0.0.1", Detail: "d",
		}))
	}
	all, err := s.ListAudit(ctx, store.AuditFilter{})
	require.NoError(t, err)
	require.Len(t, all, 10)
	require.Equal(t, "/v1/x/9", all[0].Target, "newest first")
	require.Equal(t, t0.Add(900*time.Millisecond), all[0].At)
	require.Equal(t, "usr_a", all[9].ActorID)
	require.Equal(t, "name-usr_a", all[9].ActorName)
	require.Equal(t, "127.0.0.1", all[9].ClientIP)
	require.Greater(t, all[0].ID, all[1].ID)

	// Cursor paging covers every entry once.
	var seen []string
	var before int64
	for {
		page, err := s.ListAudit(ctx, store.AuditFilter{Before: before, Limit: 3})
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			seen = append(seen, e.Target)
		}
		before = page[len(page)-1].ID
	}
	require.Len(t, seen, 10)
	require.Equal(t, "/v1/x/0", seen[9])

	byActor, err := s.ListAudit(ctx, store.AuditFilter{Actor: "tok_b"})
	require.NoError(t, err)
	require.Len(t, byActor, 5)
	byName, err := s.ListAudit(ctx, store.AuditFilter{Actor: "name-usr_a", Action: "action-0"})
	require.NoError(t, err)
	require.Len(t, byName, 2) // i = 0, 6
	window, err := s.ListAudit(ctx, store.AuditFilter{Since: t0.Add(200 * time.Millisecond), Until: t0.Add(500 * time.Millisecond)})
	require.NoError(t, err)
	require.Len(t, window, 3) // i = 2, 3, 4
	require.Equal(t, "/v1/x/4", window[0].Target)

	n, err := s.PruneAudit(ctx, t0.Add(500*time.Millisecond))
	require.NoError(t, err)
	require.EqualValues(t, 5, n)
	all, err = s.ListAudit(ctx, store.AuditFilter{})
	require.NoError(t, err)
	require.Len(t, all, 5)
	require.Equal(t, "/v1/x/5", all[4].Target)
}
