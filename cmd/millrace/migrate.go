package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"

	"github.com/millrace/millrace/migrations"
	"github.com/millrace/millrace/server/store/postgres"
	"github.com/millrace/millrace/server/store/sqlite"
)

// migrate moves the database schema: up to the newest (what serve does at
// start), down to a version (before running an older binary: rollback),
// or reports where it stands.
func migrate(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || (args[0] != "up" && args[0] != "down" && args[0] != "status") {
		return errors.New("usage: millrace migrate up|down|status [-to N] [-config FILE] [-data DIR] [-database-url URL]")
	}
	fs := flag.NewFlagSet("migrate "+args[0], flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	path := configFlags(fs)
	to := fs.Int("to", -1, "target schema version (up: default the newest; down: required)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	c, _, err := loadConfig(fs, *path, e.getenv)
	if err != nil {
		return err
	}
	dialect := "sqlite"
	if c.Database.URL != "" {
		dialect = "postgres"
	}
	all, err := migrations.For(dialect)
	if err != nil {
		return err
	}
	if args[0] == "down" && *to < 0 {
		return fmt.Errorf("migrate down needs -to N (0 empties the database; this binary's newest is %d)", len(all))
	}
	current := func() (int, error) { return schemaVersion(ctx, dialect, c) }
	if args[0] != "status" {
		// Open migrates to the newest version first (a no-op when there
		// already), then the target is applied.
		var db interface {
			Migrate(ctx context.Context, target int) error
			Close() error
		}
		if dialect == "postgres" {
			d, err := postgres.Open(ctx, c.Database.URL)
			if err != nil {
				return err
			}
			db = d
		} else {
			d, err := sqlite.Open(ctx, filepath.Join(c.Server.Data, "millrace.db"))
			if err != nil {
				return err
			}
			db = d
		}
		err := db.Migrate(ctx, *to)
		db.Close()
		if err != nil {
			return err
		}
	}
	v, err := current()
	if err != nil {
		return err
	}
	name := "empty"
	if v > 0 && v <= len(all) {
		name = fmt.Sprintf("%03d_%s", all[v-1].Version, all[v-1].Name)
	}
	fmt.Fprintf(e.stdout, "%s schema at version %d (%s); this binary's newest is %d\n", dialect, v, name, len(all))
	if v < len(all) {
		fmt.Fprintln(e.stdout, "`millrace migrate up` (or starting the server) applies the rest")
	}
	return nil
}

// schemaVersion reads the schema version without migrating anything
// (opening a store would migrate it up).
func schemaVersion(ctx context.Context, dialect string, c Config) (int, error) {
	const q = `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`
	var v int
	if dialect == "postgres" {
		conn, err := pgx.Connect(ctx, c.Database.URL)
		if err != nil {
			return 0, err
		}
		defer conn.Close(ctx)
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil || !exists {
			return 0, err
		}
		return v, conn.QueryRow(ctx, q).Scan(&v)
	}
	path := filepath.Join(c.Server.Data, "millrace.db")
	if _, err := os.Stat(path); err != nil {
		return 0, nil // no database yet
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil || n == 0 {
		return 0, err
	}
	return v, db.QueryRowContext(ctx, q).Scan(&v)
}
