package sandbox_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/stretchr/testify/require"
)

// reactor compiles a test guest built as a reactor, once per engine and
// test binary.
func (e *testEngine) reactor(t *testing.T, name string) sandbox.Module {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	key := "reactor:" + name
	if m, ok := e.compiled[key]; ok {
		return m
	}
	m, err := e.engine.Compile(context.Background(), testguests.Reactor(t, name))
	require.NoError(t, err)
	e.compiled[key] = m
	return m
}

type counterOutput struct {
	Calls int      `json:"calls"`
	Seen  []string `json:"seen"`
}

// Every invocation of a reactor starts from the state _initialize left:
// a package counter reads 1 and a package slice holds only this
// invocation's input, however many invocations came before, one after
// another or side by side (which exercises both pooled instances and
// fresh ones).
func TestReactorStateDoesNotCarryOver(t *testing.T) {
	eachEngine(t, func(t *testing.T, eng *testEngine) { reactorStateDoesNotCarryOver(t, eng) })
}

func reactorStateDoesNotCarryOver(t *testing.T, eng *testEngine) {
	e := setup(t)
	m := eng.reactor(t, "counter")
	check := func(i int) error {
		secret := fmt.Sprintf("secret-%d", i)
		res := m.Invoke(context.Background(), e.inv(`{"secret":"`+secret+`"}`, sandbox.Grant{}))
		if res.Failure != nil {
			return res.Failure
		}
		var out counterOutput
		if err := json.Unmarshal(res.Output, &out); err != nil {
			return err
		}
		if out.Calls != 1 || len(out.Seen) != 1 || out.Seen[0] != secret {
			return fmt.Errorf("invocation %d saw state from another: %s", i, res.Output)
		}
		return nil
	}
	for i := range 50 {
		require.NoError(t, check(i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() { errs <- check(100 + i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// A reactor behaves like the same source built as a command.
func TestReactorMatchesCommand(t *testing.T) {
	eachEngine(t, func(t *testing.T, eng *testEngine) {
		e := setup(t)
		in := `{"a":[1,2,3],"b":"x"}`
		cmd := eng.run(t, "echo", e.inv(in, sandbox.Grant{}))
		requireOK(t, cmd)
		rea := eng.reactor(t, "echo").Invoke(context.Background(), e.inv(in, sandbox.Grant{}))
		requireOK(t, rea)
		require.JSONEq(t, string(cmd.Output), string(rea.Output))
		require.Equal(t, len(cmd.Logs), len(rea.Logs))
	})
}

// Hostile reactors are stopped like hostile commands, and a failed
// invocation never leaves a poisoned instance behind: the next one works.
func TestHostileReactorsAreStopped(t *testing.T) {
	eachEngine(t, hostileReactorsAreStopped)
}

func hostileReactorsAreStopped(t *testing.T, eng *testEngine) {
	e := setup(t)
	reactor := func(_ *testing.T, name string) sandbox.Module { return eng.reactor(t, name) }

	inv := e.inv(`{}`, sandbox.Grant{})
	inv.Limits.Timeout = 300 * time.Millisecond
	requireFailure(t, reactor(t, "loop").Invoke(context.Background(), inv), sandbox.FailTimeout, "timeout_ms (300 ms)")

	inv = e.inv(`{}`, sandbox.Grant{})
	inv.Limits.MemoryBytes = 64 << 20
	requireFailure(t, reactor(t, "membomb").Invoke(context.Background(), inv), sandbox.FailMemory, "memory_mb (64 MiB)")

	res := reactor(t, "panic").Invoke(context.Background(), e.inv(`{}`, sandbox.Grant{}))
	require.NotNil(t, res.Failure)
	require.Contains(t, res.Failure.Message, "boom")

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res = reactor(t, "loop").Invoke(ctx, e.inv(`{}`, sandbox.Grant{}))
	require.NotNil(t, res.Failure)
	require.Contains(t, []sandbox.FailureKind{sandbox.FailCanceled, sandbox.FailTimeout}, res.Failure.Kind)

	for range 3 {
		res := reactor(t, "counter").Invoke(context.Background(), e.inv(`{"secret":"after"}`, sandbox.Grant{}))
		requireOK(t, res)
		require.JSONEq(t, `{"calls":1,"seen":["after"]}`, string(res.Output))
	}
}

// A reactor whose initialisation never ends is stopped when the engine
// initialises it at upload, with a message that says so.
func TestEndlessInitializeIsStopped(t *testing.T) {
	t.Parallel()
	eng, err := sandbox.NewWazero(context.Background(), sandbox.WazeroConfig{InitTimeout: 300 * time.Millisecond})
	require.NoError(t, err)
	defer eng.Close(context.Background())
	_, err = eng.Compile(context.Background(), testguests.Reactor(t, "initloop"))
	require.ErrorContains(t, err, "_initialize")
	require.ErrorContains(t, err, "time limit")

	// Without snapshots, _initialize runs in every invocation, under the
	// invocation's own deadline.
	cold, err := sandbox.NewWazero(context.Background(), sandbox.WazeroConfig{NoSnapshot: true})
	require.NoError(t, err)
	defer cold.Close(context.Background())
	m, err := cold.Compile(context.Background(), testguests.Reactor(t, "initloop"))
	require.NoError(t, err)
	inv := setup(t).inv(`{}`, sandbox.Grant{})
	inv.Limits.Timeout = 300 * time.Millisecond
	requireFailure(t, m.Invoke(context.Background(), inv), sandbox.FailTimeout, "timeout_ms (300 ms)")
}
