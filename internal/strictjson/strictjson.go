// Package strictjson decodes untrusted JSON documents strictly: one
// document, no trailing data, no unknown fields anywhere, and errors that
// name the exact path at fault ("nodes[2].retry.max_atempts"), which
// encoding/json's DisallowUnknownFields does not.
//
// It imports only the standard library, so the abi package (which guests
// compile) may use it.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Error is a decoding failure at a JSON path ("" for the whole document).
type Error struct {
	Path string
	Msg  string
}

func (e *Error) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Decode decodes data into v (a pointer to a struct). Every error is an
// *Error.
func Decode(data []byte, v any) error {
	var generic any
	if err := decodeOne(data, &generic); err != nil {
		return &Error{Msg: "not valid JSON: " + err.Error()}
	}
	if _, ok := generic.(map[string]any); !ok {
		return &Error{Msg: "must be a JSON object"}
	}
	if err := checkFields(generic, reflect.TypeOf(v), ""); err != nil {
		return err
	}
	if err := decodeOne(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &Error{Path: te.Field, Msg: fmt.Sprintf("must be %s, not a JSON %s", kindName(te.Type), te.Value)}
		}
		return &Error{Msg: "not valid: " + err.Error()}
	}
	return nil
}

func decodeOne(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON document")
	}
	return nil
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// checkFields walks a decoded JSON value alongside the Go type it must fit
// and reports the first object key (in sorted order) that the type does
// not declare. Type mismatches are left to the typed decode.
func checkFields(v any, t reflect.Type, path string) *Error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessageType {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		fields := map[string]reflect.Type{}
		collectFields(t, fields)
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ft, known := fields[k]
			if !known {
				return &Error{Path: join(path, k), Msg: "unknown field"}
			}
			if err := checkFields(obj[k], ft, join(path, k)); err != nil {
				return err
			}
		}
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for k, e := range obj {
			if err := checkFields(e, t.Elem(), join(path, k)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		arr, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, e := range arr {
			if err := checkFields(e, t.Elem(), path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	}
	return nil
}

// collectFields maps JSON names to field types, following embedded
// structs as encoding/json does.
func collectFields(t reflect.Type, into map[string]reflect.Type) {
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			collectFields(f.Type, into)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		into[name] = f.Type
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
