package audit_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/millrace/millrace/server/audit"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

func TestRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	require.NoError(t, err)
	defer db.Close()
	log := audit.New(db)
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	log.Now = func() time.Time { return now }

	// Without an actor the server itself acts (a scheduled backup).
	require.NoError(t, log.Record(ctx, audit.Event{Action: "backup-create", Target: "backups/2026-06-01.age"}))
	// A request's actor, even once its context is cancelled.
	actx, cancel := context.WithCancel(audit.WithActor(ctx, audit.Actor{ID: "usr_1", Name: "alice", ClientIP: "192.0.2.1"}))
	cancel()
	require.NoError(t, log.Record(actx, audit.Event{Action: "restore", Target: "x.age", Outcome: audit.Failure, Detail: "wrong passphrase"}))
	var nilLog *audit.Log
	require.NoError(t, nilLog.Record(ctx, audit.Event{Action: "ignored"}))

	got, err := db.ListAudit(ctx, store.AuditFilter{})
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, store.AuditEntry{ID: got[0].ID, At: now, ActorID: "usr_1", ActorName: "alice", Action: "restore", Target: "x.age", Outcome: "failure", ClientIP: "192.0.2.1", Detail: "wrong passphrase"}, got[0])
	require.Equal(t, "system", got[1].ActorName)
	require.Equal(t, audit.Success, got[1].Outcome)

	// Entries past retention go, at most once an hour, on a later write.
	now = now.Add(audit.DefaultRetention + 2*time.Hour)
	require.NoError(t, log.Record(ctx, audit.Event{Action: "later"}))
	got, err = db.ListAudit(ctx, store.AuditFilter{})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "later", got[0].Action)
}
