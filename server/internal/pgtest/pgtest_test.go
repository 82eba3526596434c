package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { Main(m) }

func TestIsolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	connect := func(url string) *pgx.Conn {
		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close(ctx) })
		return conn
	}
	a, b := connect(URL(t)), connect(URL(t))
	_, err := a.Exec(ctx, `CREATE TABLE things (id INT); INSERT INTO things VALUES (1)`)
	require.NoError(t, err)
	var n int
	require.NoError(t, a.QueryRow(ctx, `SELECT count(*) FROM things`).Scan(&n))
	require.Equal(t, 1, n)
	_, err = b.Exec(ctx, `SELECT * FROM things`)
	require.ErrorContains(t, err, "does not exist", "another test's tables are out of sight")
	_, err = b.Exec(ctx, `CREATE TABLE things (id INT)`)
	require.NoError(t, err, "and do not clash with its own")
}

func TestWithSearchPath(t *testing.T) {
	t.Parallel()
	got, err := withSearchPath("postgres://u:p@h:5432/db?sslmode=disable", "test_1")
	require.NoError(t, err)
	require.Equal(t, "postgres://u:p@h:5432/db?search_path=test_1&sslmode=disable", got)
	got, err = withSearchPath("host=h dbname=db", "test_1")
	require.NoError(t, err)
	require.Equal(t, "host=h dbname=db search_path=test_1", got)
	require.Equal(t, "postgres://u@h/db", redact("postgres://u:secret@h/db"))
}
