// Package registry is the module registry: it validates and stores uploads,
// keeps compiled modules, applies admin grants and runs invocations in the
// sandbox within a server-wide memory budget.
package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/store"
	"golang.org/x/mod/semver"
	"golang.org/x/sync/semaphore"
)

// Config holds the registry's limits. Zero values take the defaults of
// DefaultConfig.
type Config struct {
	MaxModuleBytes   int64         // largest accepted .wasm
	Defaults         abi.Limits    // limits when neither grant nor manifest sets one
	Max              abi.Limits    // the most any grant may give
	MemoryBudgetMB   int           // memory of all running instances together
	QueueTimeout     time.Duration // how long an invocation waits for memory budget
	KVMaxValueBytes  int
	KVMaxTotalBytes  int64
	HTTPMaxBodyBytes int64
	HTTPTimeout      time.Duration
}

// DefaultConfig returns the limits a fresh server uses.
func DefaultConfig() Config {
	return Config{
		MaxModuleBytes:   64 << 20,
		Defaults:         abi.Limits{MemoryMB: 128, TimeoutMS: 10_000, MaxOutputBytes: 1 << 20, MaxLogBytes: 256 << 10},
		Max:              abi.Limits{MemoryMB: 1024, TimeoutMS: 300_000, MaxOutputBytes: 64 << 20, MaxLogBytes: 16 << 20},
		MemoryBudgetMB:   2048,
		QueueTimeout:     30 * time.Second,
		KVMaxValueBytes:  1 << 20,
		KVMaxTotalBytes:  64 << 20,
		HTTPMaxBodyBytes: 10 << 20,
		HTTPTimeout:      30 * time.Second,
	}
}

func (c *Config) fillDefaults() {
	d := DefaultConfig()
	setInt := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	if c.MaxModuleBytes <= 0 {
		c.MaxModuleBytes = d.MaxModuleBytes
	}
	setInt(&c.Defaults.MemoryMB, d.Defaults.MemoryMB)
	setInt(&c.Defaults.TimeoutMS, d.Defaults.TimeoutMS)
	setInt(&c.Defaults.MaxOutputBytes, d.Defaults.MaxOutputBytes)
	setInt(&c.Defaults.MaxLogBytes, d.Defaults.MaxLogBytes)
	setInt(&c.Max.MemoryMB, d.Max.MemoryMB)
	setInt(&c.Max.TimeoutMS, d.Max.TimeoutMS)
	setInt(&c.Max.MaxOutputBytes, d.Max.MaxOutputBytes)
	setInt(&c.Max.MaxLogBytes, d.Max.MaxLogBytes)
	setInt(&c.MemoryBudgetMB, d.MemoryBudgetMB)
	setInt(&c.KVMaxValueBytes, d.KVMaxValueBytes)
	if c.QueueTimeout <= 0 {
		c.QueueTimeout = d.QueueTimeout
	}
	if c.KVMaxTotalBytes <= 0 {
		c.KVMaxTotalBytes = d.KVMaxTotalBytes
	}
	if c.HTTPMaxBodyBytes <= 0 {
		c.HTTPMaxBodyBytes = d.HTTPMaxBodyBytes
	}
	if c.HTTPTimeout <= 0 {
		c.HTTPTimeout = d.HTTPTimeout
	}
	c.MemoryBudgetMB = max(c.MemoryBudgetMB, c.Max.MemoryMB)
}

// Registry manages modules. It is safe for concurrent use.
type Registry struct {
	cfg     Config
	store   store.Store
	engine  sandbox.Engine
	secrets sandbox.Secrets
	accel   sandbox.Accel
	budget  *semaphore.Weighted

	mu       sync.Mutex
	compiled map[string]*compileEntry // by sha256
	// manifests holds parsed manifests by their stored bytes: every
	// invocation reads its version, and parsing the manifest again (it
	// was checked at upload) cost 6 % of the server's CPU under webhook
	// load. The values are shared, so nobody modifies them.
	manifests map[string]*abi.Manifest
	schemas   map[string]*versionSchemas
}

type compileEntry struct {
	ready chan struct{}
	mod   sandbox.Module
	err   error
}

