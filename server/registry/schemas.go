package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/millrace/millrace/abi"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// versionSchemas are the compiled JSON Schemas of one module version.
type versionSchemas struct {
	input, output, config *jsonschema.Schema
}

// compileSchemas compiles a manifest's inputs, outputs and config schemas.
// References to other documents are refused: a schema must be
// self-contained, and a loader would let an upload read the server's files.
func compileSchemas(m *abi.Manifest) (*versionSchemas, error) {
	var vs versionSchemas
	for _, s := range []struct {
		field string
		raw   json.RawMessage
		dst   **jsonschema.Schema
	}{{"inputs", m.Inputs, &vs.input}, {"outputs", m.Outputs, &vs.output}, {"config", m.Config, &vs.config}} {
		if len(s.raw) == 0 {
			continue
		}
		sch, err := compileSchema(s.field, s.raw)
		if err != nil {
			return nil, err
		}
		*s.dst = sch
	}
	return &vs, nil
}

// CompileSchema checks that raw is a valid, self-contained JSON Schema;
// the error is an *abi.FieldError at field.
func CompileSchema(field string, raw json.RawMessage) error {
	_, err := compileSchema(field, raw)
	return err
}

// CheckAgainstSchema validates doc against a JSON Schema given as raw
// JSON; failures are *Error at field plus the failing path.
func CheckAgainstSchema(field string, schema, doc json.RawMessage) error {
	if len(schema) == 0 {
		return nil
	}
	sch, err := compileSchema(field, schema)
	if err != nil {
		return err
	}
	return (&versionSchemas{}).validate(field, sch, doc, "null")
}

func compileSchema(field string, raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, &abi.FieldError{Field: field, Msg: "is not valid JSON: " + err.Error()}
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(jsonschema.SchemeURLLoader{}) // no file, no network
	url := "urn:millrace:" + field
	if err := c.AddResource(url, doc); err != nil {
		return nil, &abi.FieldError{Field: field, Msg: err.Error()}
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, &abi.FieldError{Field: field, Msg: "is not a valid JSON Schema: " + err.Error()}
	}
	return sch, nil
}

func (r *Registry) versionSchemas(v *Version) (*versionSchemas, error) {
	key := v.ModuleID + "@" + v.Version
	r.mu.Lock()
	vs, ok := r.schemas[key]
	r.mu.Unlock()
	if ok {
		return vs, nil
	}
	vs, err := compileSchemas(v.Manifest)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.schemas[key] = vs
	r.mu.Unlock()
	return vs, nil
}

// CheckDocument validates doc against a version's inputs schema (which =
// "input") or config schema (which = "config"). Errors are *Error with the
// failing location under which, e.g. "config.url".
func (r *Registry) CheckDocument(v *Version, which string, doc json.RawMessage) error {
	vs, err := r.versionSchemas(v)
	if err != nil {
		return err
	}
	switch which {
	case "input":
		return vs.validate(which, vs.input, doc, "null")
	case "config":
		return vs.validate(which, vs.config, doc, "{}")
	}
	return fmt.Errorf("unknown document %q", which)
}

var printer = message.NewPrinter(language.English)

// validate checks a document against a schema and reports the first
// failing location as field.path, e.g. "input.name".
func (vs *versionSchemas) validate(field string, sch *jsonschema.Schema, raw json.RawMessage, empty string) error {
	if sch == nil {
		return nil
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		raw = json.RawMessage(empty)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return errorf(KindInvalid, field, "is not valid JSON: %v", err)
	}
	err = sch.Validate(doc)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	leaf := ve
	for len(leaf.Causes) > 0 {
		leaf = leaf.Causes[0]
	}
	loc := field
	for _, p := range leaf.InstanceLocation {
		loc += "." + p
	}
	what := "the module's " + schemaName(field) + " schema"
	if field != "input" && field != "config" {
		what = "its schema"
	}
	return &Error{Kind: KindInvalid, Field: loc, Msg: fmt.Sprintf("does not match %s: %s", what, strings.TrimSpace(leaf.ErrorKind.LocalizedString(printer))), Err: err}
}

func schemaName(field string) string {
	if field == "input" {
		return "inputs"
	}
	return field
}
