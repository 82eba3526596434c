package engine

import (
	"fmt"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/operators"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"
)

// CEL environments. Expressions are CEL because it cannot loop, cannot
// reach the host and has a cost model (DESIGN decision 7): the class of
// expression-injection bugs that hit other automation tools cannot happen.
var (
	mappingEnv = sync.OnceValues(func() (*cel.Env, error) { return newEnv(false) })
	edgeEnv    = sync.OnceValues(func() (*cel.Env, error) { return newEnv(true) })
)

func newEnv(edge bool) (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.Variable("input", cel.DynType),
		cel.Variable("nodes", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("run", cel.MapType(cel.StringType, cel.DynType)),
		ext.Strings(), ext.Math(), ext.Lists(), ext.Sets(), ext.Encoders(),
		cel.CrossTypeNumericComparisons(true),
		// Optional access (nodes.?skipped.output) lets a join read a
		// branch that may not have run.
		cel.OptionalTypes(),
		cel.ParserRecursionLimit(64),
		cel.ParserExpressionSizeLimit(MaxExpressionBytes),
	}
	if edge {
		opts = append(opts, cel.Variable("output", cel.DynType), cel.Variable("port", cel.StringType))
	}
	return cel.NewEnv(opts...)
}

// compileExpr parses and type-checks one expression.
func compileExpr(edge bool, src string) (*cel.Ast, error) {
	if len(src) > MaxExpressionBytes {
		return nil, fmt.Errorf("the expression is %d bytes; the limit is %d", len(src), MaxExpressionBytes)
	}
	envFn := mappingEnv
	if edge {
		envFn = edgeEnv
	}
	env, err := envFn()
	if err != nil {
		return nil, err
	}
	checked, iss := env.Compile(src)
	if iss.Err() != nil {
		return nil, iss.Err()
	}
	return checked, nil
}

// referencedNodes returns the node ids an expression reads through
// `nodes.x`, `nodes["x"]` or their optional forms `nodes.?x`, `nodes[?"x"]`.
func referencedNodes(a *cel.Ast) []string {
	var ids []string
	nav := ast.NavigateAST(a.NativeRep())
	isNodes := func(e ast.Expr) bool { return e.Kind() == ast.IdentKind && e.AsIdent() == "nodes" }
	for _, e := range ast.MatchDescendants(nav, func(e ast.NavigableExpr) bool {
		switch e.Kind() {
		case ast.SelectKind:
			return isNodes(e.AsSelect().Operand())
		case ast.CallKind:
			c := e.AsCall()
			switch c.FunctionName() {
			case operators.Index, operators.OptIndex, operators.OptSelect:
				return len(c.Args()) == 2 && isNodes(c.Args()[0]) && c.Args()[1].Kind() == ast.LiteralKind
			}
		}
		return false
	}) {
		switch e.Kind() {
		case ast.SelectKind:
			ids = append(ids, e.AsSelect().FieldName())
		case ast.CallKind:
			if s, ok := e.AsCall().Args()[1].AsLiteral().(types.String); ok {
				ids = append(ids, string(s))
			}
		}
	}
	return ids
}

// jsonKind names the JSON Schema type a CEL type produces, or "" when the
// type is not known before run time (dyn).
func jsonKind(t *cel.Type) string {
	switch t.Kind() {
	case types.StringKind:
		return "string"
	case types.IntKind, types.UintKind:
		return "integer"
	case types.DoubleKind:
		return "number"
	case types.BoolKind:
		return "boolean"
	case types.ListKind:
		return "array"
	case types.MapKind:
		return "object"
	case types.NullTypeKind:
		return "null"
	}
	return ""
}

// programs caches compiled CEL programs by expression for the whole
// process: every run of a workflow version evaluates the same few
// expressions, and compiling them (parse, check, plan) cost more CPU than
// anything else in a run's orchestration before this cache. cel.Program
// is safe for concurrent use.
var programs = &programCache{entries: map[programKey]cel.Program{}}

// maxCachedPrograms bounds the cache; when full it starts over, which
// costs recompiling what is still in use and keeps memory bounded however
// many distinct expressions are saved over time.
const maxCachedPrograms = 4096

type programKey struct {
	edge bool
	src  string
}

type programCache struct {
	mu      sync.Mutex
	entries map[programKey]cel.Program
}

func (c *programCache) get(edge bool, src string) (cel.Program, error) {
	key := programKey{edge, src}
	c.mu.Lock()
	p, ok := c.entries[key]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	a, err := compileExpr(edge, src)
	if err != nil {
		return nil, err
	}
	env, _ := mappingEnv()
	if edge {
		env, _ = edgeEnv()
	}
	p, err = env.Program(a, cel.CostLimit(celCostLimit), cel.InterruptCheckFrequency(100))
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.entries) >= maxCachedPrograms {
		clear(c.entries)
	}
	c.entries[key] = p
	c.mu.Unlock()
	return p, nil
}

// CheckExpression parses and type-checks one expression as a workflow
// would use it: an edge condition (edge true: it also sees output and port)
// or an input mapping. It lets an editor report errors while the user
// types, before the whole definition is saved.
func CheckExpression(edge bool, src string) error {
	_, err := compileExpr(edge, src)
	return err
}
