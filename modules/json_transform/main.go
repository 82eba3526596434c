// Command json_transform is the Millrace module that reshapes JSON with
// CEL expressions (https://cel.dev). CEL is non-Turing-complete and has no
// side effects, so a transform written by a user can only compute a value.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"

	millrace "github.com/millrace/millrace/guest-sdk"
	"github.com/millrace/millrace/modules/internal/jsonvalue"
)

// env is built once, by init: a reactor's memory snapshot is taken after
// init (ABI.md §1), so every invocation starts with it ready. Building it
// is most of what a small transform costs in WebAssembly.
var env, envErr = newEnv()

func init() { millrace.Handle(run) }

func main() {}

// config is the module's configuration: exactly one of its fields is set.
type config struct {
	// Expression computes the whole output.
	Expression string `json:"expression,omitempty"`
	// Fields computes an object, one CEL expression per output field.
	Fields map[string]string `json:"fields,omitempty"`
}

func run(_ context.Context, in json.RawMessage) (any, error) {
	var cfg config
	if err := millrace.Config(&cfg); err != nil {
		return nil, err
	}
	input, err := jsonvalue.Decode(in)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	return transform(cfg, input)
}

// transform compiles every expression before it evaluates any, so a typo
// in one field is reported even when an earlier field would fail at run
// time.
func transform(cfg config, input any) (any, error) {
	if (cfg.Expression == "") == (len(cfg.Fields) == 0) {
		return nil, errors.New(`config: set exactly one of "expression" (the whole output) or "fields" (an object of expressions)`)
	}
	if envErr != nil {
		return nil, envErr
	}
	vars := map[string]any{"input": input}
	if cfg.Expression != "" {
		prg, err := compile(env, "expression", cfg.Expression)
		if err != nil {
			return nil, err
		}
		return eval(prg, "expression", vars)
	}
	names := slices.Sorted(maps.Keys(cfg.Fields))
	prgs := make([]cel.Program, len(names))
	var err error
	for i, name := range names {
		if prgs[i], err = compile(env, "fields."+name, cfg.Fields[name]); err != nil {
			return nil, err
		}
	}
	out := make(map[string]any, len(names))
	for i, name := range names {
		if out[name], err = eval(prgs[i], "fields."+name, vars); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// newEnv declares the variable input and the extension libraries that
// make sense for reshaping JSON. Numbers compare across int and double,
// since whether a JSON number arrives as one or the other depends only on
// how it was written.
func newEnv() (*cel.Env, error) {
	env, err := cel.NewEnv(
		cel.Variable("input", cel.DynType),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		ext.Strings(),
		ext.Math(),
		ext.Lists(),
		ext.Sets(),
		ext.Encoders(),
		ext.Bindings(),
		ext.TwoVarComprehensions(),
	)
	if err != nil {
		return nil, fmt.Errorf("creating the CEL environment: %w", err)
	}
	return env, nil
}

func compile(env *cel.Env, field, expr string) (cel.Program, error) {
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("config %s: %q does not compile:\n%v", field, expr, iss.Err())
	}
	prg, err := env.Program(ast)
	if err != nil {
		return nil, fmt.Errorf("config %s: %v", field, err)
	}
	return prg, nil
}

func eval(prg cel.Program, field string, vars map[string]any) (any, error) {
	val, _, err := prg.Eval(vars)
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %v", field, err)
	}
	out, err := toJSON(val)
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %v", field, err)
	}
	return out, nil
}

// toJSON converts a CEL value to plain Go values that encoding/json
// writes as the same JSON: ints stay ints, bytes become base64,
// timestamps and durations their CEL string form, and an optional its
// value or null.
func toJSON(v ref.Val) (any, error) {
	switch v := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(v), nil
	case types.Int:
		return int64(v), nil
	case types.Uint:
		return uint64(v), nil
	case types.Double:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%v cannot be written as JSON", f)
		}
		return f, nil
	case types.String:
		return string(v), nil
	case types.Bytes:
		return []byte(v), nil
	case types.Timestamp, types.Duration:
		return toJSON(v.ConvertToType(types.StringType))
	case *types.Optional:
		if !v.HasValue() {
			return nil, nil
		}
		return toJSON(v.GetValue())
	case *types.Err:
		return nil, v
	case traits.Mapper:
		out := map[string]any{}
		for it := v.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			key, err := mapKey(k)
			if err != nil {
				return nil, err
			}
			if out[key], err = toJSON(v.Get(k)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case traits.Lister:
		n, ok := v.Size().(types.Int)
		if !ok {
			return nil, fmt.Errorf("a list has no size")
		}
		out := make([]any, n)
		for i := range out {
			var err error
			if out[i], err = toJSON(v.Get(types.Int(i))); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("a value of CEL type %s cannot be written as JSON", v.Type().TypeName())
}

// mapKey turns a CEL map key into a JSON object key: strings as they are,
// ints, uints and bools in their decimal or literal form.
func mapKey(k ref.Val) (string, error) {
	switch k.(type) {
	case types.String, types.Int, types.Uint, types.Bool:
		s, ok := k.ConvertToType(types.StringType).(types.String)
		if ok {
			return string(s), nil
		}
	}
	return "", fmt.Errorf("a map key of CEL type %s cannot be a JSON object key", k.Type().TypeName())
}
