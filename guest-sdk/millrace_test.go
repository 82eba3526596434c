//go:build !wasip1

package millrace_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/abi"
	millrace "github.com/millrace/millrace/guest-sdk"
	"github.com/millrace/millrace/guest-sdk/millracetest"
)

type greetIn struct {
	Name  string `json:"name"`
	Times int    `json:"times"`
}

type greetOut struct {
	Greeting string `json:"greeting"`
}

func greet(_ context.Context, in greetIn) (greetOut, error) {
	if in.Name == "" {
		return greetOut{}, errors.New("name is required")
	}
	return greetOut{Greeting: "hello " + in.Name}, nil
}

func TestHandleRoundTrip(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	out, err := millracetest.Call(h, greet, greetIn{Name: "ada"})
	require.NoError(t, err)
	require.Equal(t, greetOut{Greeting: "hello ada"}, out)
	require.JSONEq(t, `{"greeting":"hello ada"}`, string(h.Output))
	require.False(t, h.Failed)
}

func TestHandleHandlerError(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	_, err := millracetest.Call(h, greet, greetIn{})
	require.EqualError(t, err, "name is required")
	require.True(t, h.Failed)
	require.Nil(t, h.Output)
}

func TestHandleInputDecodeError(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Input = []byte(`{"name": 42}`)
	h.Run(func() { millrace.Handle(greet) })
	require.True(t, h.Failed)
	require.Regexp(t, `^input: .*name`, h.Error)
}

func TestHandleNullInput(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Run(func() {
		millrace.Handle(func(_ context.Context, in *greetIn) (bool, error) { return in == nil, nil })
	})
	require.False(t, h.Failed, h.Error)
	require.Equal(t, "true", string(h.Output))
}

func TestHandleUnencodableOutput(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	_, err := millracetest.Call(h, func(context.Context, struct{}) (any, error) {
		return func() {}, nil
	}, struct{}{})
	require.ErrorContains(t, err, "output: ")
}

func TestHandlePanicIsAFailure(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	_, err := millracetest.Call(h, func(context.Context, struct{}) (struct{}, error) {
		panic("boom")
	}, struct{}{})
	require.EqualError(t, err, "panic: boom")
	require.NotEmpty(t, h.Logs)
	require.Equal(t, "stderr", h.Logs[len(h.Logs)-1].Source)
}

func TestConfig(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.SetConfig(map[string]any{"greeting": "hi"})
	out, err := millracetest.Call(h, func(context.Context, struct{}) (string, error) {
		var cfg struct {
			Greeting string `json:"greeting"`
		}
		err := millrace.Config(&cfg)
		return cfg.Greeting, err
	}, struct{}{})
	require.NoError(t, err)
	require.Equal(t, "hi", out)

	h.Config = []byte(`{"greeting": []}`)
	_, err = millracetest.Call(h, func(context.Context, struct{}) (string, error) {
		var cfg struct {
			Greeting string `json:"greeting"`
		}
		return "", millrace.Config(&cfg)
	}, struct{}{})
	require.ErrorContains(t, err, "config: ")
}

func TestConfigDefaultsToEmptyObject(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	out, err := millracetest.Call(h, func(context.Context, struct{}) (map[string]any, error) {
		var cfg map[string]any
		err := millrace.Config(&cfg)
		return cfg, err
	}, struct{}{})
	require.NoError(t, err)
	require.Equal(t, map[string]any{}, out)
}

func TestWriteOutput(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	var errBad error
	h.Run(func() {
		require.NoError(t, millrace.WriteOutput([]byte(`{"a":1}`)))
		errBad = millrace.WriteOutput([]byte(`{"a":`))
	})
	require.ErrorIs(t, errBad, abi.ErrnoInvalidArgument)
	require.EqualError(t, errBad, "output_set: invalid_argument")
	require.JSONEq(t, `{"a":1}`, string(h.Output))
}

func TestProgress(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Run(func() {
		millrace.Progress(1, 3, "one")
		millrace.Progress(-1, 1<<40, "")
	})
	require.Equal(t, []millracetest.ProgressReport{
		{Done: 1, Total: 3, Message: "one"},
		{Done: 0, Total: 1<<32 - 1},
	}, h.Progress)
}

func TestRunResetsResultsButKeepsKV(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Run(func() {
		millrace.Logger().Info("first")
		require.NoError(t, millrace.KVSet("k", []byte("v")))
		require.NoError(t, millrace.WriteOutput([]byte(`1`)))
	})
	h.Run(func() {})
	require.Empty(t, h.Logs)
	require.Nil(t, h.Output)
	require.Equal(t, []byte("v"), h.KV["k"])
}

func TestHostErrorsUnwrapToErrno(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Grants = &abi.Capabilities{}
	h.Run(func() {
		_, _, err := millrace.KVGet("k")
		require.ErrorIs(t, err, abi.ErrnoDenied)
		var errno abi.Errno
		require.ErrorAs(t, err, &errno)
		require.Equal(t, abi.ErrnoDenied, errno)
		require.Equal(t, "kv_get: denied", err.Error())
	})
}

func ExampleHandle() {
	type in struct {
		Name string `json:"name"`
	}
	type out struct {
		Greeting string `json:"greeting"`
	}
	// In a module this is the whole of main.
	run := func() {
		millrace.Handle(func(ctx context.Context, in in) (out, error) {
			millrace.Logger().Info("greeting", "name", in.Name)
			return out{Greeting: "hello " + in.Name}, nil
		})
	}

	h := millracetest.NewHost()
	h.Input = []byte(`{"name":"ada"}`)
	h.Run(run)
	var o out
	_ = json.Unmarshal(h.Output, &o)
	fmt.Println(o.Greeting, h.Logs[0].Attrs["name"])
	// Output: hello ada ada
}

// A module registers its handler from init, before any test installs a
// fake host; Host.Run then runs it, as the real host would.
func TestHandleFromInitRunsUnderTheFakeHost(t *testing.T) {
	t.Cleanup(millrace.ForgetHandler)
	millrace.Handle(func(_ context.Context, in struct{ N int }) (int, error) { return in.N * 2, nil })
	h := millracetest.NewHost()
	h.Input = []byte(`{"N":21}`)
	h.Run(func() {}) // the module's main, empty in a reactor
	require.False(t, h.Failed, h.Error)
	require.JSONEq(t, `42`, string(h.Output))
}
