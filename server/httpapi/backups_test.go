package httpapi_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/backup"
	"github.com/millrace/millrace/server/httpapi"
	"github.com/stretchr/testify/require"
)

func TestBackupsAPI(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	var svc *backup.Service
	f := setupWith(t, func(d *httpapi.Deps) {
		svc = backup.NewService(backup.Source{DataDir: data, DB: d.Store, ServerVersion: "test"},
			backup.Schedule{Interval: time.Hour, Dir: filepath.Join(data, "backups"), Keep: 2, Recipients: nil})
		d.Backups = svc
	})
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)

	res := f.doJSON(t, "POST", "/v1/backups", map[string]any{"recipients": []string{id.Recipient().String()}})
	require.Equal(t, 200, res.status, string(res.body))
	require.Equal(t, "application/octet-stream", res.header.Get("Content-Type"))
	require.Contains(t, res.header.Get("Content-Disposition"), ".age")
	m, err := backup.Unpack(bytes.NewReader(res.body), t.TempDir(), id)
	require.NoError(t, err)
	require.Equal(t, backup.DialectSQLite, m.Dialect)

	res = f.doJSON(t, "POST", "/v1/backups", map[string]any{"recipients": []string{"age1nope"}})
	require.Equal(t, 422, res.status)
	require.Contains(t, string(res.body), "body.recipients[0]")
	res = f.doJSON(t, "POST", "/v1/backups", map[string]any{"recipients": []string{id.Recipient().String()}, "passphrase": "x"})
	require.Equal(t, 422, res.status)
	require.Contains(t, string(res.body), "body.passphrase")

	// Only backups:admin may take one: a backup holds every secret.
	_, limited, err := f.tokens.Issue(context.Background(), "ops", []string{auth.ScopeSecretsWrite, auth.ScopeWorkflowsRun})
	require.NoError(t, err)
	res = f.do(t, limited, "POST", "/v1/backups", strings.NewReader(`{"passphrase":"x"}`), "application/json")
	require.Equal(t, 403, res.status)
	require.Contains(t, string(res.body), "backups:admin")
}

func TestScheduledBackups(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	var svc *backup.Service
	f := setupWith(t, func(d *httpapi.Deps) {
		svc = backup.NewService(backup.Source{DataDir: data, DB: d.Store, ServerVersion: "test"},
			backup.Schedule{Interval: time.Hour, Dir: filepath.Join(data, "backups"), Keep: 2, Recipients: []age.Recipient{id.Recipient()}})
		d.Backups = svc
	})
	var names []string
	for range 3 {
		name, err := svc.RunScheduled(context.Background())
		require.NoError(t, err)
		names = append(names, name)
	}
	res := f.doJSON(t, "GET", "/v1/backups", nil)
	require.Equal(t, 200, res.status)
	list := res.json(t)["backups"].([]any)
	require.Len(t, list, 2, "keeps the last two")
	require.Equal(t, names[2], list[0].(map[string]any)["name"])

	res = f.doJSON(t, "GET", "/v1/backups/"+names[2], nil)
	require.Equal(t, 200, res.status)
	m, err := backup.Unpack(bytes.NewReader(res.body), t.TempDir(), id)
	require.NoError(t, err)
	for _, e := range m.Entries {
		require.False(t, strings.HasPrefix(e.Name, "data/backups/"), "the backup folder inside the data directory stays out of backups: %s", e.Name)
	}
	require.Equal(t, 404, f.doJSON(t, "GET", "/v1/backups/"+names[0], nil).status)
	require.Equal(t, 422, f.doJSON(t, "GET", "/v1/backups/..%2Fsecret.key", nil).status)
}
