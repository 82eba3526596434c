package postgres

import (
	"context"

	"github.com/millrace/millrace/server/store"
)

// PutModel registers a model or replaces its registration. One statement,
// so concurrent registrations of one name cannot both insert; xmax is 0
// only on a row this statement inserted.
func (s *DB) PutModel(ctx context.Context, m store.Model) (bool, error) {
	ts := now()
	var created bool
	err := s.pool.QueryRow(ctx, `INSERT INTO models (name, path, description, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)
		ON CONFLICT (name) DO UPDATE SET path = excluded.path, description = excluded.description, version = excluded.version, updated_at = excluded.updated_at
		RETURNING xmax = 0`, m.Name, m.Path, m.Description, m.Version, ts).Scan(&created)
	return created, err
}

const modelColumns = `name, path, description, version, created_at, updated_at`

func scanModel(row interface{ Scan(...any) error }) (store.Model, error) {
	var m store.Model
	if err := row.Scan(&m.Name, &m.Path, &m.Description, &m.Version, &m.CreatedAt, &m.UpdatedAt); err != nil {
		return m, notFound(err)
	}
	m.CreatedAt, m.UpdatedAt = m.CreatedAt.UTC(), m.UpdatedAt.UTC()
	return m, nil
}

// Model returns one registered model.
func (s *DB) Model(ctx context.Context, name string) (store.Model, error) {
	return scanModel(s.pool.QueryRow(ctx, `SELECT `+modelColumns+` FROM models WHERE name = $1`, name))
}

// ListModels lists registered models by name.
func (s *DB) ListModels(ctx context.Context) ([]store.Model, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+modelColumns+` FROM models ORDER BY name`)
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
	return expectOne(s.pool.Exec(ctx, `DELETE FROM models WHERE name = $1`, name))
}
