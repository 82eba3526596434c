package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

func openCaching(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open(driverName, "file:"+filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3)`); err != nil {
		t.Fatal(err)
	}
	return db
}

func cachedQueries(t *testing.T, db *sql.DB) int {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n := 0
	c.Raw(func(dc any) error {
		cc := dc.(*cachingConn)
		cc.mu.Lock()
		n = len(cc.stmts)
		cc.mu.Unlock()
		return nil
	})
	return n
}

// A query run while its own cached statement has rows open (a loop over
// rows that runs the same query again, inside one transaction) must not
// reset the outer cursor.
func TestCachedStatementNestedUse(t *testing.T) {
	db := openCaching(t)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const q = `SELECT x FROM t ORDER BY x`
	rows, err := tx.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	var outer []int
	for rows.Next() {
		var x int
		if err := rows.Scan(&x); err != nil {
			t.Fatal(err)
		}
		outer = append(outer, x)
		inner, err := tx.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for inner.Next() {
			n++
		}
		if err := inner.Close(); err != nil || n != 3 {
			t.Fatalf("inner query read %d rows, err %v", n, err)
		}
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if len(outer) != 3 || outer[0] != 1 || outer[2] != 3 {
		t.Fatalf("outer rows %v, want [1 2 3]", outer)
	}
}

// Plain-text queries, in and out of transactions, are prepared once per
// connection and then reused; errors still surface.
func TestStatementsAreCachedPerConnection(t *testing.T) {
	db := openCaching(t)
	before := cachedQueries(t, db)
	for range 5 {
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM t WHERE x > ?`, 1).Scan(&n); err != nil || n != 2 {
			t.Fatalf("count %d, err %v", n, err)
		}
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(`UPDATE t SET x = x WHERE x = ?`, 2); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	if got := cachedQueries(t, db) - before; got != 2 {
		t.Fatalf("%d statements cached for 2 distinct queries run 5 times", got)
	}
	if _, err := db.Exec(`SELEC nonsense`); err == nil {
		t.Fatal("a syntax error was not reported")
	}
}
