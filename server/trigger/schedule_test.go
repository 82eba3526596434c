package trigger

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func mustSchedule(t *testing.T, expr, zone string) schedule {
	t.Helper()
	sc, field, err := parseSchedule(expr, zone)
	require.NoError(t, err, field)
	return sc
}

func ticks(sc schedule, from time.Time, n int) []string {
	var out []string
	for range n {
		from = sc.next(from)
		out = append(out, from.UTC().Format(time.RFC3339))
	}
	return out
}

// A daily schedule stays at its wall time across a change of daylight
// saving time, so its UTC time moves.
func TestNextTickAcrossDST(t *testing.T) {
	t.Parallel()
	berlin := mustSchedule(t, "0 9 * * *", "Europe/Berlin")
	// Europe went to summer time on 2026-03-29 at 02:00 local.
	require.Equal(t, []string{"2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z", "2026-03-30T07:00:00Z"},
		ticks(berlin, time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC), 3))

	// New York goes back on 2026-11-01 at 02:00 EDT: 01:30 happens twice,
	// and a daily 01:30 fires once, at the first.
	ny := mustSchedule(t, "30 1 * * *", "America/New_York")
	require.Equal(t, []string{"2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"},
		ticks(ny, time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC), 3))

	// An hourly schedule follows real time through the repeated hour.
	hourly := mustSchedule(t, "@hourly", "America/New_York")
	require.Equal(t, []string{"2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"},
		ticks(hourly, time.Date(2026, 11, 1, 4, 30, 0, 0, time.UTC), 3))

	// 02:30 does not exist in New York on 2026-03-08: skipped that day.
	skipped := mustSchedule(t, "30 2 * * *", "America/New_York")
	require.Equal(t, []string{"2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z"},
		ticks(skipped, time.Date(2026, 3, 7, 0, 0, 0, 0, time.UTC), 2))

	// The zone matters: the same schedule in UTC.
	utc := mustSchedule(t, "0 9 * * *", "")
	require.Equal(t, []string{"2026-03-29T09:00:00Z"}, ticks(utc, time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC), 1))
}

func TestLatestMissedTick(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 10, 12, 34, 56, 0, time.UTC)
	for _, c := range []struct {
		expr  string
		first time.Time
		want  time.Time
	}{
		{"*/5 * * * *", time.Date(2026, 6, 10, 9, 0, 0, 0, time.UTC), time.Date(2026, 6, 10, 12, 30, 0, 0, time.UTC)},
		{"*/5 * * * *", time.Date(2025, 6, 10, 9, 0, 0, 0, time.UTC), time.Date(2026, 6, 10, 12, 30, 0, 0, time.UTC)},
		{"0 3 * * *", time.Date(2026, 6, 1, 3, 0, 0, 0, time.UTC), time.Date(2026, 6, 10, 3, 0, 0, 0, time.UTC)},
		{"0 0 1 1 *", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"0 12 * * *", time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC), time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)},
		// @every keeps the phase of its first tick.
		{"@every 1m", time.Date(2026, 6, 10, 12, 0, 7, 0, time.UTC), time.Date(2026, 6, 10, 12, 34, 7, 0, time.UTC)},
		{"@every 1s", time.Date(2016, 6, 10, 12, 0, 7, 0, time.UTC), now},
	} {
		sc := mustSchedule(t, c.expr, "UTC")
		got := sc.latest(c.first, now)
		require.True(t, c.want.Equal(got), "%s from %s: got %s, want %s", c.expr, c.first, got, c.want)
		require.True(t, sc.next(got).After(now), "%s: the next tick after the fired one is in the future", c.expr)
	}
}

func TestScheduleProblemsNameTheField(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ expr, zone, field, msg string }{
		{"61 * * * *", "", "cron.schedule", "not a cron schedule"},
		{"* * *", "", "cron.schedule", "not a cron schedule"},
		{"", "", "cron.schedule", "give a schedule"},
		{"@every 10ms", "", "cron.schedule", "at least 1s"},
		{"@every banana", "", "cron.schedule", "not a cron schedule"},
		{"TZ=Europe/Berlin 0 9 * * *", "", "cron.schedule", "cron.timezone"},
		{"TZ=", "", "cron.schedule", "cron.timezone"},
		{"0 0 30 2 *", "", "cron.schedule", "never fires"},
		{"0 9 * * *", "Mars/Olympus", "cron.timezone", "not a known IANA time zone"},
		{"0 9 * * *", "Local", "cron.timezone", "not Local"},
	} {
		_, field, err := parseSchedule(c.expr, c.zone)
		require.Error(t, err, c.expr)
		require.Equal(t, c.field, field, c.expr)
		require.Contains(t, err.Error(), c.msg, c.expr)
	}
	for _, ok := range []string{"0 9 * * 1-5", "@daily", "@every 90s", "*/15 8-18 * * MON-FRI"} {
		_, _, err := parseSchedule(ok, "Europe/Berlin")
		require.NoError(t, err, ok)
	}
}

// FuzzParseSchedule feeds arbitrary expressions and zones to the parser:
// it refuses or accepts, never panics, and an accepted schedule has a
// future tick.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"0 9 * * *", "@every 1s", "TZ=", "CRON_TZ=x", "@yearly", "*/0 * * * *", "1-70 * * * *"} {
		f.Add(s, "UTC")
	}
	f.Fuzz(func(t *testing.T, expr, zone string) {
		sc, _, err := parseSchedule(expr, zone)
		if err != nil {
			return
		}
		now := time.Now()
		if !sc.next(now).After(now) {
			t.Fatalf("%q in %q: next tick not in the future", expr, zone)
		}
	})
}