// New returns a registry over a store and an engine.
func New(cfg Config, s store.Store, engine sandbox.Engine, secrets sandbox.Secrets) *Registry {
	cfg.fillDefaults()
	return &Registry{
		cfg:      cfg,
		store:    s,
		engine:   engine,
		secrets:  secrets,
		budget:   semaphore.NewWeighted(int64(cfg.MemoryBudgetMB)),
		compiled: map[string]*compileEntry{},
		schemas:  map[string]*versionSchemas{},
	}
}

// SetAccel gives invocations the accelerator that runs the models of the
// tensor ABI (server/accel). Call it before the first invocation; without
// it a granted model answers runtime_error.
func (r *Registry) SetAccel(a sandbox.Accel) { r.accel = a }

// Config returns the registry's effective configuration.
func (r *Registry) Config() Config { return r.cfg }

// Version is a stored module version as the API shows it.
type Version struct {
	ModuleID             string           `json:"id"`
	Version              string           `json:"version"`
	SHA256               string           `json:"sha256"`
	Size                 int64            `json:"size"`
	Manifest             *abi.Manifest    `json:"manifest"`
	Grant                *sandbox.Grant   `json:"grant"`
	RequiredCapabilities []abi.Capability `json:"required_capabilities"`
	CreatedAt            time.Time        `json:"created_at"`
}

func (r *Registry) toVersion(mv store.ModuleVersion) (*Version, error) {
	m, err := r.parsedManifest(mv.Manifest)
	if err != nil {
		return nil, fmt.Errorf("stored manifest of %s@%s no longer parses: %w", mv.ModuleID, mv.Version, err)
	}
	v := &Version{ModuleID: mv.ModuleID, Version: mv.Version, SHA256: mv.SHA256, Size: mv.Size, Manifest: m, CreatedAt: mv.CreatedAt}
	if mv.Grant != nil {
		var g sandbox.Grant
		if err := json.Unmarshal(mv.Grant, &g); err != nil {
			return nil, fmt.Errorf("stored grant of %s@%s is malformed: %w", mv.ModuleID, mv.Version, err)
		}
		v.Grant = &g
	}
	v.RequiredCapabilities = []abi.Capability{}
	if mod, err := r.module(context.Background(), mv.SHA256); err == nil {
		v.RequiredCapabilities = append(v.RequiredCapabilities, sandbox.RequiredCapabilities(mod.Imports())...)
	}
	return v, nil
}

// maxCachedManifests bounds the parsed-manifest cache; past it the cache
// starts over, which only costs parsing again.
const maxCachedManifests = 1024

// parsedManifest parses a stored manifest, or returns the same bytes'
// earlier result.
func (r *Registry) parsedManifest(data []byte) (*abi.Manifest, error) {
	r.mu.Lock()
	m, ok := r.manifests[string(data)]
	r.mu.Unlock()
	if ok {
		return m, nil
	}
	m, err := abi.ParseManifest(data)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.manifests == nil || len(r.manifests) >= maxCachedManifests {
		r.manifests = map[string]*abi.Manifest{}
	}
	r.manifests[string(data)] = m
	r.mu.Unlock()
	return m, nil
}

