package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/millrace/millrace/server/store"
)

// PutModel registers a model or replaces its registration. SQLite runs
// one writer at a time, so the read and the write cannot interleave with
// another PutModel.
func (s *DB) PutModel(ctx context.Context, m store.Model) (bool, error) {
	created := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		ts := now()
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM models WHERE name = ?`, m.Name).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			_, err = tx.ExecContext(ctx, `INSERT INTO models (name, path, description, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
				m.Name, m.Path, m.Description, m.Version, ts, ts)
			return err
		case err != nil:
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE models SET path = ?, description = ?, version = ?, updated_at = ? WHERE name = ?`,
			m.Path, m.Description, m.Version, ts, m.Name)
		return err
	})
	return created, err
}

const modelColumns = `name, path, description, version, created_at, updated_at`

func scanModel(row interface{ Scan(...any) error }) (store.Model, error) {
	var m store.Model
	var created, updated string
	if err := row.Scan(&m.Name, &m.Path, &m.Description, &m.Version, &created, &updated); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return m, store.ErrNotFound
		}
		return m, err
	}
	m.CreatedAt, m.UpdatedAt = parseTime(created), parseTime(updated)
	return m, nil
}

// Model returns one registered model.
func (s *DB) Model(ctx context.Context, name string) (store.Model, error) {
	return scanModel(s.db.QueryRowContext(ctx, `SELECT `+modelColumns+` FROM models WHERE name = ?`, name))
}

// ListModels lists registered models by name.
func (s *DB) ListModels(ctx context.Context) ([]store.Model, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+modelColumns+` FROM models ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Model
	for rows.Next() {
		m, err := scanModel(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// DeleteModel removes a model's registration.
func (s *DB) DeleteModel(ctx context.Context, name string) error {
	return expectOne(s.db.ExecContext(ctx, `DELETE FROM models WHERE name = ?`, name))
}
