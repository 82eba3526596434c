// Package trigger starts workflow runs on events other than a manual
// request: a webhook call (webhook.go), a cron schedule (cron.go), or the
// end of another workflow's run (follow.go). Triggers are kept in the
// store; webhook secrets are sealed with the vault.
package trigger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/millrace/millrace/server/tracing"
	"go.opentelemetry.io/otel/trace"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/secrets"
	"github.com/millrace/millrace/server/store"
)

// Kinds of trigger.
const (
	KindWebhook          = "webhook"
	KindCron             = "cron"
	KindWorkflowFinished = "workflow_finished"
)

// Webhook settings.
const (
	ModeAsync = "async" // answer 202 with the run id at once
	ModeSync  = "sync"  // wait for the run and answer with its output

	AuthSecret = "secret" // the secret in X-Millrace-Secret
	AuthHMAC   = "hmac"   // an HMAC-SHA256 signature of timestamp and body

	DefaultSyncTimeout = 30 * time.Second
	MaxSyncTimeout     = 5 * time.Minute
)

// Spec is a trigger as a user asks for it: its kind and that kind's
// settings (the others stay empty).
type Spec struct {
	Kind    string         `json:"kind" enum:"webhook,cron,workflow_finished" doc:"What starts the runs: a call of the trigger's webhook URL, a cron schedule, or the end of another workflow's run."`
	Webhook *WebhookConfig `json:"webhook,omitempty" doc:"Settings of a webhook trigger; optional."`
	Cron    *CronConfig    `json:"cron,omitempty" doc:"Settings of a cron trigger; required for that kind."`
	After   *AfterConfig   `json:"after,omitempty" doc:"Settings of a workflow_finished trigger; required for that kind."`
}

// WebhookConfig says how a webhook answers and how callers prove they
// may call it.
type WebhookConfig struct {
	Mode      string `json:"mode,omitempty" enum:"async,sync" doc:"async (default) answers 202 with the run id at once; sync waits for the run and answers with its output."`
	Auth      string `json:"auth,omitempty" enum:"secret,hmac" doc:"secret (default): send the secret in X-Millrace-Secret. hmac: send X-Millrace-Timestamp (Unix seconds) and X-Millrace-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + \".\" + body)>."`
	TimeoutMS int    `json:"timeout_ms,omitempty" minimum:"0" maximum:"300000" doc:"sync only: how long to wait for the run before answering 202 with its id; default 30000."`
}

// CronConfig is a schedule and the time zone it is read in.
type CronConfig struct {
	Schedule string `json:"schedule" doc:"Five fields (minute hour day-of-month month day-of-week), or @hourly, @daily, @weekly, @monthly, @yearly, @every <duration> (at least 1s)."`
	Timezone string `json:"timezone,omitempty" doc:"An IANA time zone such as Europe/Berlin; default UTC."`
}

// AfterConfig follows another workflow: when one of its runs ends in one
// of the statuses, the trigger's workflow runs with that run's result.
type AfterConfig struct {
	WorkflowID string   `json:"workflow_id" doc:"The workflow whose runs are followed."`
	Statuses   []string `json:"statuses,omitempty" doc:"Which endings start a run: any of succeeded, failed, canceled; default [succeeded]."`
}

// Trigger is a trigger as the API shows it. It never holds the webhook
// secret.
type Trigger struct {
	ID         string         `json:"id"`
	WorkflowID string         `json:"workflow_id"`
	Kind       string         `json:"kind" enum:"webhook,cron,workflow_finished"`
	Webhook    *WebhookConfig `json:"webhook,omitempty"`
	Cron       *CronConfig    `json:"cron,omitempty"`
	After      *AfterConfig   `json:"after,omitempty"`
	Path       string         `json:"path,omitempty" doc:"Webhook: where to POST, relative to the server's address."`
	NextFireAt *time.Time     `json:"next_fire_at,omitempty" doc:"Cron: the next tick."`
	CreatedAt  time.Time      `json:"created_at"`
}

