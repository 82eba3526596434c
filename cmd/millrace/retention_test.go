package main

import (
	"testing"
	"time"

	"github.com/millrace/millrace/server"
	"github.com/stretchr/testify/require"
)

// Not parallel: it sets environment variables.
func TestRetentionFromEnv(t *testing.T) {
	var cfg server.Config
	require.NoError(t, retentionFromEnv(&cfg))
	require.Nil(t, cfg.Retention, "unset: the server's defaults")

	t.Setenv("MILLRACE_RUN_RETENTION", "0")
	require.NoError(t, retentionFromEnv(&cfg))
	require.Zero(t, cfg.Retention.MaxAge, "0 keeps runs of any age")
	require.Equal(t, 1000, cfg.Retention.MaxRuns, "the count keeps its default")

	t.Setenv("MILLRACE_RUN_RETENTION", "168h")
	t.Setenv("MILLRACE_RUN_RETENTION_COUNT", "0")
	require.NoError(t, retentionFromEnv(&cfg))
	require.Equal(t, 7*24*time.Hour, cfg.Retention.MaxAge)
	require.Zero(t, cfg.Retention.MaxRuns)

	t.Setenv("MILLRACE_RUN_RETENTION", "30d")
	require.ErrorContains(t, retentionFromEnv(&cfg), "720h")
	t.Setenv("MILLRACE_RUN_RETENTION", "")
	t.Setenv("MILLRACE_RUN_RETENTION_COUNT", "-1")
	require.ErrorContains(t, retentionFromEnv(&cfg), "MILLRACE_RUN_RETENTION_COUNT")
}
