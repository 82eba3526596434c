package trigger

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPreviewCron(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC) // a Friday
	got, err := PreviewCron(CronConfig{Schedule: "0 9 * * 1-5", Timezone: "Europe/Berlin"}, now, 3)
	require.NoError(t, err)
	var s []string
	for _, g := range got {
		s = append(s, g.Format(time.RFC3339))
	}
	// Monday 30 March is after the switch to summer time.
	require.Equal(t, []string{"2026-03-30T09:00:00+02:00", "2026-03-31T09:00:00+02:00", "2026-04-01T09:00:00+02:00"}, s)

	_, err = PreviewCron(CronConfig{Schedule: "0 9 * *"}, now, 3)
	var inv *InvalidError
	require.ErrorAs(t, err, &inv)
	require.Equal(t, "cron.schedule", inv.Field)
}

// FuzzPreviewCron: any schedule and zone an editor sends is refused or
// previewed, never a panic, and the times it previews strictly increase.
func FuzzPreviewCron(f *testing.F) {
	for _, s := range []string{"0 9 * * 1-5", "@every 1s", "@hourly", "30 2 * * *", "0 0 29 2 *", "61 * * * *"} {
		f.Add(s, "Europe/Berlin", 5)
	}
	f.Fuzz(func(t *testing.T, expr, zone string, n int) {
		n = max(1, min(n, 20))
		now := time.Now()
		times, err := PreviewCron(CronConfig{Schedule: expr, Timezone: zone}, now, n)
		if err != nil {
			return
		}
		if len(times) == 0 || len(times) > n {
			t.Fatalf("%q in %q: %d times for %d asked", expr, zone, len(times), n)
		}
		prev := now
		for _, tm := range times {
			if !tm.After(prev) {
				t.Fatalf("%q in %q: %v is not after %v", expr, zone, tm, prev)
			}
			prev = tm
		}
	})
}
