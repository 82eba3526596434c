//go:build !wasip1

package millrace_test

import (
	"errors"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/abi"
	millrace "github.com/millrace/millrace/guest-sdk"
	"github.com/millrace/millrace/guest-sdk/millracetest"
)

func TestLoggerLevels(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Run(func() {
		log := millrace.Logger()
		log.Debug("d")
		log.Info("i")
		log.Warn("w")
		log.Error("e")
		log.Log(t.Context(), slog.LevelError+4, "e+4")
		log.Log(t.Context(), slog.LevelDebug-4, "d-4")
		log.Log(t.Context(), slog.LevelInfo+2, "i+2")
	})
	var got []string
	for _, r := range h.Logs {
		got = append(got, r.Level.String()+":"+r.Message)
		require.Nil(t, r.Attrs)
	}
	require.Equal(t, []string{"debug:d", "info:i", "warn:w", "error:e", "error:e+4", "debug:d-4", "info:i+2"}, got)
}

type stringer struct{}

func (stringer) String() string { return "stringer!" }

func TestLoggerAttrs(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Run(func() {
		log := millrace.Logger().With("mod", "x").WithGroup("req").With("id", 7)
		log.Info("hello",
			"method", "GET",
			slog.Group("user", "name", "ada", "admin", true),
			slog.Group("", "inlined", 1),
			slog.Group("empty"),
			"dur", 1500*time.Millisecond,
			"at", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			"err", errors.New("bad thing"),
			"nan", math.NaN(),
			"list", []string{"a", "b"},
			"str", stringer{},
			"id", 8, // a repeated key keeps its last value
		)
	})
	require.Len(t, h.Logs, 1)
	r := h.Logs[0]
	require.Equal(t, abi.LogInfo, r.Level)
	require.Equal(t, "hello", r.Message)
	require.Equal(t, map[string]any{
		"mod":            "x",
		"req.id":         float64(8),
		"req.method":     "GET",
		"req.user.name":  "ada",
		"req.user.admin": true,
		"req.inlined":    float64(1),
		"req.dur":        "1.5s",
		"req.at":         "2026-01-02T03:04:05Z",
		"req.err":        "bad thing",
		"req.nan":        "NaN",
		"req.list":       []any{"a", "b"},
		"req.str":        "stringer!",
	}, r.Attrs)
}

func TestLoggerRepairsInvalidUTF8(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Run(func() { millrace.Logger().Info("bad \xff byte", "k\xfe", "v\xfd") })
	require.Len(t, h.Logs, 1)
	require.Equal(t, "bad \uFFFD byte", h.Logs[0].Message)
	require.Equal(t, map[string]any{"k\uFFFD": "v\uFFFD"}, h.Logs[0].Attrs)
}

func TestLoggerWithDoesNotShareState(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Run(func() {
		base := millrace.Logger().With("a", 1)
		l1 := base.With("b", 2)
		l2 := base.With("c", 3)
		l1.Info("one", "x", 1)
		l2.Info("two")
		base.Info("base")
	})
	require.Equal(t, map[string]any{"a": 1.0, "b": 2.0, "x": 1.0}, h.Logs[0].Attrs)
	require.Equal(t, map[string]any{"a": 1.0, "c": 3.0}, h.Logs[1].Attrs)
	require.Equal(t, map[string]any{"a": 1.0}, h.Logs[2].Attrs)
}

func TestLoggerRedactsSecrets(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Secrets["TOKEN"] = "s3cret"
	h.Run(func() {
		v, err := millrace.Secret("TOKEN")
		require.NoError(t, err)
		millrace.Logger().Info("token is "+v, "token", v)
	})
	require.Equal(t, "token is [redacted]", h.Logs[0].Message)
	require.Equal(t, "[redacted]", h.Logs[0].Attrs["token"])
}
