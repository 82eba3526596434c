package auth_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

// BenchmarkVerifyToken measures a bearer request's credential check on
// SQLite: as it is now (a read; last use written at most once a minute),
// and as it was (a read and a write on every request) for comparison.
func BenchmarkVerifyToken(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "db"))
	require.NoError(b, err)
	defer db.Close()
	tokens := auth.New(db)
	rec, secret, err := tokens.IssueToken(ctx, auth.TokenSpec{Name: "bench", Role: auth.RoleEditor})
	require.NoError(b, err)
	b.Run("throttled", func(b *testing.B) {
		for b.Loop() {
			if _, err := tokens.VerifySecret(ctx, secret); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write-every-request", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.TokenByHash(ctx, auth.Hash(secret)); err != nil {
				b.Fatal(err)
			}
			if err := db.TouchToken(ctx, rec.ID, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkResolveSession measures a cookie request's session lookup.
func BenchmarkResolveSession(b *testing.B) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "db"))
	require.NoError(b, err)
	defer db.Close()
	u, err := auth.NewUsers(db).Create(ctx, "bench", "a long bench password", auth.RoleViewer)
	require.NoError(b, err)
	sessions := auth.NewSessions(db, auth.SessionConfig{})
	s, err := sessions.Create(ctx, u.ID, "")
	require.NoError(b, err)
	for b.Loop() {
		if _, err := sessions.Resolve(ctx, s.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHashPassword is the cost of one sign-in's argon2id work with
// the default parameters.
func BenchmarkHashPassword(b *testing.B) {
	for b.Loop() {
		if _, err := auth.HashPassword("correct horse battery staple", auth.DefaultPasswordParams); err != nil {
			b.Fatal(err)
		}
	}
}