// Upload validates, compiles and stores a module version. manifestJSON may
// be empty when the module carries its manifest in a custom section.
// Uploading the same bytes for an existing version returns created=false.
func (r *Registry) Upload(ctx context.Context, wasm, manifestJSON []byte) (v *Version, created bool, err error) {
	if int64(len(wasm)) > r.cfg.MaxModuleBytes {
		return nil, false, errorf(KindTooLarge, "wasm", "the module is %d bytes; the limit is %d", len(wasm), r.cfg.MaxModuleBytes)
	}
	embedded, hasEmbedded, err := abi.ManifestFromWasm(wasm)
	if err != nil {
		return nil, false, &Error{Kind: KindInvalid, Field: "wasm", Msg: err.Error(), Err: err}
	}
	field := "manifest"
	if len(bytes.TrimSpace(manifestJSON)) == 0 {
		if !hasEmbedded {
			return nil, false, errorf(KindInvalid, "manifest", "no manifest: upload manifest.json beside the module, or embed it in a %q custom section (millrace pack)", abi.ManifestSection)
		}
		manifestJSON, field = embedded, "wasm[custom section "+abi.ManifestSection+"]"
	}
	m, err := abi.ParseManifest(manifestJSON)
	if err != nil {
		return nil, false, manifestError(field, err)
	}
	if _, err := compileSchemas(m); err != nil {
		return nil, false, manifestError(field, err)
	}
	if err := r.checkLimits(field+".limits", m.Limits); err != nil {
		return nil, false, err
	}
	imports, err := sandbox.ParseImports(wasm)
	if err != nil {
		return nil, false, &Error{Kind: KindInvalid, Field: "wasm", Msg: err.Error(), Err: err}
	}
	if err := sandbox.CheckImports(imports, m.Capabilities); err != nil {
		return nil, false, &Error{Kind: KindInvalid, Field: "wasm", Msg: err.Error(), Err: err}
	}
	sum := sha256.Sum256(wasm)
	hash := hex.EncodeToString(sum[:])

	// Same version already stored? Answer before the costly compile.
	if existing, err := r.store.ModuleVersion(ctx, m.ID, m.Version); err == nil {
		if existing.SHA256 != hash {
			return nil, false, errorf(KindConflict, "manifest.version", "%s@%s already exists with other bytes (sha256 %s); versions are immutable: bump the version", m.ID, m.Version, existing.SHA256)
		}
		v, err := r.toVersion(existing)
		if err != nil {
			return nil, false, err
		}
		if !sameManifest(v.Manifest, m) {
			return nil, false, errorf(KindConflict, "manifest.version", "%s@%s already exists with the same bytes but another manifest; versions are immutable: bump the version", m.ID, m.Version)
		}
		return v, false, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, false, err
	}

	mod, err := r.compile(ctx, hash, wasm)
	if err != nil {
		return nil, false, err
	}
	if need := int(mod.MinMemoryPages()) / 16; need > r.limitsFor(m, nil).MemoryMB {
		return nil, false, errorf(KindInvalid, field+".limits.memory_mb", "the module needs %d MiB of memory to start; ask for at least that in limits.memory_mb", need)
	}
	mv := store.ModuleVersion{ModuleID: m.ID, Version: m.Version, SHA256: hash, Size: int64(len(wasm)), Manifest: json.RawMessage(manifestJSON)}
	created, err = r.store.PutModuleVersion(ctx, mv, wasm)
	if errors.Is(err, store.ErrConflict) {
		return nil, false, &Error{Kind: KindConflict, Field: "manifest.version", Msg: err.Error(), Err: err}
	}
	if err != nil {
		return nil, false, err
	}
	stored, err := r.store.ModuleVersion(ctx, m.ID, m.Version)
	if err != nil {
		return nil, false, err
	}
	v, err = r.toVersion(stored)
	return v, created, err
}

// sameManifest compares two manifests by meaning, not by formatting.
func sameManifest(a, b *abi.Manifest) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

func manifestError(field string, err error) error {
	var fe *abi.FieldError
	if errors.As(err, &fe) && fe.Field != "" {
		if field != "" {
			field += "."
		}
		return &Error{Kind: KindInvalid, Field: field + fe.Field, Msg: fe.Msg, Err: err}
	}
	return &Error{Kind: KindInvalid, Field: field, Msg: err.Error(), Err: err}
}

