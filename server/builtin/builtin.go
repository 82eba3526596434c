// Package builtin installs the modules that ship inside the server binary
// (echo, json_transform, http_request, text_template, kv_counter, ocr,
// stable_diffusion_xl, text_classify). make builds them from modules/ into wasm/ before
// compiling the server; a binary built without them simply has none.
package builtin

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/millrace/millrace/server/registry"
)

//go:embed all:wasm
var files embed.FS

// Module is one embedded module: its bytes and manifest.
type Module struct {
	Name     string
	Wasm     []byte
	Manifest []byte
}

// Modules lists the embedded modules, by file name.
func Modules() ([]Module, error) {
	entries, err := fs.ReadDir(files, "wasm")
	if err != nil {
		return nil, err
	}
	var out []Module
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".wasm")
		if !ok {
			continue
		}
		wasm, err := files.ReadFile(path.Join("wasm", e.Name()))
		if err != nil {
			return nil, err
		}
		manifest, err := files.ReadFile(path.Join("wasm", name+".json"))
		if err != nil {
			return nil, fmt.Errorf("built-in module %s has no manifest: %w", name, err)
		}
		out = append(out, Module{Name: name, Wasm: wasm, Manifest: manifest})
	}
	return out, nil
}

// Install uploads every embedded module and, when a version is new or has
// never been granted, grants it what its manifest requests. Running it at
// every start is harmless: uploads of the same bytes are idempotent and an
// admin's later grant is left alone.
//
// Versions are immutable, built-ins included: when a data directory
// already holds a built-in's version with other bytes (an older build of
// it; a new Go release alone changes the bytes), that copy is kept, and
// kept names it. Workflows pinned to the version go on running what they
// ran; a built-in whose behaviour changes ships under a new version.
func Install(ctx context.Context, reg *registry.Registry) (installed, kept []string, err error) {
	mods, err := Modules()
	if err != nil {
		return nil, nil, err
	}
	var errs []error
	for _, m := range mods {
		v, _, err := reg.Upload(ctx, m.Wasm, m.Manifest)
		var re *registry.Error
		if errors.As(err, &re) && re.Kind == registry.KindConflict && re.Field == "manifest.version" {
			kept = append(kept, m.Name)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("built-in module %s: %w", m.Name, err))
			continue
		}
		if v.Grant == nil {
			if _, err := reg.GrantAsRequested(ctx, v.ModuleID, v.Version); err != nil {
				errs = append(errs, fmt.Errorf("granting built-in module %s: %w", m.Name, err))
				continue
			}
		}
		installed = append(installed, v.ModuleID+"@"+v.Version)
	}
	return installed, kept, errors.Join(errs...)
}
