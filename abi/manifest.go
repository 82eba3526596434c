package abi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/millrace/millrace/internal/strictjson"
)

// MaxManifestBytes bounds the size of a manifest document.
const MaxManifestBytes = 256 << 10

// Manifest describes a module: who it is, what it takes and returns, which
// capabilities it asks for and which limits it wants. See ABI.md.
type Manifest struct {
	ABI          int             `json:"abi"`
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	Version      string          `json:"version"`
	Description  string          `json:"description,omitempty"`
	Author       string          `json:"author,omitempty"`
	License      string          `json:"license,omitempty"`
	Type         string          `json:"type,omitempty"`
	Category     string          `json:"category,omitempty"`
	Icon         string          `json:"icon,omitempty"`
	Tags         []string        `json:"tags,omitempty"`
	Inputs       json.RawMessage `json:"inputs,omitempty"`  // JSON Schema of the input
	Outputs      json.RawMessage `json:"outputs,omitempty"` // JSON Schema of the output
	Config       json.RawMessage `json:"config,omitempty"`  // JSON Schema of the config
	Ports        []string        `json:"ports,omitempty"`   // output ports the module may choose; "default" when empty
	Capabilities Capabilities    `json:"capabilities"`
	Limits       Limits          `json:"limits"`
}

// Capabilities is what a manifest requests and what an admin grants. The
// vocabulary follows Spin's: outbound hosts as scheme://host:port patterns.
type Capabilities struct {
	AllowedOutboundHosts []string `json:"allowed_outbound_hosts,omitempty"`
	KV                   bool     `json:"kv,omitempty"`
	Secrets              []string `json:"secrets,omitempty"`
	Accel                *Accel   `json:"accel,omitempty"`
}

// Accel requests local AI models by the names they are registered under
// (GET /v1/models), or by patterns of names ('*' for any run of
// characters: classifier-*, models.go). A module may load a model through
// the tensor ABI (ABI.md §8) only if its grant lists it or a pattern that
// matches it.
type Accel struct {
	Models []string `json:"models"`
}

// ValidModelName reports whether name can name a registered model:
// 1-128 lower-case letters, digits, '.', '_' or '-', starting with a
// letter or digit, not ending in ".onnx".
func ValidModelName(name string) bool {
	return modelPattern().MatchString(name) && !strings.HasSuffix(name, ".onnx")
}

// Limits bound one invocation. Zero means "use the server default".
type Limits struct {
	MemoryMB       int `json:"memory_mb,omitempty"`
	TimeoutMS      int `json:"timeout_ms,omitempty"`
	MaxOutputBytes int `json:"max_output_bytes,omitempty"`
	MaxLogBytes    int `json:"max_log_bytes,omitempty"`
}

// Module types a manifest may declare.
var ModuleTypes = []string{"action", "transform", "trigger", "ai"}

// Upper bounds a manifest may ask for; a server may set lower ones.
const (
	MaxMemoryMB       = 4096
	MaxTimeoutMS      = 3_600_000
	MaxOutputBytes    = 1 << 30
	MaxLogBytes       = 64 << 20
	maxTags           = 32
	maxListEntries    = 256
	maxShortFieldLen  = 200
	maxDescriptionLen = 4000
	maxIconLen        = 64 << 10
)