// checkLimits refuses limits above the server's maximums.
func (r *Registry) checkLimits(field string, l abi.Limits) error {
	over := func(name string, v, max int) error {
		if v > max {
			return errorf(KindInvalid, field+"."+name, "%d is over this server's maximum of %d", v, max)
		}
		return nil
	}
	for _, err := range []error{
		over("memory_mb", l.MemoryMB, r.cfg.Max.MemoryMB),
		over("timeout_ms", l.TimeoutMS, r.cfg.Max.TimeoutMS),
		over("max_output_bytes", l.MaxOutputBytes, r.cfg.Max.MaxOutputBytes),
		over("max_log_bytes", l.MaxLogBytes, r.cfg.Max.MaxLogBytes),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// limitsFor resolves each limit: the grant's, else the manifest's, else the
// server default.
func (r *Registry) limitsFor(m *abi.Manifest, g *sandbox.Grant) abi.Limits {
	pick := func(grant, manifest, def int) int {
		switch {
		case grant > 0:
			return grant
		case manifest > 0:
			return manifest
		}
		return def
	}
	var gl abi.Limits
	if g != nil {
		gl = g.Limits
	}
	return abi.Limits{
		MemoryMB:       pick(gl.MemoryMB, m.Limits.MemoryMB, r.cfg.Defaults.MemoryMB),
		TimeoutMS:      pick(gl.TimeoutMS, m.Limits.TimeoutMS, r.cfg.Defaults.TimeoutMS),
		MaxOutputBytes: pick(gl.MaxOutputBytes, m.Limits.MaxOutputBytes, r.cfg.Defaults.MaxOutputBytes),
		MaxLogBytes:    pick(gl.MaxLogBytes, m.Limits.MaxLogBytes, r.cfg.Defaults.MaxLogBytes),
	}
}

// compile returns the compiled module for hash, compiling wasm at most once
// even when several callers ask at the same time.
func (r *Registry) compile(ctx context.Context, hash string, wasm []byte) (sandbox.Module, error) {
	r.mu.Lock()
	e, ok := r.compiled[hash]
	if !ok {
		e = &compileEntry{ready: make(chan struct{})}
		r.compiled[hash] = e
	}
	r.mu.Unlock()
	if ok {
		<-e.ready
		return e.mod, e.err
	}
	e.mod, e.err = r.engine.Compile(ctx, wasm)
	if e.err != nil {
		r.mu.Lock()
		delete(r.compiled, hash) // a failed compile may succeed later (e.g. after a cancel)
		r.mu.Unlock()
		var ie *sandbox.ImportError
		if errors.As(e.err, &ie) {
			e.err = &Error{Kind: KindInvalid, Field: "wasm", Msg: e.err.Error(), Err: e.err}
		} else {
			e.err = &Error{Kind: KindInvalid, Field: "wasm", Msg: "does not compile: " + e.err.Error(), Err: e.err}
		}
	}
	close(e.ready)
	return e.mod, e.err
}

// module returns the compiled module for a stored blob.
func (r *Registry) module(ctx context.Context, hash string) (sandbox.Module, error) {
	r.mu.Lock()
	e, ok := r.compiled[hash]
	r.mu.Unlock()
	if ok {
		<-e.ready
		if e.err == nil {
			return e.mod, nil
		}
	}
	wasm, err := r.store.ModuleWasm(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("loading module bytes %s: %w", hash, err)
	}
	return r.compile(ctx, hash, wasm)
}

// Warm compiles every stored module, filling the engine's cache, so the
// first invocation after a restart does not pay for compilation.
func (r *Registry) Warm(ctx context.Context) error {
	all, err := r.store.ListModuleVersions(ctx, "")
	if err != nil {
		return err
	}
	var errs []error
	for _, mv := range all {
		if _, err := r.module(ctx, mv.SHA256); err != nil {
			errs = append(errs, fmt.Errorf("%s@%s: %w", mv.ModuleID, mv.Version, err))
		}
	}
	return errors.Join(errs...)
}

// Get returns one version; version may be "latest".
func (r *Registry) Get(ctx context.Context, moduleID, version string) (*Version, error) {
	mv, err := r.lookup(ctx, moduleID, version)
	if err != nil {
		return nil, err
	}
	return r.toVersion(mv)
}

func (r *Registry) lookup(ctx context.Context, moduleID, version string) (store.ModuleVersion, error) {
	if version == "latest" {
		all, err := r.store.ListModuleVersions(ctx, moduleID)
		if err != nil {
			return store.ModuleVersion{}, err
		}
		if len(all) == 0 {
			return store.ModuleVersion{}, errorf(KindNotFound, "id", "module %q does not exist", moduleID)
		}
		sortVersions(all)
		return all[len(all)-1], nil
	}
	mv, err := r.store.ModuleVersion(ctx, moduleID, version)
	if errors.Is(err, store.ErrNotFound) {
		return mv, errorf(KindNotFound, "version", "module %s has no version %q", moduleID, version)
	}
	return mv, err
}

func sortVersions(vs []store.ModuleVersion) {
	slices.SortStableFunc(vs, func(a, b store.ModuleVersion) int {
		if c := strings.Compare(a.ModuleID, b.ModuleID); c != 0 {
			return c
		}
		return semver.Compare("v"+a.Version, "v"+b.Version)
	})
}

// List returns the versions of one module (or all modules when moduleID is
// empty), ordered by id and then by semantic version.
func (r *Registry) List(ctx context.Context, moduleID string) ([]*Version, error) {
	all, err := r.store.ListModuleVersions(ctx, moduleID)
	if err != nil {
		return nil, err
	}
	if moduleID != "" && len(all) == 0 {
		return nil, errorf(KindNotFound, "id", "module %q does not exist", moduleID)
	}
	sortVersions(all)
	out := make([]*Version, 0, len(all))
	for _, mv := range all {
		v, err := r.toVersion(mv)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Delete removes one version, or every version when version is empty.
func (r *Registry) Delete(ctx context.Context, moduleID, version string) error {
	var targets []store.ModuleVersion
	if version == "" {
		all, err := r.store.ListModuleVersions(ctx, moduleID)
		if err != nil {
			return err
		}
		if len(all) == 0 {
			return errorf(KindNotFound, "id", "module %q does not exist", moduleID)
		}
		targets = all
	} else {
		mv, err := r.lookup(ctx, moduleID, version)
		if err != nil {
			return err
		}
		targets = []store.ModuleVersion{mv}
	}
	for _, mv := range targets {
		if err := r.store.DeleteModuleVersion(ctx, mv.ModuleID, mv.Version); err != nil {
			return err
		}
		r.mu.Lock()
		delete(r.schemas, mv.ModuleID+"@"+mv.Version)
		r.mu.Unlock()
		if _, err := r.store.ModuleWasm(ctx, mv.SHA256); errors.Is(err, store.ErrNotFound) {
			r.dropCompiled(ctx, mv.SHA256)
		}
	}
	return nil
}

func (r *Registry) dropCompiled(ctx context.Context, hash string) {
	r.mu.Lock()
	e, ok := r.compiled[hash]
	delete(r.compiled, hash)
	r.mu.Unlock()
	if ok {
		<-e.ready
		if e.mod != nil {
			e.mod.Close(ctx)
		}
	}
}

// SetGrant replaces a version's grant after checking that it is no wider
// than what the manifest requests and within the server's limits.
func (r *Registry) SetGrant(ctx context.Context, moduleID, version string, g sandbox.Grant) (*Version, error) {
	mv, err := r.lookup(ctx, moduleID, version)
	if err != nil {
		return nil, err
	}
	m, err := abi.ParseManifest(mv.Manifest)
	if err != nil {
		return nil, err
	}
	if err := checkGrant(m, &g); err != nil {
		return nil, err
	}
	if err := r.checkLimits("limits", g.Limits); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(g)
	if err != nil {
		return nil, err
	}
	if err := r.store.SetGrant(ctx, mv.ModuleID, mv.Version, raw); err != nil {
		return nil, err
	}
	mv.Grant = raw
	return r.toVersion(mv)
}

// checkGrant verifies that a grant is no wider than the manifest's request.
func checkGrant(m *abi.Manifest, g *sandbox.Grant) error {
	if err := g.Capabilities.Validate("capabilities"); err != nil {
		return manifestError("", err)
	}
	if err := g.Limits.Validate("limits"); err != nil {
		return manifestError("", err)
	}
	req := m.Capabilities
	if g.Capabilities.KV && !req.KV {
		return errorf(KindInvalid, "capabilities.kv", "the manifest of %s@%s does not request kv", m.ID, m.Version)
	}
	var requested []abi.HostPattern
	for _, h := range req.AllowedOutboundHosts {
		p, _ := abi.ParseHostPattern(h)
		requested = append(requested, p)
	}
	for i, h := range g.Capabilities.AllowedOutboundHosts {
		p, _ := abi.ParseHostPattern(h) // syntax checked by Validate
		if !slices.ContainsFunc(requested, func(q abi.HostPattern) bool { return q.Covers(p) }) {
			return errorf(KindInvalid, fmt.Sprintf("capabilities.allowed_outbound_hosts[%d]", i), "%q is wider than anything the manifest requests (%v)", h, req.AllowedOutboundHosts)
		}
	}
	for i, s := range g.Capabilities.Secrets {
		if !slices.Contains(req.Secrets, s) {
			return errorf(KindInvalid, fmt.Sprintf("capabilities.secrets[%d]", i), "the manifest does not request secret %q", s)
		}
	}
	if g.Capabilities.Accel != nil {
		for i, name := range g.Capabilities.Accel.Models {
			if req.Accel == nil || !slices.ContainsFunc(req.Accel.Models, func(q string) bool { return abi.ModelPatternCovers(q, name) }) {
				var requested []string
				if req.Accel != nil {
					requested = req.Accel.Models
				}
				return errorf(KindInvalid, fmt.Sprintf("capabilities.accel.models[%d]", i), "the manifest does not request model %q (it requests %q; a grant may list names or patterns those cover)", name, requested)
			}
		}
	}
	return nil
}

// GrantAsRequested grants a version exactly what its manifest requests;
// used for the built-in modules at first start.
func (r *Registry) GrantAsRequested(ctx context.Context, moduleID, version string) (*Version, error) {
	mv, err := r.lookup(ctx, moduleID, version)
	if err != nil {
		return nil, err
	}
	m, err := abi.ParseManifest(mv.Manifest)
	if err != nil {
		return nil, err
	}
	return r.SetGrant(ctx, moduleID, version, sandbox.Grant{Capabilities: m.Capabilities})
}

// InvokeRequest is one invocation.
type InvokeRequest struct {
	ModuleID   string
	Version    string // a version or "latest"
	Input      json.RawMessage
	Config     json.RawMessage
	OnProgress func(sandbox.Progress)
	// TimeoutCap, if positive, lowers the granted timeout (a workflow
	// node's timeout_ms); it never raises it.
	TimeoutCap time.Duration
}

// Invoke validates the input and config, then runs the module once in a
// fresh sandbox. A module failure is reported in Result.Failure, not as an
// error; errors are for requests that could not start.
func (r *Registry) Invoke(ctx context.Context, req InvokeRequest) (*sandbox.Result, *Version, error) {
	mv, err := r.lookup(ctx, req.ModuleID, req.Version)
	if err != nil {
		return nil, nil, err
	}
	v, err := r.toVersion(mv)
	if err != nil {
		return nil, nil, err
	}
	if v.Grant == nil {
		return nil, v, errorf(KindNotGranted, "", "%s@%s has no grant yet: an admin must PUT /v1/modules/%s/versions/%s/grants before it can run", v.ModuleID, v.Version, v.ModuleID, v.Version)
	}
	schemas, err := r.versionSchemas(v)
	if err != nil {
		return nil, v, err
	}
	if err := schemas.validate("input", schemas.input, req.Input, "null"); err != nil {
		return nil, v, err
	}
	if err := schemas.validate("config", schemas.config, req.Config, "{}"); err != nil {
		return nil, v, err
	}
	mod, err := r.module(ctx, v.SHA256)
	if err != nil {
		return nil, v, err
	}
	limits := r.limitsFor(v.Manifest, v.Grant)
	if req.TimeoutCap > 0 && req.TimeoutCap < time.Duration(limits.TimeoutMS)*time.Millisecond {
		limits.TimeoutMS = max(1, int(req.TimeoutCap.Milliseconds()))
	}

	waitCtx, cancel := context.WithTimeout(ctx, r.cfg.QueueTimeout)
	defer cancel()
	if err := r.budget.Acquire(waitCtx, int64(limits.MemoryMB)); err != nil {
		return nil, v, errorf(KindBusy, "", "the server is running its memory budget (%d MiB) of modules; retry later", r.cfg.MemoryBudgetMB)
	}
	defer r.budget.Release(int64(limits.MemoryMB))

	inv := &sandbox.Invocation{
		Namespace: v.ModuleID,
		Input:     req.Input,
		Config:    req.Config,
		Grant:     *v.Grant,
		Limits: sandbox.Limits{
			MemoryBytes:      uint64(limits.MemoryMB) << 20,
			Timeout:          time.Duration(limits.TimeoutMS) * time.Millisecond,
			MaxOutputBytes:   limits.MaxOutputBytes,
			MaxLogBytes:      limits.MaxLogBytes,
			MaxKVValueBytes:  r.cfg.KVMaxValueBytes,
			MaxKVTotalBytes:  r.cfg.KVMaxTotalBytes,
			MaxHTTPBodyBytes: r.cfg.HTTPMaxBodyBytes,
			HTTPTimeout:      r.cfg.HTTPTimeout,
		},
		Ports:      v.Manifest.Ports,
		KV:         r.store,
		Secrets:    r.secrets,
		Accel:      r.accel,
		OnProgress: req.OnProgress,
	}
	return mod.Invoke(ctx, inv), v, nil
}
