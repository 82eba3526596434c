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

func TestRender(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ tmpl, data, want string }{
		{`Hello {{.name}}!`, `{"name": "Ada"}`, `Hello Ada!`},
		{`{{.n}} {{.f}} {{if gt .n 3}}big{{end}}`, `{"n": 1234567, "f": 2.5}`, `1234567 2.5 big`},
		{`{{range $i, $x := .}}{{if $i}}, {{end}}{{$x}}{{end}}`, `["a", "b", "c"]`, `a, b, c`},
		{`{{printf "%05.1f" .x}} {{len .s}} {{index .m "k"}} {{.s | html}}`, `{"x": 3.14159, "s": "<b>", "m": {"k": "v"}}`, `003.1 3 v &lt;b&gt;`},
		{`static`, `null`, `static`},
		{`[{{.missing}}]`, `{}`, `[<no value>]`},
	} {
		out, err := millracetest.Call(millracetest.NewHost(), run, input{Template: tc.tmpl, Data: json.RawMessage(tc.data)})
		require.NoError(t, err, tc.tmpl)
		require.Equal(t, tc.want, out.Text, tc.tmpl)
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ tmpl, data, want string }{
		{``, `{}`, `input: template is required`},
		{`{{.name`, `{}`, `parsing the template: template: template:1: unclosed action`},
		{`{{template "other"}}`, `{}`, `executing the template: template: template:1:11: executing "template" at <{{template "other"}}>: template "other" not defined`},
		{`{{.a.b}}`, `{"a": 1}`, `executing the template: template: template:1:4: executing "template" at <.a.b>: can't evaluate field b in type interface {}`},
		{`{{env "HOME"}}`, `{}`, `parsing the template: template: template:1: function "env" not defined`},
	} {
		_, err := millracetest.Call(millracetest.NewHost(), run, input{Template: tc.tmpl, Data: json.RawMessage(tc.data)})
		require.EqualError(t, err, tc.want, tc.tmpl)
	}
}