// Created is a new trigger with its webhook secret, which is shown only
// this once.
type Created struct {
	Trigger
	Secret string `json:"secret,omitempty" doc:"Webhook: the secret callers send or sign with. It is shown only this once."`
}

// InvalidError says which field of a Spec is wrong and why.
type InvalidError struct {
	Field string // e.g. "cron.timezone"
	Msg   string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Msg }

// Config tunes a Service.
type Config struct {
	// Now is the clock; tests replace it. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Tracer, if set, gives each run a trigger starts a span: the root of
	// the run's trace. nil records none.
	Tracer trace.Tracer
}

// Service creates, lists and deletes triggers, and answers webhook calls.
type Service struct {
	store  store.Store
	runs   *engine.Runs
	vault  *secrets.Vault
	now    func() time.Time
	logger *slog.Logger
	tracer trace.Tracer
}

// New returns the trigger service. Runs start through runs; webhook
// secrets are sealed with vault.
func New(s store.Store, runs *engine.Runs, vault *secrets.Vault, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{store: s, runs: runs, vault: vault, now: cfg.Now, logger: cfg.Logger, tracer: cfg.Tracer}
}

// newID returns "trg_" and 16 hex digits: 64 random bits, which is also
// what keeps webhook URLs from being guessed (the secret protects them).
func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "trg_" + hex.EncodeToString(b)
}

// newSecret returns a webhook secret: 32 random bytes, as text so that it
// can be sent as a header and used as an HMAC key unchanged.
func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return "whsec_" + hex.EncodeToString(b)
}

// secretAD binds a sealed webhook secret to its trigger, and keeps it
// apart from named secrets, which cannot contain ':'.
func secretAD(triggerID string) string { return secrets.TriggerAD(triggerID) }

// Create validates a spec and stores a trigger that starts workflowID.
// A webhook's secret is in the answer and nowhere else.
func (s *Service) Create(ctx context.Context, workflowID string, spec Spec) (*Created, error) {
	if _, err := s.store.Workflow(ctx, workflowID); err != nil {
		return nil, notFound(err, fmt.Sprintf("workflow %q", workflowID))
	}
	t := store.Trigger{ID: newID(), WorkflowID: workflowID, Kind: spec.Kind, CreatedAt: s.now()}
	var config any
	var secret string
	switch spec.Kind {
	case KindWebhook:
		if err := only(spec, "webhook"); err != nil {
			return nil, err
		}
		c, err := checkWebhook(spec.Webhook)
		if err != nil {
			return nil, err
		}
		secret = newSecret()
		if t.Secret, err = s.vault.Seal(secretAD(t.ID), []byte(secret)); err != nil {
			return nil, err
		}
		config = c
	case KindCron:
		if err := only(spec, "cron"); err != nil {
			return nil, err
		}
		c, sched, err := checkCron(spec.Cron)
		if err != nil {
			return nil, err
		}
		next := sched.next(s.now())
		t.NextFireAt = &next
		config = c
	case KindWorkflowFinished:
		if err := only(spec, "after"); err != nil {
			return nil, err
		}
		c, err := s.checkAfter(ctx, workflowID, spec.After)
		if err != nil {
			return nil, err
		}
		t.SourceWorkflowID = c.WorkflowID
		config = c
	default:
		return nil, &InvalidError{"kind", fmt.Sprintf("%q is not a kind of trigger: use webhook, cron or workflow_finished", spec.Kind)}
	}
	var err error
	if t.Config, err = json.Marshal(config); err != nil {
		return nil, err
	}
	if err := s.store.CreateTrigger(ctx, t); err != nil {
		// The workflow was deleted since we looked.
		return nil, notFound(err, fmt.Sprintf("workflow %q", workflowID))
	}
	v, err := view(t)
	if err != nil {
		return nil, err
	}
	return &Created{Trigger: *v, Secret: secret}, nil
}

// only refuses the settings of kinds other than the one named, so that a
// mistaken kind does not silently ignore what the user wrote.
func only(spec Spec, want string) error {
	for name, set := range map[string]bool{"webhook": spec.Webhook != nil, "cron": spec.Cron != nil, "after": spec.After != nil} {
		if set && name != want {
			return &InvalidError{name, fmt.Sprintf("a %s trigger takes no %s settings", spec.Kind, name)}
		}
	}
	return nil
}

