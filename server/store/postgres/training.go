package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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
	// The version row stays locked (FOR KEY SHARE) until the job is
	// stored: a racing DeleteDatasetVersion, which locks it FOR UPDATE,
	// waits and then sees the job, or went first and this finds no row.
	return s.inTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT 1 FROM dataset_versions WHERE dataset_id = $1 AND version = $2 FOR KEY SHARE`, j.DatasetID, j.DatasetVersion).Scan(new(int))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("dataset %s version %d: %w", j.DatasetID, j.DatasetVersion, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		return insertTrainingJob(ctx, tx, j)
	})
}

func insertTrainingJob(ctx context.Context, tx pgx.Tx, j store.TrainingJob) error {
	_, err := tx.Exec(ctx, `INSERT INTO training_jobs (id, task, dataset_id, dataset_version, model_name, hyperparameters, state, error, events, result, output_dir, created_at, started_at, finished_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		j.ID, j.Task, j.DatasetID, j.DatasetVersion, j.ModelName, string(j.Hyperparameters), j.State, j.Error, string(j.Events), nullJSON(j.Result),
		j.OutputDir, j.CreatedAt.UTC(), nullTime(j.StartedAt), nullTime(j.FinishedAt))
	if isUniqueViolation(err) {
		return store.ErrConflict
	}
	return err
}

const trainingJobColumns = `id, task, dataset_id, dataset_version, model_name, hyperparameters, state, error, events, result, output_dir, created_at, started_at, finished_at`

func scanTrainingJob(row pgx.Row) (store.TrainingJob, error) {
	var j store.TrainingJob
	var hyper, events string
	var result *string
	if err := row.Scan(&j.ID, &j.Task, &j.DatasetID, &j.DatasetVersion, &j.ModelName, &hyper, &j.State, &j.Error, &events, &result,
		&j.OutputDir, &j.CreatedAt, &j.StartedAt, &j.FinishedAt); err != nil {
		return j, notFound(err)
	}
	j.Hyperparameters, j.Events, j.Result = []byte(hyper), []byte(events), jsonPtr(result)
	j.CreatedAt, j.StartedAt, j.FinishedAt = j.CreatedAt.UTC(), utcPtr(j.StartedAt), utcPtr(j.FinishedAt)
	return j, nil
}

// TrainingJob returns one job.
func (s *DB) TrainingJob(ctx context.Context, id string) (store.TrainingJob, error) {
	return scanTrainingJob(s.pool.QueryRow(ctx, `SELECT `+trainingJobColumns+` FROM training_jobs WHERE id = $1`, id))
}

// ListTrainingJobs lists jobs newest first.
func (s *DB) ListTrainingJobs(ctx context.Context, f store.TrainingJobFilter) ([]store.TrainingJob, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.DatasetID != "" {
		where = append(where, "dataset_id = "+arg(f.DatasetID))
		if f.DatasetVersion > 0 {
			where = append(where, "dataset_version = "+arg(f.DatasetVersion))
		}
	}
	if f.ModelName != "" {
		where = append(where, "model_name = "+arg(f.ModelName))
	}
	if f.Unfinished {
		where = append(where, "state IN ('queued', 'running')")
	}
	q := `SELECT ` + trainingJobColumns + ` FROM training_jobs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := s.pool.Query(ctx, q+` ORDER BY id DESC`, args...)
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
	tag, err := s.pool.Exec(ctx, `UPDATE training_jobs SET state = $1, error = $2, events = $3, result = $4, started_at = $5, finished_at = $6
		WHERE id = $7 AND state IN ('queued', 'running')`,
		j.State, j.Error, string(j.Events), nullJSON(j.Result), nullTime(j.StartedAt), nullTime(j.FinishedAt), j.ID)
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.TrainingJob(ctx, j.ID); err != nil {
			return false, err
		}
	}
	return tag.RowsAffected() == 1, nil
}

// CancelTrainingJob cancels a queued or running job.
func (s *DB) CancelTrainingJob(ctx context.Context, id string, at time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE training_jobs SET state = 'cancelled', finished_at = $1 WHERE id = $2 AND state IN ('queued', 'running')`, at.UTC(), id)
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.TrainingJob(ctx, id); err != nil {
			return false, err
		}
	}
	return tag.RowsAffected() == 1, nil
}

// DeleteTrainingJob removes a job's row.
func (s *DB) DeleteTrainingJob(ctx context.Context, id string) error {
	return expectOne(s.pool.Exec(ctx, `DELETE FROM training_jobs WHERE id = $1`, id))
}
