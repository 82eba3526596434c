package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// conn is the database with its statements prepared once each. With one
// connection, every statement runs under the same lock, and under load
// SQLite's parser was the largest single cost in the server (a quarter of
// its CPU in the webhook benchmark, parsing the same few dozen queries
// over and over); a prepared statement skips it. database/sql re-prepares
// a statement by itself if the connection is ever replaced.
type conn struct {
	*sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

// maxStmts bounds the cache; the queries are constants in this package, so
// it is never reached in practice.
const maxStmts = 512

func (c *conn) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.stmts[query]
	c.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := c.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.stmts[query]; ok {
		st.Close()
		return prev, nil
	}
	if len(c.stmts) < maxStmts {
		c.stmts[query] = st
	}
	return st, nil
}

// ExecContext runs query as a prepared statement.
func (c *conn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// QueryContext runs query as a prepared statement.
func (c *conn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext runs query as a prepared statement; a statement that
// does not prepare reports its error through the row, as database/sql does.
func (c *conn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.prepare(ctx, query)
	if err != nil {
		return c.DB.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// Close closes the statements, then the database.
func (c *conn) Close() error {
	c.mu.Lock()
	for _, st := range c.stmts {
		st.Close()
	}
	c.stmts = nil
	c.mu.Unlock()
	return c.DB.Close()
}