func checkWebhook(c *WebhookConfig) (WebhookConfig, error) {
	out := WebhookConfig{Mode: ModeAsync, Auth: AuthSecret}
	if c == nil {
		return out, nil
	}
	switch c.Mode {
	case "", ModeAsync:
	case ModeSync:
		out.Mode = ModeSync
	default:
		return out, &InvalidError{"webhook.mode", fmt.Sprintf("%q is not a mode: use async or sync", c.Mode)}
	}
	switch c.Auth {
	case "", AuthSecret:
	case AuthHMAC:
		out.Auth = AuthHMAC
	default:
		return out, &InvalidError{"webhook.auth", fmt.Sprintf("%q is not an auth mode: use secret or hmac", c.Auth)}
	}
	switch {
	case c.TimeoutMS < 0 || time.Duration(c.TimeoutMS)*time.Millisecond > MaxSyncTimeout:
		return out, &InvalidError{"webhook.timeout_ms", fmt.Sprintf("%d is outside 0 to %d", c.TimeoutMS, MaxSyncTimeout.Milliseconds())}
	case c.TimeoutMS > 0 && out.Mode != ModeSync:
		return out, &InvalidError{"webhook.timeout_ms", "only a sync webhook waits for its run: set mode to sync or drop timeout_ms"}
	case out.Mode == ModeSync:
		out.TimeoutMS = c.TimeoutMS
		if out.TimeoutMS == 0 {
			out.TimeoutMS = int(DefaultSyncTimeout.Milliseconds())
		}
	}
	return out, nil
}

// Statuses a workflow_finished trigger may follow.
var followable = []string{engine.StatusSucceeded, engine.StatusFailed, engine.StatusCanceled}

func (s *Service) checkAfter(ctx context.Context, target string, c *AfterConfig) (AfterConfig, error) {
	if c == nil || c.WorkflowID == "" {
		return AfterConfig{}, &InvalidError{"after.workflow_id", "name the workflow whose runs this trigger follows"}
	}
	out := AfterConfig{WorkflowID: c.WorkflowID}
	for i, st := range c.Statuses {
		if !slices.Contains(followable, st) {
			return out, &InvalidError{fmt.Sprintf("after.statuses[%d]", i), fmt.Sprintf("%q is not how a run ends: use succeeded, failed or canceled", st)}
		}
		if !slices.Contains(out.Statuses, st) {
			out.Statuses = append(out.Statuses, st)
		}
	}
	if len(out.Statuses) == 0 {
		out.Statuses = []string{engine.StatusSucceeded}
	}
	if _, err := s.store.Workflow(ctx, c.WorkflowID); errors.Is(err, store.ErrNotFound) {
		return out, &InvalidError{"after.workflow_id", fmt.Sprintf("workflow %q does not exist", c.WorkflowID)}
	} else if err != nil {
		return out, err
	}
	if path, err := s.cycle(ctx, c.WorkflowID, target); err != nil {
		return out, err
	} else if path != nil {
		return out, &InvalidError{"after.workflow_id", fmt.Sprintf("following %q would make workflows start each other forever: %s", c.WorkflowID, strings.Join(path, " → "))}
	}
	return out, nil
}

// cycle reports the path by which a trigger from source to target would
// close a loop of workflow_finished triggers (target already leads back to
// source), or nil.
func (s *Service) cycle(ctx context.Context, source, target string) ([]string, error) {
	// Breadth-first from target along "a run of X starts Y" edges.
	prev := map[string]string{target: ""}
	queue := []string{target}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == source {
			path := []string{source}
			for at := cur; at != target; {
				at = prev[at]
				path = append(path, at)
			}
			slices.Reverse(path)
			return append([]string{source}, path...), nil
		}
		next, err := s.store.ListTriggers(ctx, store.TriggerFilter{Kind: KindWorkflowFinished, SourceWorkflowID: cur})
		if err != nil {
			return nil, err
		}
		for _, t := range next {
			if _, seen := prev[t.WorkflowID]; !seen {
				prev[t.WorkflowID] = cur
				queue = append(queue, t.WorkflowID)
			}
		}
	}
	return nil, nil
}

