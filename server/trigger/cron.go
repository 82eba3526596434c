package trigger

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/millrace/millrace/server/store"
	"github.com/robfig/cron/v3"
)

// schedule is a parsed cron schedule in its time zone.
type schedule struct {
	sched cron.Schedule
	loc   *time.Location
}

// parseSchedule reads a cron expression (five fields or a descriptor) in
// the named IANA zone ("" means UTC).
func parseSchedule(expr, zone string) (sc schedule, field string, err error) {
	if zone == "" {
		zone = "UTC"
	}
	// "Local" would mean whatever zone the server happens to run in.
	if zone == "Local" {
		return sc, "cron.timezone", fmt.Errorf("name an IANA time zone such as Europe/Berlin or UTC, not Local")
	}
	if sc.loc, err = time.LoadLocation(zone); err != nil {
		return sc, "cron.timezone", fmt.Errorf("%q is not a known IANA time zone (such as Europe/Berlin or America/New_York)", zone)
	}
	expr = strings.TrimSpace(expr)
	if expr == "" {
		return sc, "cron.schedule", fmt.Errorf("give a schedule such as \"0 9 * * 1-5\" or \"@hourly\"")
	}
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return sc, "cron.schedule", fmt.Errorf("set the zone in cron.timezone, not in the schedule")
	}
	if d, ok := strings.CutPrefix(expr, "@every "); ok {
		// The library rounds shorter delays up to a second; say so
		// instead of silently running at another rate.
		if dur, err := time.ParseDuration(strings.TrimSpace(d)); err == nil && dur < time.Second {
			return sc, "cron.schedule", fmt.Errorf("@every needs at least 1s, got %s", dur)
		}
	}
	if sc.sched, err = parseCron(expr); err != nil {
		return sc, "cron.schedule", fmt.Errorf("%q is not a cron schedule: %v (use five fields: minute hour day-of-month month day-of-week, or @hourly, @daily, @every 10m …)", expr, err)
	}
	if sc.next(time.Now()).IsZero() {
		return sc, "cron.schedule", fmt.Errorf("%q never fires", expr)
	}
	return sc, "", nil
}

// parseCron is the library's parser, made safe for untrusted input: a
// panic in it becomes an error rather than a crashed request.
func parseCron(expr string) (s cron.Schedule, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("unparseable (%v)", p)
		}
	}()
	return cron.ParseStandard(expr)
}

func checkCron(c *CronConfig) (CronConfig, schedule, error) {
	if c == nil {
		return CronConfig{}, schedule{}, &InvalidError{"cron.schedule", "a cron trigger needs a schedule"}
	}
	sc, field, err := parseSchedule(c.Schedule, c.Timezone)
	if err != nil {
		return CronConfig{}, sc, &InvalidError{field, err.Error()}
	}
	return CronConfig{Schedule: strings.TrimSpace(c.Schedule), Timezone: sc.loc.String()}, sc, nil
}

// next returns the first tick after t, or the zero time if there is none
// within five years.
//
// Ticks are found in wall-clock time of the schedule's zone. Where clocks
// go back (a wall time happens twice), a schedule with a fixed hour fires
// once, at the first occurrence: a tick whose wall time is not later than
// the previous one's is skipped. Schedules that fire every hour ("0 * * *
// *", @hourly) follow real time there and fire in both hours. Where clocks
// go forward, a wall time that does not exist that day is skipped.
func (sc schedule) next(t time.Time) time.Time {
	t = t.In(sc.loc)
	n := sc.sched.Next(t)
	spec, ok := sc.sched.(*cron.SpecSchedule)
	if !ok || spec.Hour&allHours == allHours {
		return n
	}
	for !n.IsZero() && !wallAfter(n, t) {
		n = sc.sched.Next(n)
	}
	return n
}

const allHours = 1<<24 - 1

// wallAfter reports whether a's wall-clock reading is later than b's (both
// in the same zone).
func wallAfter(a, b time.Time) bool {
	naive := func(t time.Time) time.Time {
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	}
	return naive(a).After(naive(b))
}

// latest returns the last tick at or before now, given that first (not
// after now) is a tick. It is what a trigger fires when ticks were missed
// while no server ran: one run for the most recent one.
func (sc schedule) latest(first, now time.Time) time.Time {
	if d, ok := sc.sched.(cron.ConstantDelaySchedule); ok {
		// @every keeps its phase from the first tick.
		return first.Add(now.Sub(first) / d.Delay * d.Delay)
	}
	// Look back from now in growing windows for a tick, so that a server
	// down for a year does not walk a minutely schedule tick by tick.
	for w := time.Minute; ; w *= 4 {
		from := now.Add(-w)
		if !from.After(first) {
			return sc.walk(first, now)
		}
		if t := sc.next(from); !t.IsZero() && !t.After(now) {
			return sc.walk(t, now)
		}
	}
}

// walk steps from tick t to the last tick at or before now.
func (sc schedule) walk(t, now time.Time) time.Time {
	for {
		n := sc.next(t)
		if n.IsZero() || n.After(now) {
			return t
		}
		t = n
	}
}