// The patterns compile on first use, not at package initialisation: guests
// import this package for its constants, and every guest instance would
// otherwise pay for compiling them at start-up.
var (
	idPattern     = lazyRegexp(`^[a-z][a-z0-9_-]{0,63}$`)
	tagPattern    = lazyRegexp(`^[a-z0-9][a-z0-9-]{0,31}$`)
	portPattern   = lazyRegexp(`^[a-z][a-z0-9_-]{0,31}$`)
	secretPattern = lazyRegexp(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	modelPattern  = lazyRegexp(`^[a-z0-9][a-z0-9._-]{0,127}$`)
	// semverPattern follows semver.org 2.0.0: MAJOR.MINOR.PATCH without
	// leading zeros, then optional pre-release and build identifiers.
	semverPattern = lazyRegexp(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
		`(-((0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(\.(0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?` +
		`(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`)
)

func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// FieldError says which manifest field is wrong and why. Field is a JSON
// path such as "capabilities.secrets[1]"; it is empty for the document as a
// whole.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ParseManifest decodes and validates a manifest. Unknown fields, trailing
// data and out-of-range values are errors; the returned error is a
// *FieldError naming the field at fault.
func ParseManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestBytes {
		return nil, fieldErr("", "manifest is %d bytes; the limit is %d", len(data), MaxManifestBytes)
	}
	var m Manifest
	if err := strictjson.Decode(data, &m); err != nil {
		var se *strictjson.Error
		if errors.As(err, &se) {
			if se.Path == "" {
				if strings.HasPrefix(se.Msg, "must") {
					return nil, fieldErr("", "manifest %s", se.Msg)
				}
				return nil, fieldErr("", "manifest is %s", se.Msg)
			}
			return nil, fieldErr(se.Path, "%s", se.Msg)
		}
		return nil, fieldErr("", "%v", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks every field's syntax and range.
func (m *Manifest) Validate() error {
	if !slices.Contains(SupportedVersions, m.ABI) {
		return fieldErr("abi", "ABI version %d is not supported; this server runs %v", m.ABI, SupportedVersions)
	}
	if !idPattern().MatchString(m.ID) {
		return fieldErr("id", "%q is not a valid id: use 1-64 lower-case letters, digits, '_' or '-', starting with a letter", m.ID)
	}
	if strings.TrimSpace(m.Name) == "" {
		return fieldErr("name", "is required")
	}
	if !semverPattern().MatchString(m.Version) || len(m.Version) > 128 {
		return fieldErr("version", "%q is not a semantic version such as 1.2.3", m.Version)
	}
	for field, v := range map[string]string{"name": m.Name, "author": m.Author, "license": m.License, "category": m.Category} {
		if len(v) > maxShortFieldLen {
			return fieldErr(field, "is %d bytes; the limit is %d", len(v), maxShortFieldLen)
		}
	}
	if len(m.Description) > maxDescriptionLen {
		return fieldErr("description", "is %d bytes; the limit is %d", len(m.Description), maxDescriptionLen)
	}
	if len(m.Icon) > maxIconLen {
		return fieldErr("icon", "is %d bytes; the limit is %d", len(m.Icon), maxIconLen)
	}
	if m.Type != "" && !slices.Contains(ModuleTypes, m.Type) {
		return fieldErr("type", "%q is not one of %v", m.Type, ModuleTypes)
	}
	if len(m.Tags) > maxTags {
		return fieldErr("tags", "has %d tags; the limit is %d", len(m.Tags), maxTags)
	}
	for i, tag := range m.Tags {
		if !tagPattern().MatchString(tag) {
			return fieldErr(fmt.Sprintf("tags[%d]", i), "%q is not a valid tag: use lower-case letters, digits and '-'", tag)
		}
	}
	if len(m.Ports) > maxTags {
		return fieldErr("ports", "has %d ports; the limit is %d", len(m.Ports), maxTags)
	}
	for i, port := range m.Ports {
		if !portPattern().MatchString(port) || port == ErrorOutputPort || slices.Contains(m.Ports[:i], port) {
			return fieldErr(fmt.Sprintf("ports[%d]", i), "%q is not a valid port: use lower-case letters, digits, '_' or '-', once each; %q is reserved", port, ErrorOutputPort)
		}
	}
	for name, schema := range map[string]json.RawMessage{"inputs": m.Inputs, "outputs": m.Outputs, "config": m.Config} {
		if len(schema) == 0 {
			continue
		}
		s := bytes.TrimSpace(schema)
		if !bytes.HasPrefix(s, []byte("{")) && !bytes.Equal(s, []byte("true")) && !bytes.Equal(s, []byte("false")) {
			return fieldErr(name, "must be a JSON Schema (an object or a boolean)")
		}
	}
	if err := m.Capabilities.Validate("capabilities"); err != nil {
		return err
	}
	return m.Limits.Validate("limits")
}

// Validate checks the syntax of every capability entry. prefix is the JSON
// path of the object, used in error messages.
func (c *Capabilities) Validate(prefix string) error {
	if len(c.AllowedOutboundHosts) > maxListEntries {
		return fieldErr(prefix+".allowed_outbound_hosts", "has %d entries; the limit is %d", len(c.AllowedOutboundHosts), maxListEntries)
	}
	for i, h := range c.AllowedOutboundHosts {
		if _, err := ParseHostPattern(h); err != nil {
			return fieldErr(fmt.Sprintf("%s.allowed_outbound_hosts[%d]", prefix, i), "%v", err)
		}
	}
	if len(c.Secrets) > maxListEntries {
		return fieldErr(prefix+".secrets", "has %d entries; the limit is %d", len(c.Secrets), maxListEntries)
	}
	for i, s := range c.Secrets {
		if !secretPattern().MatchString(s) {
			return fieldErr(fmt.Sprintf("%s.secrets[%d]", prefix, i), "%q is not a valid secret name: use letters, digits and '_', not starting with a digit", s)
		}
	}
	if c.Accel != nil {
		if len(c.Accel.Models) > maxListEntries {
			return fieldErr(prefix+".accel.models", "has %d entries; the limit is %d", len(c.Accel.Models), maxListEntries)
		}
		for i, name := range c.Accel.Models {
			if !ValidModelPattern(name) {
				return fieldErr(fmt.Sprintf("%s.accel.models[%d]", prefix, i), "%q is not a valid model name or pattern: use 1-128 lower-case letters, digits, '.', '_' or '-', not ending in .onnx, with '*' for any run of them (classifier-*, or * for every model)", name)
			}
			if slices.Contains(c.Accel.Models[:i], name) {
				return fieldErr(fmt.Sprintf("%s.accel.models[%d]", prefix, i), "%q is listed twice", name)
			}
		}
	}
	return nil
}

// Validate checks that every limit is within the ABI's bounds.
func (l *Limits) Validate(prefix string) error {
	check := func(name string, v, max int) error {
		if v < 0 || v > max {
			return fieldErr(prefix+"."+name, "%d is out of range 0..%d", v, max)
		}
		return nil
	}
	for _, err := range []error{
		check("memory_mb", l.MemoryMB, MaxMemoryMB),
		check("timeout_ms", l.TimeoutMS, MaxTimeoutMS),
		check("max_output_bytes", l.MaxOutputBytes, MaxOutputBytes),
		check("max_log_bytes", l.MaxLogBytes, MaxLogBytes),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// OutputPorts returns the ports the module may choose: its declared ports,
// or just DefaultOutputPort.
func (m *Manifest) OutputPorts() []string {
	if len(m.Ports) == 0 {
		return []string{DefaultOutputPort}
	}
	return m.Ports
}

// Requests reports which capabilities the manifest asks for (or a grant
// gives); CapCore is always included. CapAccel needs at least one model.
func (c *Capabilities) Requests(cap Capability) bool {
	switch cap {
	case CapCore:
		return true
	case CapKV:
		return c.KV
	case CapHTTP:
		return len(c.AllowedOutboundHosts) > 0
	case CapSecrets:
		return len(c.Secrets) > 0
	case CapAccel:
		return c.Accel != nil && len(c.Accel.Models) > 0
	}
	return false
}
