package httpapi_test

import (
	"io/fs"
	"net/http"
	"regexp"
	"testing"

	"github.com/millrace/millrace/web"
	"github.com/stretchr/testify/require"
)

func TestConsoleIsServedWithClientRoutes(t *testing.T) {
	t.Parallel()
	_, err := fs.Stat(web.Dist, "dist/index.html")
	require.NoError(t, err, "the console is not built in: run make web")
	f := setup(t)

	root := f.do(t, "", http.MethodGet, "/", nil, "")
	require.Equal(t, http.StatusOK, root.status)
	require.Contains(t, string(root.body), `<div id="root">`)
	require.Equal(t, "no-cache", root.header.Get("Cache-Control"))
	require.Contains(t, root.header.Get("Content-Security-Policy"), "default-src 'self'")

	// A route of the app (a reload on /runs/…) gets the same page.
	route := f.do(t, "", http.MethodGet, "/runs/run_123", nil, "")
	require.Equal(t, http.StatusOK, route.status)
	require.Equal(t, root.body, route.body)

	// Every file the page names is served from here, with a long cache.
	assets := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(string(root.body), -1)
	require.NotEmpty(t, assets)
	for _, m := range assets {
		a := f.do(t, "", http.MethodGet, m[1], nil, "")
		require.Equal(t, http.StatusOK, a.status, m[1])
		require.Contains(t, a.header.Get("Cache-Control"), "immutable", m[1])
	}

	// A missing file is a 404, not the page (a stale tab asking for an
	// old bundle must fail loudly), and so is an unknown API path.
	require.Equal(t, http.StatusNotFound, f.do(t, "", http.MethodGet, "/assets/gone-1234.js", nil, "").status)
	require.Equal(t, http.StatusNotFound, f.do(t, "", http.MethodGet, "/v1/no-such-thing", nil, "").status)
	// Methods other than GET keep the API's answers.
	require.Equal(t, http.StatusNotFound, f.do(t, "", http.MethodPost, "/runs/run_123", nil, "").status)
	require.Equal(t, http.StatusMethodNotAllowed, f.do(t, "", http.MethodPost, "/openapi.json", nil, "").status)

	// The API reference still works beside the console.
	require.Equal(t, http.StatusOK, f.do(t, "", http.MethodGet, "/docs", nil, "").status)
	require.Equal(t, http.StatusOK, f.do(t, "", http.MethodGet, "/openapi.json", nil, "").status)
}

func TestExpressionValidation(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ok := f.doJSON(t, http.MethodPost, "/v1/expressions/validate", map[string]any{"expression": `input.name + "!"`})
	require.Equal(t, http.StatusOK, ok.status, string(ok.body))
	require.Equal(t, true, ok.json(t)["valid"])

	bad := f.doJSON(t, http.MethodPost, "/v1/expressions/validate", map[string]any{"expression": `input.name +`})
	require.Equal(t, http.StatusOK, bad.status)
	require.Equal(t, false, bad.json(t)["valid"])
	require.Contains(t, bad.json(t)["message"], "Syntax error")

	// output is only known on an edge.
	mapping := f.doJSON(t, http.MethodPost, "/v1/expressions/validate", map[string]any{"expression": `output.ok`})
	require.Equal(t, false, mapping.json(t)["valid"])
	edge := f.doJSON(t, http.MethodPost, "/v1/expressions/validate", map[string]any{"expression": `output.ok`, "context": "edge"})
	require.Equal(t, true, edge.json(t)["valid"], string(edge.body))
}

func TestCronPreview(t *testing.T) {
	t.Parallel()
	f := setup(t)
	r := f.doJSON(t, http.MethodPost, "/v1/cron/preview", map[string]any{"schedule": "0 9 * * 1-5", "timezone": "Europe/Berlin", "count": 3})
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	next := r.json(t)["next"].([]any)
	require.Len(t, next, 3)
	for _, n := range next {
		require.Contains(t, n, "T09:00:00+0") // 09:00 in Berlin, CET or CEST
	}

	bad := f.doJSON(t, http.MethodPost, "/v1/cron/preview", map[string]any{"schedule": "61 * * * *"})
	require.Equal(t, http.StatusUnprocessableEntity, bad.status)
	require.Contains(t, string(bad.body), `"location":"body.schedule"`)
	zone := f.doJSON(t, http.MethodPost, "/v1/cron/preview", map[string]any{"schedule": "@daily", "timezone": "Mars/Base"})
	require.Contains(t, string(zone.body), `"location":"body.timezone"`)
}
