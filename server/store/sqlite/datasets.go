package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/millrace/millrace/server/store"
)

// CreateDatasetVersion stores a version, creating its dataset if needed,
// in one transaction.
func (s *DB) CreateDatasetVersion(ctx context.Context, d store.Dataset, v store.DatasetVersion) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		ts := now()
		// Only a first version creates its dataset: a later one was
		// numbered from a dataset read before, which may have been
		// deleted since, and must not come back (the foreign key).
		if v.Version == 1 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO datasets (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING`, d.ID, d.Name, ts); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO dataset_versions (dataset_id, version, rows, meta, created_at) VALUES (?, ?, ?, ?, ?)`,
			v.DatasetID, v.Version, v.Rows, string(v.Meta), ts)
		if isUniqueViolation(err) {
			return fmt.Errorf("dataset %s version %d: %w", v.DatasetID, v.Version, store.ErrConflict)
		}
		if isForeignKeyViolation(err) {
			return fmt.Errorf("dataset %s: %w", v.DatasetID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE datasets SET next_version = MAX(next_version, ?) WHERE id = ?`, v.Version+1, v.DatasetID)
		return err
	})
}

const datasetQuery = `SELECT d.id, d.name, COALESCE((SELECT MAX(version) FROM dataset_versions v WHERE v.dataset_id = d.id), 0), d.next_version, d.created_at FROM datasets d`

func scanDataset(row interface{ Scan(...any) error }) (store.Dataset, error) {
	var d store.Dataset
	var created string
	if err := row.Scan(&d.ID, &d.Name, &d.LatestVersion, &d.NextVersion, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return d, store.ErrNotFound
		}
		return d, err
	}
	d.CreatedAt = parseTime(created)
	return d, nil
}

// Dataset returns one dataset with its latest version number.
func (s *DB) Dataset(ctx context.Context, id string) (store.Dataset, error) {
	return scanDataset(s.db.QueryRowContext(ctx, datasetQuery+` WHERE d.id = ?`, id))
}

// ListDatasets lists datasets by id.
func (s *DB) ListDatasets(ctx context.Context) ([]store.Dataset, error) {
	rows, err := s.db.QueryContext(ctx, datasetQuery+` ORDER BY d.id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Dataset
	for rows.Next() {
		d, err := scanDataset(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeleteDataset removes a dataset; its versions go with it (ON DELETE
// CASCADE).
func (s *DB) DeleteDataset(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := refuseUsed(ctx, tx, `dataset_id = ?`, id); err != nil {
			return err
		}
		return expectOne(tx.ExecContext(ctx, `DELETE FROM datasets WHERE id = ?`, id))
	})
}

// refuseUsed returns ErrConflict when a training job matches where. In
// the deleting transaction, so that a job created meanwhile (the check
// and the insert of CreateTrainingJob are one transaction too) is seen.
func refuseUsed(ctx context.Context, tx *sql.Tx, where string, args ...any) error {
	var used bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM training_jobs WHERE `+where+`)`, args...).Scan(&used); err != nil {
		return err
	}
	if used {
		return fmt.Errorf("used by a training job: %w", store.ErrConflict)
	}
	return nil
}

const datasetVersionColumns = `dataset_id, version, rows, meta, created_at`

func scanDatasetVersion(row interface{ Scan(...any) error }) (store.DatasetVersion, error) {
	var v store.DatasetVersion
	var meta, created string
	if err := row.Scan(&v.DatasetID, &v.Version, &v.Rows, &meta, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return v, store.ErrNotFound
		}
		return v, err
	}
	v.Meta, v.CreatedAt = []byte(meta), parseTime(created)
	return v, nil
}

// DatasetVersion returns one version of a dataset.
func (s *DB) DatasetVersion(ctx context.Context, id string, version int) (store.DatasetVersion, error) {
	return scanDatasetVersion(s.db.QueryRowContext(ctx, `SELECT `+datasetVersionColumns+` FROM dataset_versions WHERE dataset_id = ? AND version = ?`, id, version))
}

// ListDatasetVersions lists a dataset's versions, oldest first.
func (s *DB) ListDatasetVersions(ctx context.Context, id string) ([]store.DatasetVersion, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+datasetVersionColumns+` FROM dataset_versions WHERE dataset_id = ? ORDER BY version`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.DatasetVersion
	for rows.Next() {
		v, err := scanDatasetVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// DeleteDatasetVersion removes one version of a dataset.
func (s *DB) DeleteDatasetVersion(ctx context.Context, id string, version int) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := refuseUsed(ctx, tx, `dataset_id = ? AND dataset_version = ?`, id, version); err != nil {
			return err
		}
		return expectOne(tx.ExecContext(ctx, `DELETE FROM dataset_versions WHERE dataset_id = ? AND version = ?`, id, version))
	})
}
