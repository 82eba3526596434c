package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/millrace/millrace/server/store"
)

// CreateTrainingJob stores a new job.
func (s *DB) CreateTrainingJob(ctx context.Context, j store.TrainingJob) error {
	if j.CreatedAt.IsZero() {
		j.CreatedAt = time.Now()
	}
	if j.Events == nil {
		j.Events = []byte("[]")
	}
	// The version check and the insert are one (immediate, so
	// serialised) transaction: a racing DeleteDatasetVersion either ran
	// first or sees this job.
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM dataset_versions WHERE dataset_id = ? AND version = ?`, j.DatasetID, j.DatasetVersion).Scan(new(int)); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("dataset %s version %d: %w", j.DatasetID, j.DatasetVersion, store.ErrNotFound)
			}
			return err
		}
		return s.insertTrainingJob(ctx, tx, j)
	})
}

func (s *DB) insertTrainingJob(ctx context.Context, tx *sql.Tx, j store.TrainingJob) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO training_jobs (id, task, dataset_id, dataset_version, model_name, hyperparameters, state, error, events, result, output_dir, created_at, started_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.Task, j.DatasetID, j.DatasetVersion, j.ModelName, string(j.Hyperparameters), j.State, j.Error, string(j.Events), nullJSON(j.Result),
		j.OutputDir, nullTime(&j.CreatedAt), nullTime(j.StartedAt), nullTime(j.FinishedAt))
	if isUniqueViolation(err) {
		return store.ErrConflict
	}
	return err
}

const trainingJobColumns = `id, task, dataset_id, dataset_version, model_name, hyperparameters, state, error, events, result, output_dir, created_at, started_at, finished_at`

func scanTrainingJob(row interface{ Scan(...any) error }) (store.TrainingJob, error) {
	var j store.TrainingJob
	var hyper, events, created string
	var result, started, finished sql.NullString
	if err := row.Scan(&j.ID, &j.Task, &j.DatasetID, &j.DatasetVersion, &j.ModelName, &hyper, &j.State, &j.Error, &events, &result,
		&j.OutputDir, &created, &started, &finished); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return j, store.ErrNotFound
		}
		return j, err
	}
	j.Hyperparameters, j.Events, j.Result = []byte(hyper), []byte(events), jsonPtr(result)
	j.CreatedAt, j.StartedAt, j.FinishedAt = parseTime(created), timePtr(started), timePtr(finished)
	return j, nil
}

// TrainingJob returns one job.
func (s *DB) TrainingJob(ctx context.Context, id string) (store.TrainingJob, error) {
	return scanTrainingJob(s.db.QueryRowContext(ctx, `SELECT `+trainingJobColumns+` FROM training_jobs WHERE id = ?`, id))
}

// ListTrainingJobs lists jobs newest first.
func (s *DB) ListTrainingJobs(ctx context.Context, f store.TrainingJobFilter) ([]store.TrainingJob, error) {
	var where []string
	var args []any
	if f.DatasetID != "" {
		where, args = append(where, "dataset_id = ?"), append(args, f.DatasetID)
		if f.DatasetVersion > 0 {
			where, args = append(where, "dataset_version = ?"), append(args, f.DatasetVersion)
		}
	}
	if f.ModelName != "" {
		where, args = append(where, "model_name = ?"), append(args, f.ModelName)
	}
	if f.Unfinished {
		where = append(where, "state IN ('queued', 'running')")
	}
	q := `SELECT ` + trainingJobColumns + ` FROM training_jobs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY id DESC`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.TrainingJob
	for rows.Next() {
		j, err := scanTrainingJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// UpdateTrainingJob stores a job's progress unless it has finished.
func (s *DB) UpdateTrainingJob(ctx context.Context, j store.TrainingJob) (bool, error) {
	if j.Events == nil {
		j.Events = []byte("[]")
	}
	res, err := s.db.ExecContext(ctx, `UPDATE training_jobs SET state = ?, error = ?, events = ?, result = ?, started_at = ?, finished_at = ?
		WHERE id = ? AND state IN ('queued', 'running')`,
		j.State, j.Error, string(j.Events), nullJSON(j.Result), nullTime(j.StartedAt), nullTime(j.FinishedAt), j.ID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n == 0 {
		if _, err := s.TrainingJob(ctx, j.ID); err != nil {
			return false, err
		}
	}
	return n == 1, nil
}

// CancelTrainingJob cancels a queued or running job.
func (s *DB) CancelTrainingJob(ctx context.Context, id string, at time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE training_jobs SET state = 'cancelled', finished_at = ? WHERE id = ? AND state IN ('queued', 'running')`, nullTime(&at), id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n == 0 {
		if _, err := s.TrainingJob(ctx, id); err != nil {
			return false, err
		}
	}
	return n == 1, nil
}

// DeleteTrainingJob removes a job's row.
func (s *DB) DeleteTrainingJob(ctx context.Context, id string) error {
	return expectOne(s.db.ExecContext(ctx, `DELETE FROM training_jobs WHERE id = ?`, id))
}