// SchedulerConfig tunes a Scheduler.
type SchedulerConfig struct {
	// Every is how often due triggers are looked for; default 1 s, which
	// is also the finest schedule (@every 1s).
	Every time.Duration
	// Now is the clock; tests replace it. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Scheduler fires cron triggers. Ticks are kept in the store (each
// trigger's next_fire_at), so they survive restarts, and claimed with a
// compare-and-set, so that of several processes on one database exactly
// one fires each tick.
type Scheduler struct {
	svc *Service
	cfg SchedulerConfig

	mu        sync.Mutex
	cancel    context.CancelFunc
	done      chan struct{}
	lastPrune time.Time
}

// Deliveries are remembered this long for Idempotency-Key; a key sent
// again later starts a new run.
const deliveryRetention = 24 * time.Hour

// NewScheduler returns a scheduler for the service's cron triggers.
func NewScheduler(svc *Service, cfg SchedulerConfig) *Scheduler {
	if cfg.Every <= 0 {
		cfg.Every = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = svc.logger
	}
	return &Scheduler{svc: svc, cfg: cfg}
}

// Start fires the ticks missed while no scheduler ran (before it returns),
// then keeps firing ticks as they come until Stop.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancel != nil {
		return fmt.Errorf("the scheduler is already running")
	}
	ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	s.done = make(chan struct{})
	s.tick(ctx)
	go s.loop(ctx)
	return nil
}

// Stop stops the scheduler and waits for a tick in progress. It is safe
// before Start and more than once.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel = nil
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

func (s *Scheduler) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.tick(ctx)
		}
	}
}

// batch bounds the triggers handled per store query.
const batch = 100

// tick fires every trigger whose tick has come and returns how many runs
// it started. Start calls it once, then the loop every cfg.Every.
func (s *Scheduler) tick(ctx context.Context) int {
	now := s.cfg.Now()
	started := 0
	// More than one batch only when many triggers are due at once; the
	// bound keeps a store that fails to move a tick from spinning here.
	for range 20 {
		due, err := s.svc.store.DueCronTriggers(ctx, now, batch)
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.Logger.Warn("looking for due cron triggers", "err", err)
			}
			return started
		}
		for _, t := range due {
			if s.fire(ctx, t, now) {
				started++
			}
		}
		if len(due) < batch {
			break
		}
	}
	if now.Sub(s.lastPrune) > time.Hour {
		s.lastPrune = now
		if _, err := s.svc.store.PruneDeliveries(ctx, now.Add(-deliveryRetention)); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("forgetting old webhook deliveries", "err", err)
		}
	}
	return started
}

// fire claims a due trigger's tick and starts its run. Ticks missed while
// no scheduler ran coalesce into one run for the most recent of them.
// The claim comes first, so a tick fires at most once: if the process
// dies between claim and start, that tick is lost rather than doubled.
func (s *Scheduler) fire(ctx context.Context, t store.Trigger, now time.Time) bool {
	log := s.cfg.Logger.With("trigger", t.ID, "workflow", t.WorkflowID)
	expected := *t.NextFireAt
	var c CronConfig
	err := json.Unmarshal(t.Config, &c)
	var sc schedule
	if err == nil {
		sc, _, err = parseSchedule(c.Schedule, c.Timezone)
	}
	if err != nil {
		// Only a damaged row or a time zone this binary lacks gets here;
		// look again in an hour rather than every tick.
		log.Error("cron trigger cannot be scheduled", "err", err)
		s.svc.store.ClaimCronTick(ctx, t.ID, expected, now.Add(time.Hour))
		return false
	}
	tick := sc.latest(expected, now)
	next := sc.next(tick)
	if next.IsZero() {
		// No tick within five years (say, February 30th). Look again
		// in a day, in case the rules of the zone change.
		next = now.Add(24 * time.Hour)
	}
	won, err := s.svc.store.ClaimCronTick(ctx, t.ID, expected, next)
	if err != nil || !won {
		if err != nil && ctx.Err() == nil {
			log.Warn("claiming a cron tick", "err", err)
		}
		return false
	}
	if missed := tick.Sub(expected); missed > 0 {
		log.Info("cron ticks were missed while no server ran; firing once for the latest", "first_missed", expected, "firing", tick)
	}
	input := map[string]any{"scheduled_at": tick.In(sc.loc).Format(time.RFC3339), "trigger_id": t.ID}
	// The tick is claimed: a Stop arriving now must not lose its run.
	run, err := s.svc.startRun(context.WithoutCancel(ctx), t, input)
	if err != nil {
		log.Warn("cron trigger could not start a run", "scheduled_at", tick, "err", err)
		return false
	}
	log.Info("cron trigger started a run", "run", run.ID, "scheduled_at", tick)
	return true
}

// PreviewCron checks a cron configuration as creating a trigger would and
// returns its next n fire times after now, so an editor can show them
// before the trigger exists.
func PreviewCron(c CronConfig, now time.Time, n int) ([]time.Time, error) {
	_, sc, err := checkCron(&c)
	if err != nil {
		return nil, err
	}
	times := make([]time.Time, 0, n)
	for t := now; len(times) < n; {
		t = sc.next(t)
		if t.IsZero() {
			break
		}
		times = append(times, t)
	}
	return times, nil
}
