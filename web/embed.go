// Package web holds the browser assets that the server embeds: the built
// admin console and the API reference viewer, both under dist/ (built by
// make from npm packages; only dist/.gitkeep is committed).
package web

import "embed"

// Dist is the built dist/ folder.
//
//go:embed all:dist
var Dist embed.FS
