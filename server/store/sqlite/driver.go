package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync"

	"modernc.org/sqlite"
)

// driverName is modernc's SQLite driver with a statement cache on each
// connection. Under load SQLite's parser was the largest single cost in
// the server: a quarter of its CPU in the webhook benchmark, parsing the
// same few dozen queries again and again, River's included (its SQLite
// driver runs every query as plain text, inside transactions). With one
// connection every statement runs under one lock, so that parsing was
// also what capped throughput. A cached statement is parsed once per
// connection; the cache sits below database/sql so that it serves every
// caller: the store's queries, its transactions, migrations and River.
const driverName = "millrace-sqlite"

func init() { sql.Register(driverName, cachingDriver{}) }

type cachingDriver struct{}

func (cachingDriver) Open(dsn string) (driver.Conn, error) {
	c, err := (&sqlite.Driver{}).Open(dsn)
	if err != nil {
		return nil, err
	}
	return &cachingConn{conn: c.(sqliteConn), stmts: map[string]*cachedStmt{}}, nil
}

// sqliteConn is what database/sql uses of a modernc connection.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.QueryerContext
	driver.ExecerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// maxCachedStmts bounds the cache per connection. The queries are
// constants (the store's and River's), a few dozen in all, so the bound
// is a guard, not a working limit; past it queries run uncached.
const maxCachedStmts = 512

type cachingConn struct {
	conn sqliteConn

	// database/sql calls a connection from one goroutine at a time, but
	// rows are closed by whoever holds them: mu guards busy flags too.
	mu    sync.Mutex
	stmts map[string]*cachedStmt
}

// cachedStmt is a prepared statement; busy while rows from it are open,
// since a SQLite statement has one cursor: a second use meanwhile (the
// same query inside a loop over its own rows) runs uncached.
type cachedStmt struct {
	stmt interface {
		driver.Stmt
		driver.StmtQueryContext
		driver.StmtExecContext
	}
	busy bool
}

var (
	_ sqliteConn = (*cachingConn)(nil)
)

// take returns the cached statement for query, marked busy, or nil when
// the query should run uncached.
func (c *cachingConn) take(ctx context.Context, query string) *cachedStmt {
	c.mu.Lock()
	st, ok := c.stmts[query]
	if ok {
		if st.busy {
			c.mu.Unlock()
			return nil
		}
		st.busy = true
		c.mu.Unlock()
		return st
	}
	full := len(c.stmts) >= maxCachedStmts
	c.mu.Unlock()
	if full {
		return nil
	}
	prepared, err := c.conn.PrepareContext(ctx, query)
	if err != nil {
		return nil // the uncached path reports the error
	}
	typed, ok := prepared.(interface {
		driver.Stmt
		driver.StmtQueryContext
		driver.StmtExecContext
	})
	if !ok {
		prepared.Close()
		return nil
	}
	st = &cachedStmt{stmt: typed, busy: true}
	c.mu.Lock()
	c.stmts[query] = st
	c.mu.Unlock()
	return st
}

func (c *cachingConn) release(st *cachedStmt) {
	c.mu.Lock()
	st.busy = false
	c.mu.Unlock()
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	st := c.take(ctx, query)
	if st == nil {
		return c.conn.QueryContext(ctx, query, args)
	}
	rows, err := st.stmt.QueryContext(ctx, args)
	if err != nil {
		c.release(st)
		return nil, err
	}
	return &cachedRows{Rows: rows, done: func() { c.release(st) }}, nil
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	st := c.take(ctx, query)
	if st == nil {
		return c.conn.ExecContext(ctx, query, args)
	}
	defer c.release(st)
	return st.stmt.ExecContext(ctx, args)
}

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) { return c.conn.Prepare(query) }

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.conn.PrepareContext(ctx, query)
}

func (c *cachingConn) Begin() (driver.Tx, error) { return c.conn.Begin() } //nolint:staticcheck // driver.Conn needs it

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.conn.BeginTx(ctx, opts)
}

func (c *cachingConn) Ping(ctx context.Context) error { return c.conn.Ping(ctx) }

func (c *cachingConn) ResetSession(ctx context.Context) error { return c.conn.ResetSession(ctx) }

func (c *cachingConn) IsValid() bool { return c.conn.IsValid() }

// Close finalises the cached statements, then closes the connection.
func (c *cachingConn) Close() error {
	c.mu.Lock()
	for _, st := range c.stmts {
		st.stmt.Close()
	}
	c.stmts = nil
	c.mu.Unlock()
	return c.conn.Close()
}

// NewBackup is modernc's online backup API (sqlite.Backup), reached
// through sql.Conn.Raw as on an unwrapped connection.
func (c *cachingConn) NewBackup(dstURI string) (*sqlite.Backup, error) {
	return c.conn.(interface {
		NewBackup(string) (*sqlite.Backup, error)
	}).NewBackup(dstURI)
}

// cachedRows gives its statement back when closed.
type cachedRows struct {
	driver.Rows
	once sync.Once
	done func()
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(r.done)
	return err
}
