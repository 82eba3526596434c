package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

// The first console user can be made without the API; the password comes
// from standard input and is stored as an argon2id hash.
func TestUserCreate(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	stdin = strings.NewReader("correct horse battery staple\n")
	var out bytes.Buffer
	require.NoError(t, Run(ctx, []string{"user", "create", "-username", "alice", "-role", "editor", "-data", dir}, &out, &bytes.Buffer{}))
	require.Contains(t, out.String(), "created editor user alice")

	stdin = strings.NewReader("short\n")
	err := Run(ctx, []string{"user", "create", "-username", "bob", "-data", dir}, &out, &bytes.Buffer{})
	require.ErrorIs(t, err, auth.ErrPasswordPolicy)
	stdin = strings.NewReader("correct horse battery staple\n")
	err = Run(ctx, []string{"user", "create", "-username", "alice", "-data", dir}, &out, &bytes.Buffer{})
	require.ErrorIs(t, err, store.ErrConflict)

	db, err := sqlite.Open(ctx, filepath.Join(dir, "millrace.db"))
	require.NoError(t, err)
	defer db.Close()
	u, err := auth.NewUsers(db).Authenticate(ctx, "alice", "correct horse battery staple")
	require.NoError(t, err)
	require.Equal(t, "editor", u.Role)
	require.True(t, strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=65536,t=3,p=4$"))
	entries, err := db.ListAudit(ctx, store.AuditFilter{Action: "create-user"})
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "cli", entries[0].ActorName)
}
