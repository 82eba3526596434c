// Package jsonvalue decodes JSON documents into plain Go values the way
// the built-in modules want them: integers as int64, other numbers as
// float64. encoding/json's float64 for every number would print 1234567
// as 1.234567e+06 in a template and make 3 a double in CEL, where 3 + 1
// then fails.
package jsonvalue

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
)

// Decode decodes one JSON document into nil, bool, int64, float64, string,
// []any and map[string]any values. Trailing data is an error.
func Decode(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON document")
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
		// Out-of-range numbers become ±Inf; a module that writes one back
		// as JSON reports it then.
		f, _ := v.Float64()
		return f
	case map[string]any:
		for k, e := range v {
			v[k] = numbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = numbers(e)
		}
	}
	return v
}
