package engine_test

import (
	"strings"
	"testing"

	"github.com/millrace/millrace/server/engine"
	"github.com/stretchr/testify/require"
)

func TestCheckExpression(t *testing.T) {
	t.Parallel()
	require.NoError(t, engine.CheckExpression(false, `nodes.fetch.output.items.map(i, i.name)`))
	require.NoError(t, engine.CheckExpression(true, `port == "default" && output.ok`))
	err := engine.CheckExpression(false, `output.ok`)
	require.ErrorContains(t, err, "undeclared reference to 'output'", "output exists only on edges")
	require.ErrorContains(t, engine.CheckExpression(false, `input.a +`), "Syntax error")
	require.ErrorContains(t, engine.CheckExpression(false, strings.Repeat("a", engine.MaxExpressionBytes+1)), "limit")
}

// FuzzCheckExpression: the editor sends whatever the user typed; checking
// it answers or refuses, never panics.
func FuzzCheckExpression(f *testing.F) {
	for _, s := range []string{`input.name + "!"`, `nodes.?a.output.orValue(0)`, `[1,2].map(x, x*2)`, `((((`, `"\u0000"`, `output.ok`} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, src string, edge bool) {
		_ = engine.CheckExpression(edge, src)
	})
}
