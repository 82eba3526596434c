package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/millrace/millrace/migrations"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// snapshotPostgres copies every table of the current schema (Millrace's
// and River's) in COPY text format, all in one REPEATABLE READ read-only
// transaction, so the tables agree with each other while the server
// keeps writing. COPY's text format round-trips every type exactly and
// does not depend on the server's major version, unlike the binary one;
// it needs no pg_dump on the machine.
func snapshotPostgres(ctx context.Context, pool *pgxpool.Pool, staging string, m *Manifest) ([]stagedFile, error) {
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&m.SchemaVersion); err != nil {
		return nil, fmt.Errorf("reading the schema version: %w", err)
	}
	if has, err := tableExists(ctx, tx, "river_migration"); err != nil {
		return nil, err
	} else if has {
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM river_migration WHERE line = 'main'`).Scan(&m.RiverVersion); err != nil {
			return nil, fmt.Errorf("reading River's schema version: %w", err)
		}
	}
	tables, err := loadOrder(ctx, tx)
	if err != nil {
		return nil, err
	}
	var files []stagedFile
	for _, t := range tables {
		p := filepath.Join(staging, t.Name+".copy")
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		bw := bufio.NewWriterSize(f, 1<<20)
		tag, err := tx.Conn().PgConn().CopyTo(ctx, bw, fmt.Sprintf(`COPY %s (%s) TO STDOUT`, ident(t.Name), identList(t.Columns)))
		err = errors.Join(err, bw.Flush(), f.Close())
		if err != nil {
			return nil, fmt.Errorf("copying table %s: %w", t.Name, err)
		}
		t.Rows = tag.RowsAffected()
		m.Tables = append(m.Tables, t)
		files = append(files, stagedFile{name: tablesDir + t.Name + ".copy", path: p, mode: 0o600})
	}
	rows, err := tx.Query(ctx, `SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema() ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		s := Sequence{Name: n}
		if err := tx.QueryRow(ctx, `SELECT last_value, is_called FROM `+ident(n)).Scan(&s.LastValue, &s.IsCalled); err != nil {
			return nil, fmt.Errorf("reading sequence %s: %w", n, err)
		}
		m.Sequences = append(m.Sequences, s)
	}
	return files, tx.Commit(ctx)
}

func tableExists(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, name string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = $1)`, name).Scan(&ok)
	return ok, err
}

// loadOrder lists the current schema's tables with their writable
// columns, each after the tables its foreign keys point to, so that
// loading them in this order never breaks a constraint.
func loadOrder(ctx context.Context, tx pgx.Tx) ([]Table, error) {
	rows, err := tx.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND is_generated = 'NEVER'
		  AND table_name IN (SELECT tablename FROM pg_tables WHERE schemaname = current_schema())
		ORDER BY table_name, ordinal_position`)
	if err != nil {
		return nil, err
	}
	cols := map[string][]string{}
	var names []string
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			return nil, err
		}
		if _, seen := cols[t]; !seen {
			names = append(names, t)
		}
		cols[t] = append(cols[t], c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c
		JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.contype = 'f' AND n.nspname = current_schema()`)
	if err != nil {
		return nil, err
	}
	deps := map[string][]string{}
	for rows.Next() {
		var from, to string
		if err := rows.Scan(&from, &to); err != nil {
			return nil, err
		}
		from, to = unquote(from), unquote(to)
		if from != to {
			deps[from] = append(deps[from], to)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []Table
	done, visiting := map[string]bool{}, map[string]bool{}
	var visit func(string) error
	visit = func(t string) error {
		if done[t] {
			return nil
		}
		if visiting[t] {
			return fmt.Errorf("tables %s form a cycle of foreign keys; a backup cannot order them", t)
		}
		visiting[t] = true
		for _, d := range deps[t] {
			if _, ok := cols[d]; ok {
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		done[t] = true
		out = append(out, Table{Name: t, Columns: cols[t]})
		return nil
	}
	for _, t := range names {
		if err := visit(t); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// unquote strips the schema and quotes regclass::text may add.
func unquote(s string) string {
	if i := strings.LastIndex(s, "."); i >= 0 && !strings.HasSuffix(s, `"`) {
		s = s[i+1:]
	}
	return strings.Trim(s, `"`)
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

func identList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = ident(c)
	}
	return strings.Join(q, ", ")
}

// loadPostgres recreates the schema the archive was taken at (Millrace's
// migrations, then River's) in the current schema of an empty database and
// loads every table, in one transaction: a failure leaves the database as
// empty as it was.
func loadPostgres(ctx context.Context, url string, staging string, m Manifest) (err error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return &Error{Msg: "connecting to the PostgreSQL database to restore into", Err: err}
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&n); err != nil {
		return &Error{Msg: "connecting to the PostgreSQL database to restore into", Err: err}
	}
	if n > 0 {
		return &Error{Msg: fmt.Sprintf("the PostgreSQL schema to restore into already has %d tables", n), Hint: "restore into an empty database (createdb millrace_restored) and point the server at it", Err: ErrNotEmpty}
	}
	// River's migrations must each run in a transaction of their own (one
	// adds an enum value and then uses it), so River's tables are made
	// first and dropped again if the load fails.
	if m.RiverVersion > 0 {
		migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
		if err != nil {
			return err
		}
		if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{TargetVersion: m.RiverVersion}); err != nil {
			return fmt.Errorf("creating River's tables at version %d: %w", m.RiverVersion, err)
		}
		defer func() {
			if err != nil {
				_, derr := migrator.Migrate(context.Background(), rivermigrate.DirectionDown, &rivermigrate.MigrateOpts{TargetVersion: -1})
				err = errors.Join(err, derr)
			}
		}()
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	all, err := migrations.For(DialectPostgres)
	if err != nil {
		return err
	}
	for _, mig := range all[:m.SchemaVersion] {
		if _, err := tx.Exec(ctx, mig.Up); err != nil {
			return fmt.Errorf("creating the schema (migration %03d_%s): %w", mig.Version, mig.Name, err)
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)`); err != nil {
		return err
	}
	// The migrations wrote their own bookkeeping rows; the archive's
	// replace them. Children go first.
	for _, t := range slices.Backward(m.Tables) {
		if _, err := tx.Exec(ctx, `DELETE FROM `+ident(t.Name)); err != nil {
			return fmt.Errorf("table %s of the backup does not exist in schema version %d: %w", t.Name, m.SchemaVersion, err)
		}
	}
	for _, t := range m.Tables {
		f, err := os.Open(filepath.Join(staging, filepath.FromSlash(tablesDir+t.Name+".copy")))
		if err != nil {
			return err
		}
		tag, err := tx.Conn().PgConn().CopyFrom(ctx, bufio.NewReaderSize(f, 1<<20), fmt.Sprintf(`COPY %s (%s) FROM STDIN`, ident(t.Name), identList(t.Columns)))
		f.Close()
		if err != nil {
			return fmt.Errorf("loading table %s: %w", t.Name, err)
		}
		if tag.RowsAffected() != t.Rows {
			return corrupt("table %s: loaded %d rows, the manifest says %d", t.Name, tag.RowsAffected(), t.Rows)
		}
	}
	for _, s := range m.Sequences {
		if _, err := tx.Exec(ctx, `SELECT setval($1::regclass, $2, $3)`, ident(s.Name), s.LastValue, s.IsCalled); err != nil {
			return fmt.Errorf("setting sequence %s: %w", s.Name, err)
		}
	}
	return tx.Commit(ctx)
}
