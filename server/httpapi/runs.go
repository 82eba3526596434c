package httpapi

import (
	"context"
	"mime"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/sse"
	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/store"
)

// RunIDPath names a run.
type RunIDPath struct {
	ID string `path:"id" pattern:"^run_[0-9a-f]{21}$" doc:"Run id."`
}

type listRunsInput struct {
	Workflow string `query:"workflow" doc:"Only runs of this workflow."`
	Status   string `query:"status" enum:"queued,running,succeeded,failed,canceled," doc:"Only runs in this status."`
	Cursor   string `query:"cursor" doc:"The next_cursor of the previous page."`
	Limit    int    `query:"limit" minimum:"0" maximum:"500" doc:"Page size; default 50."`
}

type listRunsOutput struct {
	Body struct {
		Runs       []engine.RunSummary `json:"runs"`
		NextCursor string              `json:"next_cursor,omitempty" doc:"Pass as cursor for the next page; absent on the last page."`
	}
}

type rerunInput struct {
	RunIDPath
	Body struct {
		From string `json:"from,omitempty" doc:"Run this node and everything downstream of it again, reusing the stored outputs of the rest; absent means the whole workflow."`
	}
}

// EventsInput resumes an event stream. (Exported: huma fills fields of
// embedded structs only when they are exported.)
type EventsInput struct {
	LastEventID int64 `header:"Last-Event-ID" doc:"Resume after this event id."`
}

type runEventsInput struct {
	RunIDPath
	EventsInput
}

// ArtifactPath names an artifact of a run.
type ArtifactPath struct {
	RunIDPath
	ArtifactID string `path:"artifact_id" pattern:"^art_[0-9a-f]{32}$" doc:"Artifact id, as the run view lists it."`
}

type artifactOutput struct {
	ContentType        string `header:"Content-Type"`
	ContentLength      int64  `header:"Content-Length"`
	ContentDisposition string `header:"Content-Disposition"`
	ETag               string `header:"ETag" doc:"The SHA-256 of the bytes, quoted."`
	// The bytes are what a module wrote: never let a browser guess
	// they are something to render.
	NoSniff string `header:"X-Content-Type-Options"`
	Body    []byte
}

