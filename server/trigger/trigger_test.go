package trigger_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/server/engine"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/secrets"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/millrace/millrace/server/trigger"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testguests.Cleanup()
	os.Exit(code)
}

type fixture struct {
	db    *sqlite.DB
	wf    *engine.Workflows
	runs  *engine.Runs
	vault *secrets.Vault
	queue *engine.Queue
}

// setup makes a real store, sandbox, registry and engine with the echo
// module granted. With execute, the queue runs the runs; without, they
// stay queued, which is all a test of what starts them needs.
func setup(t testing.TB, execute bool) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	eng, err := sandbox.NewWazero(ctx, sandbox.WazeroConfig{CacheDir: filepath.Join(dir, "cache")})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close(context.Background()) })
	vault, err := secrets.New(make([]byte, 32), db)
	require.NoError(t, err)
	reg := registry.New(registry.Config{}, db, eng, vault)
	v, _, err := reg.Upload(ctx, testguests.Wasm(t, "echo"), testguests.Manifest(t, "echo"))
	require.NoError(t, err)
	_, err = reg.SetGrant(ctx, v.ModuleID, v.Version, sandbox.Grant{})
	require.NoError(t, err)

	events := engine.NewBus(1000)
	exec := engine.NewExecutor(db, reg)
	exec.Events = events
	queue, err := engine.NewQueue(ctx, riversqlite.New(db.SQL()), exec, engine.QueueConfig{})
	require.NoError(t, err)
	if execute {
		require.NoError(t, queue.Start(ctx))
		t.Cleanup(func() { queue.Stop(context.Background()) })
	}
	wf := engine.NewWorkflows(db, reg)
	return &fixture{db: db, wf: wf, runs: engine.NewRuns(db, wf, queue, events), vault: vault, queue: queue}
}

// publish saves and publishes a one-node workflow that echoes its input.
func (f *fixture) publish(t testing.TB, id string) {
	t.Helper()
	ctx := context.Background()
	d, err := engine.ParseDefinition([]byte(`{"name":"Echo","nodes":[{"id":"echo","module":"echo@1.0.0"}]}`))
	require.NoError(t, err)
	_, err = f.wf.SaveDraft(ctx, id, d)
	require.NoError(t, err)
	_, err = f.wf.Publish(ctx, id)
	require.NoError(t, err)
}

func (f *fixture) service(now func() time.Time) *trigger.Service {
	return trigger.New(f.db, f.runs, f.vault, trigger.Config{Now: now})
}

func (f *fixture) runsOf(t testing.TB, workflowID string) []store.Run {
	t.Helper()
	runs, err := f.db.ListRuns(context.Background(), store.RunFilter{WorkflowID: workflowID})
	require.NoError(t, err)
	return runs
}

func input(t *testing.T, r store.Run) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Input, &m))
	return m
}

// A cron trigger whose ticks were missed for hours (no server ran) fires
// once, for the latest missed tick, when a scheduler starts, and then
// waits for the next future tick.
func TestMissedCronTicksFireOnceOnStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, false)
	f.publish(t, "nightly")
	fiveHoursAgo := time.Now().Add(-5 * time.Hour)
	created, err := f.service(func() time.Time { return fiveHoursAgo }).Create(ctx, "nightly", trigger.Spec{Kind: trigger.KindCron, Cron: &trigger.CronConfig{Schedule: "@hourly"}})
	require.NoError(t, err)
	require.True(t, created.NextFireAt.Before(time.Now().Add(-3*time.Hour)), "the first tick is hours in the past")

	svc := f.service(nil)
	sched := trigger.NewScheduler(svc, trigger.SchedulerConfig{Every: time.Hour})
	hourBefore := time.Now().UTC().Truncate(time.Hour)
	require.NoError(t, sched.Start(ctx))
	sched.Stop()
	hourAfter := time.Now().UTC().Truncate(time.Hour)
	runs := f.runsOf(t, "nightly")
	require.Len(t, runs, 1, "missed ticks coalesce into one run")
	in := input(t, runs[0])
	require.Equal(t, created.ID, in["trigger_id"])
	at, err := time.Parse(time.RFC3339, in["scheduled_at"].(string))
	require.NoError(t, err)
	require.True(t, hourBefore.Equal(at) || hourAfter.Equal(at), "it fires for the latest missed tick: %s, want %s", at, hourAfter)
	latest := at
	require.Equal(t, "cron:"+created.ID, runs[0].Trigger)

	list, err := svc.List(ctx, "nightly")
	require.NoError(t, err)
	require.True(t, list[0].NextFireAt.Equal(latest.Add(time.Hour)), "then the next future tick: %s", list[0].NextFireAt)

	// A restart fires nothing more.
	again := trigger.NewScheduler(svc, trigger.SchedulerConfig{Every: time.Hour})
	require.NoError(t, again.Start(ctx))
	again.Stop()
	require.Len(t, f.runsOf(t, "nightly"), 1)
}

