package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/millrace/millrace/accel/trainjob"
)

// StartTraining starts training job id on millrace-accel, or resumes it
// from its checkpoint (spec.OutputDir) if the service does not know it;
// a job it already runs is left running. Bad hyperparameters are a 422.
func (c *Client) StartTraining(ctx context.Context, id string, spec trainjob.Spec) (*trainjob.Status, error) {
	var st trainjob.Status
	if err := c.getJSON(ctx, http.MethodPost, "/v2/training/jobs", trainjob.StartRequest{ID: id, Spec: spec}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// TrainingJob returns job id's status (404 when the service does not know
// it, as after a restart).
func (c *Client) TrainingJob(ctx context.Context, id string) (*trainjob.Status, error) {
	var st trainjob.Status
	if err := c.getJSON(ctx, http.MethodGet, "/v2/training/jobs/"+url.PathEscape(id), nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// WaitTraining long-polls job id: it answers once the job has more than
// after epochs or has ended, or after wait (at most 60s).
func (c *Client) WaitTraining(ctx context.Context, id string, after int, wait time.Duration) (*trainjob.Status, error) {
	var st trainjob.Status
	path := fmt.Sprintf("/v2/training/jobs/%s/events?after=%d&wait=%s", url.PathEscape(id), after, wait)
	if err := c.getJSON(ctx, http.MethodGet, path, nil, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// CancelTraining cancels job id; its checkpoint stays.
func (c *Client) CancelTraining(ctx context.Context, id string) error {
	return c.getJSON(ctx, http.MethodPost, "/v2/training/jobs/"+url.PathEscape(id)+"/cancel", nil, nil)
}