func registerRuns(api huma.API, d *Deps) {
	huma.Register(api, secured(huma.Operation{
		OperationID: "list-runs", Method: http.MethodGet, Path: "/v1/runs", Tags: []string{"runs"},
		Summary: "List runs, newest first, with filters and cursor pagination",
	}, auth.ScopeWorkflowsRead), func(ctx context.Context, in *listRunsInput) (*listRunsOutput, error) {
		runs, next, err := d.Runs.List(ctx, store.RunFilter{WorkflowID: in.Workflow, Status: in.Status, Before: in.Cursor, Limit: in.Limit})
		if err != nil {
			return nil, problem(ctx, err)
		}
		out := &listRunsOutput{}
		out.Body.Runs, out.Body.NextCursor = runs, next
		return out, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "cancel-run", Method: http.MethodPost, Path: "/v1/runs/{id}/cancel", Tags: []string{"runs"},
		Summary: "Cancel a queued or running run", Errors: []int{http.StatusNotFound, http.StatusConflict},
	}, auth.ScopeWorkflowsRun), func(ctx context.Context, in *RunIDPath) (*runOutput, error) {
		run, err := d.Runs.Cancel(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &runOutput{Body: run}, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "retry-run", Method: http.MethodPost, Path: "/v1/runs/{id}/retry", Tags: []string{"runs"},
		Summary:     "Retry a failed or canceled run from its failed nodes",
		Description: "The run resumes in place: failed and canceled nodes run again, succeeded nodes keep their results.",
		Errors:      []int{http.StatusNotFound, http.StatusConflict}, DefaultStatus: http.StatusAccepted,
	}, auth.ScopeWorkflowsRun), func(ctx context.Context, in *RunIDPath) (*runOutput, error) {
		run, err := d.Runs.Retry(ctx, in.ID)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &runOutput{Body: run}, nil
	})
	huma.Register(api, secured(huma.Operation{
		OperationID: "rerun-run", Method: http.MethodPost, Path: "/v1/runs/{id}/rerun", Tags: []string{"runs"},
		Summary: "Start a new run from any node, reusing the stored upstream outputs",
		Errors:  []int{http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity}, DefaultStatus: http.StatusAccepted,
	}, auth.ScopeWorkflowsRun), func(ctx context.Context, in *rerunInput) (*runOutput, error) {
		run, err := d.Runs.Rerun(ctx, in.ID, in.Body.From)
		if err != nil {
			return nil, problem(ctx, err)
		}
		return &runOutput{Body: run}, nil
	})

	huma.Register(api, secured(huma.Operation{
		OperationID: "get-run-artifact", Method: http.MethodGet, Path: "/v1/runs/{id}/artifacts/{artifact_id}", Tags: []string{"runs"},
		Summary:     "Download an artifact of a run",
		Description: "The raw bytes of a value too large to show inline in the run view (a node's output or input, or the run's output), which lists each node's artifacts with their size and SHA-256.",
		Errors:      []int{http.StatusNotFound},
		// The body is the stored bytes, not a JSON document about them
		// (huma would describe []byte as base64 in JSON).
		Responses: map[string]*huma.Response{"200": {
			Description: "The bytes as stored. A node's or the run's value is a JSON document, exactly as the module wrote it.",
			Content: map[string]*huma.MediaType{
				"application/json":         {Schema: &huma.Schema{Description: "A JSON value."}},
				"application/octet-stream": {Schema: &huma.Schema{Type: "string", Format: "binary"}},
			},
		}},
	}, auth.ScopeWorkflowsRead), func(ctx context.Context, in *ArtifactPath) (*artifactOutput, error) {
		a, err := d.Runs.Artifact(ctx, in.ID, in.ArtifactID)
		if err != nil {
			return nil, problem(ctx, err)
		}
		name := a.RunID + "-" + a.Name
		if a.NodeID != "" {
			name = a.RunID + "-" + a.NodeID + "-" + a.Name
		}
		if a.ContentType == "application/json" {
			name += ".json"
		}
		return &artifactOutput{ContentType: a.ContentType, ContentLength: int64(len(a.Data)), ETag: `"` + a.SHA256 + `"`, NoSniff: "nosniff",
			ContentDisposition: mime.FormatMediaType("attachment", map[string]string{"filename": name}), Body: a.Data}, nil
	})

	events := map[string]any{"message": engine.Event{}}
	sse.Register(api, secured(huma.Operation{
		OperationID: "run-events", Method: http.MethodGet, Path: "/v1/runs/{id}/events", Tags: []string{"runs"},
		Summary:     "Live events of one run (Server-Sent Events)",
		Description: "Node started/finished/progress and run started/finished events; the stream ends after run.finished. Reconnect with Last-Event-ID to receive what was missed (events are kept in memory, the last 10,000).",
	}, auth.ScopeWorkflowsRead), events, func(ctx context.Context, in *runEventsInput, send sse.Sender) {
		// Subscribe before reading the run: an end that comes after the
		// read is then in the backlog or on the channel, never lost.
		ch, backlog, stop := d.Runs.Events().Subscribe(in.LastEventID, func(e engine.Event) bool { return e.RunID == in.ID })
		defer stop()
		run, err := d.Runs.Get(ctx, in.ID)
		if err != nil {
			send.Data(engine.Event{Type: "error", RunID: in.ID, Status: "not_found", Time: time.Now().UTC()})
			return
		}
		finished := run.Status == engine.StatusSucceeded || run.Status == engine.StatusFailed || run.Status == engine.StatusCanceled
		// A run retried after it finished has an earlier run.finished in
		// the backlog: that attempt's end, not the run's. The stream ends
		// only at the last one, and only if the run is finished now.
		last := -1
		for i, e := range backlog {
			if e.Type == "run.finished" {
				last = i
			}
		}
		for i, e := range backlog {
			if e.Type == "run.finished" && (i < last || !finished) {
				continue
			}
			if send(sse.Message{ID: int(e.ID), Data: e}) != nil || e.Type == "run.finished" {
				return
			}
		}
		if finished {
			send.Data(engine.Event{Type: "run.finished", RunID: run.ID, Status: run.Status, Time: time.Now().UTC()})
			return
		}
		streamEvents(ctx, ch, send, true)
	})
	sse.Register(api, secured(huma.Operation{
		OperationID: "all-events", Method: http.MethodGet, Path: "/v1/events", Tags: []string{"runs"},
		Summary: "Live events of every run (Server-Sent Events)", Description: "Resumable with Last-Event-ID.",
	}, auth.ScopeWorkflowsRead), events, func(ctx context.Context, in *EventsInput, send sse.Sender) {
		ch, backlog, stop := d.Runs.Events().Subscribe(in.LastEventID, func(engine.Event) bool { return true })
		defer stop()
		for _, e := range backlog {
			if send(sse.Message{ID: int(e.ID), Data: e}) != nil {
				return
			}
		}
		streamEvents(ctx, ch, send, false)
	})
}

// streamEvents forwards events until the client goes away (or, for one
// run, until it finishes). A comment line every 15 s keeps proxies from
// closing an idle stream.
func streamEvents(ctx context.Context, ch <-chan engine.Event, send sse.Sender, untilFinished bool) {
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-ch:
			if send(sse.Message{ID: int(e.ID), Data: e}) != nil {
				return
			}
			if untilFinished && e.Type == "run.finished" {
				return
			}
		case <-keepAlive.C:
			if send(sse.Message{Data: engine.Event{Type: "keepalive", Time: time.Now().UTC()}}) != nil {
				return
			}
		}
	}
}