// Several schedulers on one database (several server processes) fire
// each tick once.
func TestSchedulersShareTicks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, false)
	f.publish(t, "shared")
	past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	for range 5 {
		_, err := f.service(past).Create(ctx, "shared", trigger.Spec{Kind: trigger.KindCron, Cron: &trigger.CronConfig{Schedule: "*/10 * * * *"}})
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	for range 4 {
		// Each scheduler has its own service, as each process would.
		s := trigger.NewScheduler(f.service(nil), trigger.SchedulerConfig{Every: time.Hour})
		wg.Go(func() {
			require.NoError(t, s.Start(ctx))
			s.Stop()
		})
	}
	wg.Wait()
	require.Len(t, f.runsOf(t, "shared"), 5, "one run per trigger")
}

// An "@every 1s" trigger keeps starting runs that execute with the tick
// as input.
func TestEverySecondStartsRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, true)
	f.publish(t, "ticker")
	svc := f.service(nil)
	created, err := svc.Create(ctx, "ticker", trigger.Spec{Kind: trigger.KindCron, Cron: &trigger.CronConfig{Schedule: "@every 1s", Timezone: "Europe/Berlin"}})
	require.NoError(t, err)
	require.Equal(t, "Europe/Berlin", created.Cron.Timezone)
	require.Empty(t, created.Secret)
	sched := trigger.NewScheduler(svc, trigger.SchedulerConfig{Every: 50 * time.Millisecond})
	require.NoError(t, sched.Start(ctx))
	t.Cleanup(sched.Stop)

	require.Eventually(t, func() bool {
		ok := 0
		for _, r := range f.runsOf(t, "ticker") {
			if r.Status == engine.StatusSucceeded {
				ok++
			}
		}
		return ok >= 2
	}, 20*time.Second, 50*time.Millisecond)
	sched.Stop()
	sched.Stop()
	runs := f.runsOf(t, "ticker")
	var out map[string]map[string]any
	for _, r := range runs {
		if r.Status == engine.StatusSucceeded {
			require.NoError(t, json.Unmarshal(r.Output, &out))
			require.Equal(t, created.ID, out["echo"]["trigger_id"], "the echo module returns the cron input")
			require.Contains(t, out["echo"]["scheduled_at"], "+0", "scheduled_at is in the trigger's zone")
		}
	}
	at := map[string]bool{}
	for _, r := range runs {
		at[input(t, r)["scheduled_at"].(string)] = true
	}
	require.Len(t, at, len(runs), "each tick fires once")
}

func TestSchedulerStopIsSafe(t *testing.T) {
	t.Parallel()
	f := setup(t, false)
	s := trigger.NewScheduler(f.service(nil), trigger.SchedulerConfig{})
	s.Stop()
	require.NoError(t, s.Start(context.Background()))
	require.Error(t, s.Start(context.Background()), "one start at a time")
	s.Stop()
	s.Stop()
	fo := trigger.NewFollower(f.service(nil))
	fo.Stop()
	require.NoError(t, fo.Start(context.Background()))
	fo.Stop()
	fo.Stop()
}

// A workflow_finished trigger starts its workflow with the finished
// run's result, for the statuses it follows.
func TestWorkflowFinishedStartsTheFollower(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, true)
	f.publish(t, "source")
	f.publish(t, "target")
	f.publish(t, "other")
	svc := f.service(nil)
	created, err := svc.Create(ctx, "target", trigger.Spec{Kind: trigger.KindWorkflowFinished, After: &trigger.AfterConfig{WorkflowID: "source"}})
	require.NoError(t, err)
	require.Equal(t, []string{"succeeded"}, created.After.Statuses, "succeeded by default")
	_, err = svc.Create(ctx, "other", trigger.Spec{Kind: trigger.KindWorkflowFinished, After: &trigger.AfterConfig{WorkflowID: "source", Statuses: []string{"failed"}}})
	require.NoError(t, err)

	// Loops are refused, naming the path.
	_, err = svc.Create(ctx, "source", trigger.Spec{Kind: trigger.KindWorkflowFinished, After: &trigger.AfterConfig{WorkflowID: "target"}})
	var inv *trigger.InvalidError
	require.ErrorAs(t, err, &inv)
	require.Equal(t, "after.workflow_id", inv.Field)
	require.Contains(t, inv.Msg, "target → source → target")
	_, err = svc.Create(ctx, "source", trigger.Spec{Kind: trigger.KindWorkflowFinished, After: &trigger.AfterConfig{WorkflowID: "source"}})
	require.ErrorAs(t, err, &inv)

	fo := trigger.NewFollower(svc)
	require.NoError(t, fo.Start(ctx))
	t.Cleanup(fo.Stop)
	src, err := f.runs.Start(ctx, "source", 0, json.RawMessage(`{"x":1}`), "manual")
	require.NoError(t, err)

	var follower store.Run
	require.Eventually(t, func() bool {
		runs := f.runsOf(t, "target")
		if len(runs) == 1 && runs[0].Status == engine.StatusSucceeded {
			follower = runs[0]
			return true
		}
		return false
	}, 30*time.Second, 20*time.Millisecond)
	in := input(t, follower)
	require.Equal(t, src.ID, in["run_id"])
	require.Equal(t, "source", in["workflow_id"])
	require.Equal(t, "succeeded", in["status"])
	require.Equal(t, map[string]any{"echo": map[string]any{"x": float64(1)}}, in["output"], "the source run's output")
	require.Equal(t, "workflow_finished:"+created.ID, follower.Trigger)
	require.Empty(t, f.runsOf(t, "other"), "a trigger following failures does not fire on success")

	// Deleting the followed workflow deletes the trigger.
	require.NoError(t, f.wf.Delete(ctx, "source"))
	list, err := svc.List(ctx, "target")
	require.NoError(t, err)
	require.Empty(t, list)
}

