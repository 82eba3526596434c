package httpapi

import (
	"io/fs"
	"net/http"

	"github.com/millrace/millrace/web"
)

// docsPage is the API reference. It loads Swagger UI from the binary (built
// from the swagger-ui-dist npm package into web/dist/docs), never from a
// CDN, so it works on a machine with no internet.
const docsPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Millrace API reference</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/init.js"></script>
</body>
</html>
`

// initScript starts Swagger UI on our document. validatorUrl is off: its
// default would send the document to an outside service.
const initScript = `window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui", validatorUrl: null, deepLinking: true, persistAuthorization: false});
`

const missingAssetsPage = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Millrace API reference</title></head>
<body><h1>Millrace API reference</h1><p>The reference viewer was not built into this binary (run <code>make</code>).
The OpenAPI document is at <a href="/openapi.json">/openapi.json</a>.</p></body></html>
`

func docsHandler() http.Handler {
	assets, err := fs.Sub(web.Dist, "dist/docs")
	_, statErr := fs.Stat(web.Dist, "dist/docs/swagger-ui-bundle.js")
	files := http.StripPrefix("/docs/assets/", http.FileServerFS(assets))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Everything the page needs comes from this server.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		switch r.URL.Path {
		case "/docs", "/docs/":
			h.Set("Content-Type", "text/html; charset=utf-8")
			if err != nil || statErr != nil {
				w.Write([]byte(missingAssetsPage))
				return
			}
			w.Write([]byte(docsPage))
		case "/docs/assets/init.js":
			h.Set("Content-Type", "text/javascript; charset=utf-8")
			w.Write([]byte(initScript))
		default:
			if err != nil {
				http.NotFound(w, r)
				return
			}
			files.ServeHTTP(w, r)
		}
	})
}
