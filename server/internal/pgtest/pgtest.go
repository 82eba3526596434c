// Package pgtest gives tests real, isolated PostgreSQL databases.
//
// Each call to URL creates a fresh, empty schema of its own and returns a
// URL whose search_path is that schema alone, so parallel tests never see
// each other's tables or rows (the habit of River's own tests). A schema
// costs about a millisecond where CREATE DATABASE costs a third of a second
// of copying. The server is the one named by DATABASE_URL when that is set
// (its user needs the CREATE privilege on the database); otherwise pgtest
// starts one throwaway cluster per test process from the installed server
// binaries (internal/pgcluster), on a free loopback port, tuned for speed
// (no fsync), and stops it when the tests end. A package that uses URL
// without DATABASE_URL must run its tests through Main:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/millrace/millrace/internal/pgcluster"
)

// server is where test databases are created.
type server struct {
	base    string             // URL of the server's admin database
	admin   *pgxpool.Pool      // runs CREATE and DROP DATABASE
	cluster *pgcluster.Cluster // nil when DATABASE_URL names the server
}

var (
	mainRunning atomic.Bool
	startOnce   sync.Once
	started     *server
	startErr    error
)

// Main runs a package's tests, then stops the throwaway cluster if one was
// started and removes its files. It does not return.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is Main for a TestMain with more to clean up: it returns the exit
// code instead of exiting.
func Run(m *testing.M) int {
	mainRunning.Store(true)
	code := m.Run()
	if started != nil {
		started.admin.Close()
		if started.cluster != nil {
			if err := started.cluster.Stop(); err != nil {
				fmt.Fprintln(os.Stderr, "pgtest:", err)
				if code == 0 {
					code = 1
				}
			}
		}
	}
	return code
}

// URL returns a connection URL to a new, empty schema that only this test
// uses: tables created through the URL land in it. The schema is dropped
// when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	s, err := get()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	schema := "test_" + randomHex(6)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := s.admin.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("pgtest: creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := s.admin.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("pgtest: dropping schema %s: %v", schema, err)
		}
	})
	u, err := withSearchPath(s.base, schema)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

func get() (*server, error) {
	startOnce.Do(func() { started, startErr = start() })
	return started, startErr
}

func start() (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := &server{base: os.Getenv("DATABASE_URL")}
	if s.base == "" {
		if !mainRunning.Load() {
			return nil, errors.New("no DATABASE_URL, and the throwaway cluster needs pgtest.Main to stop it: add `func TestMain(m *testing.M) { pgtest.Main(m) }` to the package's tests")
		}
		c, err := pgcluster.Start(ctx)
		if err != nil {
			return nil, err
		}
		s.cluster, s.base = c, c.URL
	}
	cfg, err := pgxpool.ParseConfig(s.base)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	cfg.MaxConns = 4
	if s.admin, err = pgxpool.NewWithConfig(ctx, cfg); err == nil {
		err = s.admin.Ping(ctx)
	}
	if err != nil {
		if s.cluster != nil {
			s.cluster.Stop()
		}
		return nil, fmt.Errorf("connecting to %s: %w", redact(s.base), err)
	}
	return s, nil
}

// withSearchPath sets the search_path of a connection string, URL or
// keyword form; pgx sends it to the server as a run-time parameter.
func withSearchPath(conn, schema string) (string, error) {
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		u, err := url.Parse(conn)
		if err != nil {
			return "", errors.New("DATABASE_URL is not a valid URL")
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	// Keyword form: a later keyword overrides an earlier one.
	return conn + " search_path=" + schema, nil
}

// redact drops the password from a URL for error messages.
func redact(conn string) string {
	if u, err := url.Parse(conn); err == nil && u.User != nil {
		u.User = url.User(u.User.Username())
		return u.String()
	}
	if strings.Contains(conn, "password") {
		return "DATABASE_URL"
	}
	return conn
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
