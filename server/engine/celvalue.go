package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// fromJSON decodes a JSON document into the plain values CEL understands,
// keeping integers as int64 (CEL distinguishes int from double).
func fromJSON(doc json.RawMessage) (any, error) {
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return numbers(v), nil
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// toJSON encodes a CEL result as JSON. Maps must have string keys; values
// that JSON cannot hold (bytes, durations, NaN) are errors that name them.
func toJSON(v ref.Val) (json.RawMessage, error) {
	plain, err := toPlain(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(plain)
}

func toPlain(v ref.Val) (any, error) {
	switch x := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(x), nil
	case types.Int:
		return int64(x), nil
	case types.Uint:
		return uint64(x), nil
	case types.Double:
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return nil, fmt.Errorf("%v is not a JSON number", float64(x))
		}
		return float64(x), nil
	case types.String:
		return string(x), nil
	case traits.Mapper:
		out := map[string]any{}
		it := x.Iterator()
		for it.HasNext() == types.True {
			k := it.Next()
			ks, ok := k.(types.String)
			if !ok {
				return nil, fmt.Errorf("map key %v is not a string", k)
			}
			e, err := toPlain(x.Get(k))
			if err != nil {
				return nil, err
			}
			out[string(ks)] = e
		}
		return out, nil
	case traits.Lister:
		var out []any
		it := x.Iterator()
		for it.HasNext() == types.True {
			e, err := toPlain(it.Next())
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		if out == nil {
			out = []any{}
		}
		return out, nil
	}
	if v.Type() == types.OptionalType {
		if o := v.(*types.Optional); o.HasValue() {
			return toPlain(o.GetValue())
		}
		return nil, nil
	}
	return nil, fmt.Errorf("a %s cannot be written as JSON", v.Type().TypeName())
}
