package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/sse"

	"github.com/millrace/millrace/accel/trainjob"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/training"
)

type TrainingJobPath struct {
	ID string `path:"id" maxLength:"64" doc:"The job's id (tj_ and 12 hex digits)."`
}

type createTrainingJobInput struct {
	Body training.TrainingJobRequest
}

type trainingJobOutput struct {
	Body *training.TrainingJob
}

type listTrainingJobsOutput struct {
	Body struct {
		Jobs []*training.TrainingJob `json:"jobs"`
	}
}

type trainingEventsInput struct {
	TrainingJobPath
	LastEventID int `header:"Last-Event-ID" doc:"Resume after this epoch: the stream sends the epochs after it."`
}

// TrainingEvent is one message of a training job's event stream.
type TrainingEvent struct {
	Type  string `json:"type" enum:"epoch,finished,keepalive,error" doc:"epoch: an epoch finished (its figures in epoch); finished: the job ended (state, error, result); the stream then ends."`
	JobID string `json:"job_id,omitempty"`
	// Epoch is set on epoch events; the message id is its number.
	Epoch  *trainjob.Epoch     `json:"epoch,omitempty"`
	State  string              `json:"state,omitempty"`
	Error  string              `json:"error,omitempty"`
	Result *trainjob.JobResult `json:"result,omitempty"`
	Time   time.Time           `json:"time"`
}

// trainingProblem maps the manager's errors; the rest go to problem.
func trainingProblem(ctx context.Context, err error) error {
	var te *training.Error
	if errors.As(err, &te) {
		if te.Field == "" {
			return huma.NewError(te.Status, te.Msg)
		}
		return huma.NewError(te.Status, te.Error(), &huma.ErrorDetail{Location: te.Field, Message: te.Msg})
	}
	return problem(ctx, err)
}

func noTraining() error {
	return huma.Error503ServiceUnavailable("training is off: it needs the local accelerator (millrace-accel; see GET /v1/accel)")
}

func registerTraining(api huma.API, d *Deps) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "create-training-job", Method: http.MethodPost, Path: "/v1/training-jobs", Tags: []string{"training"},
		Summary: "Start a training job",
		Description: "Trains a model on a dataset version in the accelerator service (GoMLX, CPU) and, on success, registers it in the model registry " +
			"under model_name, with the job as its version. The job survives a restart of the server or of the accelerator: it resumes from the last epoch's checkpoint. " +
			"Follow it with GET /v1/training-jobs/{id}/events.",
		DefaultStatus: http.StatusCreated,
		Errors:        []int{http.StatusUnprocessableEntity, http.StatusConflict, http.StatusServiceUnavailable},
	}, auth.ScopeTrainingWrite), func(ctx context.Context, in *createTrainingJobInput) (*trainingJobOutput, error) {
		if d.Training == nil {
			return nil, noTraining()
		}
		j, err := d.Training.Create(ctx, in.Body)
		if err != nil {
			return nil, trainingProblem(ctx, err)
		}
		return &trainingJobOutput{Body: j}, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "list-training-jobs", Method: http.MethodGet, Path: "/v1/training-jobs", Tags: []string{"training"},
		Summary: "List training jobs, newest first",
	}, auth.ScopeTrainingRead), func(ctx context.Context, _ *struct{}) (*listTrainingJobsOutput, error) {
		out := &listTrainingJobsOutput{}
		out.Body.Jobs = []*training.TrainingJob{}
		if d.Training == nil {
			return out, nil
		}
		jobs, err := d.Training.List(ctx)
		if err != nil {
			return nil, trainingProblem(ctx, err)
		}
		out.Body.Jobs = jobs
		return out, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "get-training-job", Method: http.MethodGet, Path: "/v1/training-jobs/{id}", Tags: []string{"training"},
		Summary: "Get a training job with its epochs so far",
		Errors:  []int{http.StatusNotFound},
	}, auth.ScopeTrainingRead), func(ctx context.Context, in *TrainingJobPath) (*trainingJobOutput, error) {
		if d.Training == nil {
			return nil, noTraining()
		}
		j, err := d.Training.Get(ctx, in.ID)
		if err != nil {
			return nil, trainingProblem(ctx, err)
		}
		return &trainingJobOutput{Body: j}, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "cancel-training-job", Method: http.MethodPost, Path: "/v1/training-jobs/{id}/cancel", Tags: []string{"training"},
		Summary: "Cancel a queued or running training job",
		Errors:  []int{http.StatusNotFound, http.StatusConflict},
	}, auth.ScopeTrainingWrite), func(ctx context.Context, in *TrainingJobPath) (*trainingJobOutput, error) {
		if d.Training == nil {
			return nil, noTraining()
		}
		j, err := d.Training.Cancel(ctx, in.ID)
		if err != nil {
			return nil, trainingProblem(ctx, err)
		}
		return &trainingJobOutput{Body: j}, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "delete-training-job", Method: http.MethodDelete, Path: "/v1/training-jobs/{id}", Tags: []string{"training"},
		Summary:     "Delete a finished training job and its files",
		Description: "409 while it runs (cancel it first) or while a registered model uses its files (delete the model first).",
		Errors:      []int{http.StatusNotFound, http.StatusConflict}, DefaultStatus: http.StatusNoContent,
	}, auth.ScopeTrainingWrite), func(ctx context.Context, in *TrainingJobPath) (*struct{}, error) {
		if d.Training == nil {
			return nil, noTraining()
		}
		return nil, trainingProblem(ctx, d.Training.Delete(ctx, in.ID))
	})
	sse.Register(api, secured(huma.Operation{
		OperationID: "training-job-events", Method: http.MethodGet, Path: "/v1/training-jobs/{id}/events", Tags: []string{"training"},
		Summary: "Live progress of a training job (Server-Sent Events)",
		Description: "One epoch message per finished epoch (training loss, validation accuracy, examples per second; the message id is the epoch), " +
			"then a finished message; the stream then ends. Epochs are stored, so reconnecting with Last-Event-ID sends exactly what was missed, even after a restart.",
	}, auth.ScopeTrainingRead), map[string]any{"message": TrainingEvent{}}, func(ctx context.Context, in *trainingEventsInput, send sse.Sender) {
		if d.Training == nil {
			send.Data(TrainingEvent{Type: "error", JobID: in.ID, Error: "training is off", Time: time.Now().UTC()})
			return
		}
		streamTraining(ctx, d.Training, in.ID, in.LastEventID, send)
	})
}

// streamTraining sends the job's epochs after sent, as they are stored,
// then its end.
func streamTraining(ctx context.Context, m *training.Manager, id string, sent int, send sse.Sender) {
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		changed := m.Watch() // before reading, so no change is missed
		j, err := m.Get(ctx, id)
		if err != nil {
			send.Data(TrainingEvent{Type: "error", JobID: id, Error: err.Error(), Time: time.Now().UTC()})
			return
		}
		for i := range j.Epochs {
			ev := j.Epochs[i]
			if ev.Epoch <= sent {
				continue
			}
			if send(sse.Message{ID: ev.Epoch, Data: TrainingEvent{Type: "epoch", JobID: id, Epoch: &ev, State: j.State, Time: ev.Time}}) != nil {
				return
			}
			sent = ev.Epoch
		}
		if trainjob.Terminal(j.State) {
			send.Data(TrainingEvent{Type: "finished", JobID: id, State: j.State, Error: j.Error, Result: j.Result, Time: time.Now().UTC()})
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-keepAlive.C:
			if send.Data(TrainingEvent{Type: "keepalive", Time: time.Now().UTC()}) != nil {
				return
			}
		}
	}
}