func TestCreateRefusesBadSpecs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, false)
	f.publish(t, "w")
	svc := f.service(nil)
	for _, c := range []struct {
		spec  trigger.Spec
		field string
		msg   string
	}{
		{trigger.Spec{Kind: "email"}, "kind", "not a kind"},
		{trigger.Spec{Kind: trigger.KindCron}, "cron.schedule", "needs a schedule"},
		{trigger.Spec{Kind: trigger.KindCron, Cron: &trigger.CronConfig{Schedule: "every day"}}, "cron.schedule", "not a cron schedule"},
		{trigger.Spec{Kind: trigger.KindCron, Cron: &trigger.CronConfig{Schedule: "@daily", Timezone: "Europe/Atlantis"}}, "cron.timezone", "not a known IANA time zone"},
		{trigger.Spec{Kind: trigger.KindCron, Cron: &trigger.CronConfig{Schedule: "@daily"}, Webhook: &trigger.WebhookConfig{}}, "webhook", "takes no webhook settings"},
		{trigger.Spec{Kind: trigger.KindWebhook, Webhook: &trigger.WebhookConfig{Mode: "later"}}, "webhook.mode", "not a mode"},
		{trigger.Spec{Kind: trigger.KindWebhook, Webhook: &trigger.WebhookConfig{Auth: "basic"}}, "webhook.auth", "not an auth mode"},
		{trigger.Spec{Kind: trigger.KindWebhook, Webhook: &trigger.WebhookConfig{TimeoutMS: 1000}}, "webhook.timeout_ms", "only a sync webhook"},
		{trigger.Spec{Kind: trigger.KindWebhook, Webhook: &trigger.WebhookConfig{Mode: "sync", TimeoutMS: 600_000}}, "webhook.timeout_ms", "outside"},
		{trigger.Spec{Kind: trigger.KindWorkflowFinished}, "after.workflow_id", "name the workflow"},
		{trigger.Spec{Kind: trigger.KindWorkflowFinished, After: &trigger.AfterConfig{WorkflowID: "ghost"}}, "after.workflow_id", `"ghost" does not exist`},
		{trigger.Spec{Kind: trigger.KindWorkflowFinished, After: &trigger.AfterConfig{WorkflowID: "w", Statuses: []string{"succeeded", "exploded"}}}, "after.statuses[1]", "not how a run ends"},
	} {
		_, err := svc.Create(ctx, "w", c.spec)
		var inv *trigger.InvalidError
		require.ErrorAs(t, err, &inv, "%+v", c.spec)
		require.Equal(t, c.field, inv.Field)
		require.Contains(t, inv.Msg, c.msg)
	}
	_, err := svc.Create(ctx, "ghost", trigger.Spec{Kind: trigger.KindWebhook})
	var nf *engine.NotFoundError
	require.ErrorAs(t, err, &nf)
	require.ErrorAs(t, svc.Delete(ctx, "trg_0000000000000000"), &nf)

	hook, err := svc.Create(ctx, "w", trigger.Spec{Kind: trigger.KindWebhook, Webhook: &trigger.WebhookConfig{Mode: "sync"}})
	require.NoError(t, err)
	require.Equal(t, 30000, hook.Webhook.TimeoutMS, "sync waits 30 s by default")
	require.Equal(t, "/hooks/"+hook.ID, hook.Path)
	require.Regexp(t, `^whsec_[0-9a-f]{64}$`, hook.Secret)
	stored, err := f.db.Trigger(ctx, hook.ID)
	require.NoError(t, err)
	require.NotContains(t, string(stored.Secret), hook.Secret, "the secret is stored sealed")
	list, err := svc.List(ctx, "w")
	require.NoError(t, err)
	require.Len(t, list, 1)
	b, _ := json.Marshal(list)
	require.NotContains(t, string(b), hook.Secret[6:], "listing never shows the secret")
}
