package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/millrace/millrace/migrations"
	"github.com/stretchr/testify/require"
)

// migrate up, down and status on a real SQLite database; status changes
// nothing.
func TestMigrate(t *testing.T) {
	t.Parallel()
	all, err := migrations.For("sqlite")
	require.NoError(t, err)
	newest := len(all)
	dir := t.TempDir()
	migrate := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), &env{stdout: &out, stderr: io.Discard, getenv: envMap(nil)}, append(append([]string{"migrate"}, args...), "-data", dir))
		return out.String(), err
	}
	out, err := migrate("status")
	require.NoError(t, err)
	require.Contains(t, out, fmt.Sprintf("sqlite schema at version 0 (empty); this binary's newest is %d", newest))
	out, err = migrate("status")
	require.NoError(t, err)
	require.Contains(t, out, "version 0", "status migrates nothing")

	out, err = migrate("up")
	require.NoError(t, err)
	require.Contains(t, out, fmt.Sprintf("version %d (%03d_%s)", newest, newest, all[newest-1].Name))

	_, err = migrate("down")
	require.ErrorContains(t, err, "migrate down needs -to N")
	out, err = migrate("down", "-to", "2")
	require.NoError(t, err)
	require.Contains(t, out, "sqlite schema at version 2 (002_workflows)")
	require.Contains(t, out, "`millrace migrate up` (or starting the server) applies the rest")
	out, err = migrate("status")
	require.NoError(t, err)
	require.Contains(t, out, "version 2")
	_, err = migrate("up", "-to", fmt.Sprint(newest+1))
	require.ErrorContains(t, err, "does not exist")
	_, err = migrate("sideways")
	require.ErrorContains(t, err, "usage: millrace migrate up|down|status")
}
