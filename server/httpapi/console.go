package httpapi

import (
	"io/fs"
	"net/http"
	"path"
	"strings"

	"github.com/millrace/millrace/web"
)

// The admin console is a single-page app built by make into web/dist
// (index.html plus content-hashed files under assets/) and embedded in
// the binary. Paths that are no file are the app's own routes
// (/workflows/wf_1, /runs/…), so they get index.html and the app routes
// them in the browser.

const missingConsolePage = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Millrace</title></head>
<body><h1>Millrace</h1><p>The admin console was not built into this binary: run <code>make</code> and start the server again.
The API works without it; its reference is at <a href="/docs">/docs</a>.</p></body></html>
`

// consoleCSP lets the console load only from this server. Inline styles
// are allowed because the workflow editor positions nodes with them;
// images may be blob: URLs of artifacts fetched with the session.
const consoleCSP = "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// apiPrefixes are served by the API only: an unknown path under them is
// the API's 404, never the console's page.
var apiPrefixes = []string{"/v1/", "/hooks/", "/docs/"}

// withConsole serves the console for GET and HEAD requests that no API
// route takes, and passes everything else to mux unchanged, so the API's
// own 404 and 405 answers stay what they were without the console.
func withConsole(mux *http.ServeMux) http.Handler {
	console := consoleHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			api := false
			for _, p := range apiPrefixes {
				api = api || strings.HasPrefix(r.URL.Path, p)
			}
			if _, pattern := mux.Handler(r); pattern == "" && !api {
				console.ServeHTTP(w, r)
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

func consoleHandler() http.Handler {
	dist, subErr := fs.Sub(web.Dist, "dist")
	index, indexErr := fs.ReadFile(web.Dist, "dist/index.html")
	files := http.FileServerFS(dist)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		if subErr != nil || indexErr != nil {
			h.Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(missingConsolePage))
			return
		}
		name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if name != "" && name != "index.html" {
			if st, err := fs.Stat(dist, name); err == nil && !st.IsDir() {
				if strings.HasPrefix(name, "assets/") {
					// Vite puts a content hash in every name under
					// assets/: a new build means new names.
					h.Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				files.ServeHTTP(w, r)
				return
			}
			if strings.HasPrefix(name, "assets/") || path.Ext(name) != "" {
				http.NotFound(w, r)
				return
			}
		}
		// index.html names the current hashed files, so it is never
		// cached without asking.
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Type", "text/html; charset=utf-8")
		w.Write(index)
	})
}
