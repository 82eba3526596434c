//go:build !wasip1

package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/guest-sdk/millracetest"
	"github.com/millrace/millrace/modules/internal/moduletest"
)

func TestManifest(t *testing.T) {
	t.Parallel()
	m := moduletest.Manifest(t)
	require.Equal(t, abi.Capabilities{}, m.Capabilities)
}

const order = `{
	"id": 7,
	"customer": {"name": "Ada", "vip": true},
	"items": [
		{"sku": "a", "qty": 2, "price": 1.5},
		{"sku": "b", "qty": 1, "price": 10}
	],
	"note": null
}`

// transformJSON runs the module with config cfg on the input document and
// returns the output as JSON text.
func transformJSON(t *testing.T, cfg any, in string) (string, error) {
	t.Helper()
	h := millracetest.NewHost()
	h.SetConfig(cfg)
	out, err := millracetest.Call(h, run, json.RawMessage(in))
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(out)
	require.NoError(t, err)
	return string(b), nil
}

func TestExpression(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ expr, want string }{
		{`input`, order},
		{`input.id + 1`, `8`},
		{`input.items.map(i, i.sku)`, `["a","b"]`},
		{`input.items.map(i, double(i.qty) * double(i.price))`, `[3.0,10]`},
		{`input.items.filter(i, i.price > 5).size()`, `1`},
		{`{"name": input.customer.name.upperAscii(), "vip": input.customer.vip, "note": input.note}`, `{"name":"ADA","vip":true,"note":null}`},
		{`input.?missing.orValue("none")`, `"none"`},
		{`input.?customer.name`, `"Ada"`},
		{`input.?missing`, `null`},
		{`{1: "one", true: "yes"}`, `{"1":"one","true":"yes"}`},
		{`b"hi"`, `"aGk="`},
		{`timestamp("2026-01-02T03:04:05Z")`, `"2026-01-02T03:04:05Z"`},
		{`duration("90s")`, `"90s"`},
		{`uint(3)`, `3`},
		{`"a,b".split(",")`, `["a","b"]`},
		{`cel.bind(n, input.items.size(), n * n)`, `4`},
		{`input.customer.transformMap(k, v, k == "name" ? v : "x")`, `{"name":"Ada","vip":"x"}`},
		{`math.greatest(input.items.map(i, i.qty))`, `2`},
	} {
		got, err := transformJSON(t, config{Expression: tc.expr}, order)
		require.NoError(t, err, tc.expr)
		require.JSONEq(t, tc.want, got, tc.expr)
	}
}

func TestIntegersStayIntegers(t *testing.T) {
	t.Parallel()
	got, err := transformJSON(t, config{Expression: `input.n + 1`}, `{"n": 9007199254740993}`)
	require.NoError(t, err)
	require.Equal(t, `9007199254740994`, got)
}

func TestFields(t *testing.T) {
	t.Parallel()
	got, err := transformJSON(t, config{Fields: map[string]string{
		"customer": `input.customer.name`,
		"count":    `input.items.size()`,
		"skus":     `input.items.map(i, i.sku).join("+")`,
	}}, order)
	require.NoError(t, err)
	require.JSONEq(t, `{"customer":"Ada","count":2,"skus":"a+b"}`, got)
}

func TestErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  config
		in   string
		want string
	}{
		{"no config", config{}, `{}`, `config: set exactly one of "expression" (the whole output) or "fields" (an object of expressions)`},
		{"both", config{Expression: "1", Fields: map[string]string{"a": "1"}}, `{}`, `config: set exactly one`},
		{"compile error in expression", config{Expression: "input.("}, `{}`, `config expression: "input.(" does not compile:`},
		{"compile error in a field", config{Fields: map[string]string{"ok": "1", "bad": "nosuchvar + 1"}}, `{}`, `config fields.bad: "nosuchvar + 1" does not compile:`},
		{"runtime error", config{Fields: map[string]string{"x": "input.missing"}}, `{}`, `evaluating fields.x: no such key: missing`},
		{"mixed arithmetic", config{Expression: "input.a * 2"}, `{"a": 1.5}`, `evaluating expression: no such overload`},
		{"not JSON", config{Expression: "input.a / 0.0"}, `{"a": 1.5}`, `evaluating expression: +Inf cannot be written as JSON`},
		{"type value", config{Expression: "type(1)"}, `{}`, `evaluating expression: a value of CEL type type cannot be written as JSON`},
	} {
		_, err := transformJSON(t, tc.cfg, tc.in)
		require.ErrorContains(t, err, tc.want, tc.name)
	}
}

func TestBadConfigJSON(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Config = []byte(`{"expression": 1}`)
	_, err := millracetest.Call(h, run, json.RawMessage(`{}`))
	require.ErrorContains(t, err, "config: ")
}