// List returns the triggers of a workflow, oldest first, without secrets.
func (s *Service) List(ctx context.Context, workflowID string) ([]*Trigger, error) {
	if _, err := s.store.Workflow(ctx, workflowID); err != nil {
		return nil, notFound(err, fmt.Sprintf("workflow %q", workflowID))
	}
	all, err := s.store.ListTriggers(ctx, store.TriggerFilter{WorkflowID: workflowID})
	if err != nil {
		return nil, err
	}
	out := make([]*Trigger, 0, len(all))
	for _, t := range all {
		v, err := view(t)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Delete removes a trigger. A webhook stops answering at once; a cron
// tick already claimed still starts its run.
func (s *Service) Delete(ctx context.Context, id string) error {
	return notFound(s.store.DeleteTrigger(ctx, id), fmt.Sprintf("trigger %q", id))
}

// notFound turns the store's ErrNotFound into the engine's NotFoundError,
// which the API answers with 404 naming what is missing.
func notFound(err error, what string) error {
	if errors.Is(err, store.ErrNotFound) {
		return &engine.NotFoundError{What: what}
	}
	return err
}

// view decodes a stored trigger for the API.
func view(t store.Trigger) (*Trigger, error) {
	v := &Trigger{ID: t.ID, WorkflowID: t.WorkflowID, Kind: t.Kind, NextFireAt: t.NextFireAt, CreatedAt: t.CreatedAt}
	var target any
	switch t.Kind {
	case KindWebhook:
		v.Webhook = &WebhookConfig{}
		target, v.Path = v.Webhook, "/hooks/"+t.ID
	case KindCron:
		v.Cron = &CronConfig{}
		target = v.Cron
	case KindWorkflowFinished:
		v.After = &AfterConfig{}
		target = v.After
	default:
		return nil, fmt.Errorf("trigger %s has unknown kind %q", t.ID, t.Kind)
	}
	if err := json.Unmarshal(t.Config, target); err != nil {
		return nil, fmt.Errorf("stored config of trigger %s is malformed: %w", t.ID, err)
	}
	return v, nil
}

// startRun starts the latest published version of a trigger's workflow.
// The run's trigger field names the trigger, so a run can be traced back.
func (s *Service) startRun(ctx context.Context, t store.Trigger, input any) (*engine.RunView, error) {
	return s.startWith(ctx, t, input, s.runs.Start)
}

// startRunNow starts a run like startRun for a caller that waits for it
// (see engine.Runs.StartNow).
func (s *Service) startRunNow(ctx context.Context, t store.Trigger, input any) (*engine.RunView, error) {
	return s.startWith(ctx, t, input, s.runs.StartNow)
}

func (s *Service) startWith(ctx context.Context, t store.Trigger, input any,
	start func(ctx context.Context, workflowID string, version int, input json.RawMessage, trigger string) (*engine.RunView, error)) (*engine.RunView, error) {
	raw, err := json.Marshal(input)
	if err != nil {
		return nil, err
	}
	if s.tracer == nil {
		return start(ctx, t.WorkflowID, 0, raw, t.Kind+":"+t.ID)
	}
	// A new root, also for a webhook call that carries a traceparent: a
	// caller on the internet must not decide what this server samples.
	ctx, span := s.tracer.Start(ctx, "trigger "+t.Kind, trace.WithNewRoot(), trace.WithAttributes(tracing.AttrTrigger.String(t.Kind),
		tracing.AttrTriggerID.String(t.ID), tracing.AttrWorkflowID.String(t.WorkflowID)))
	run, err := start(ctx, t.WorkflowID, 0, raw, t.Kind+":"+t.ID)
	if run != nil {
		span.SetAttributes(tracing.AttrRunID.String(run.ID))
	}
	tracing.End(span, err)
	return run, err
}
