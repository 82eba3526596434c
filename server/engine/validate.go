package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"cel.dev/cel-go/cel"
	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/registry"
)

// Catalog is what validation needs to know about modules; *registry.Registry
// implements it.
type Catalog interface {
	Get(ctx context.Context, moduleID, version string) (*registry.Version, error)
	CheckDocument(v *registry.Version, which string, doc json.RawMessage) error
}

var _ Catalog = (*registry.Registry)(nil)

// Validate checks everything about a definition that can be known before
// it runs, and reports every problem it finds with its location: the
// graph (ids, edges, cycles), each node's module (exists, granted for what
// it imports), config (against the module's schema), CEL expressions
// (compile, reference only upstream nodes, conditions are boolean) and
// input mappings (against the module's inputs schema).
func Validate(ctx context.Context, d *Definition, cat Catalog) error {
	v := &validator{ctx: ctx, cat: cat, d: d, index: map[string]int{}}
	v.run()
	if len(v.problems) > 0 {
		return &InvalidError{Problems: v.problems}
	}
	return nil
}

type validator struct {
	ctx      context.Context
	cat      Catalog
	d        *Definition
	problems []Problem
	index    map[string]int             // node id → position
	versions map[int]*registry.Version  // node position → its module, when found
	incoming map[string][]int           // node id → positions of edges into it
	upstream map[string]map[string]bool // node id → ids of every ancestor
}

func (v *validator) add(loc, format string, args ...any) {
	v.problems = append(v.problems, Problem{Location: loc, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) run() {
	d := v.d
	if strings.TrimSpace(d.Name) == "" {
		v.add("name", "is required")
	} else if len(d.Name) > 200 {
		v.add("name", "is over 200 bytes")
	}
	if len(d.InputSchema) > 0 {
		if err := registry.CompileSchema("input_schema", d.InputSchema); err != nil {
			v.add("input_schema", "%s", fieldMsg(err))
		}
	}
	switch {
	case len(d.Nodes) == 0:
		v.add("nodes", "a workflow needs at least one node")
		return
	case len(d.Nodes) > MaxNodes:
		v.add("nodes", "has %d nodes; the limit is %d", len(d.Nodes), MaxNodes)
		return
	case len(d.Edges) > MaxEdges:
		v.add("edges", "has %d edges; the limit is %d", len(d.Edges), MaxEdges)
		return
	}
	for i, n := range d.Nodes {
		loc := fmt.Sprintf("nodes[%d].id", i)
		if !nodeIDPattern.MatchString(n.ID) {
			v.add(loc, "%q is not a valid node id: use 1-64 lower-case letters, digits or '_', starting with a letter", n.ID)
			continue
		}
		if celReserved[n.ID] {
			v.add(loc, "%q is a reserved word in CEL, so expressions could not write nodes.%s: choose another id", n.ID, n.ID)
			continue
		}
		if j, dup := v.index[n.ID]; dup {
			v.add(loc, "%q is already the id of nodes[%d]", n.ID, j)
			continue
		}
		v.index[n.ID] = i
	}
	v.checkModules()
	if !v.checkEdges() {
		return // the graph is broken; checks that walk it would only add noise
	}
	if !v.checkAcyclic() {
		return
	}
	v.computeUpstream()
	for i := range d.Nodes {
		v.checkNode(i)
	}
	for i := range d.Edges {
		v.checkCondition(i)
	}
}

// celReserved are CEL's reserved words and literals: a node with such an
// id could not be read as nodes.<id>.
var celReserved = map[string]bool{
	"in": true, "as": true, "break": true, "const": true, "continue": true, "else": true,
	"for": true, "function": true, "if": true, "import": true, "let": true, "loop": true,
	"package": true, "namespace": true, "return": true, "var": true, "void": true, "while": true,
	"true": true, "false": true, "null": true,
}

func fieldMsg(err error) string {
	var fe *abi.FieldError
	if errors.As(err, &fe) {
		return fe.Msg
	}
	return err.Error()
}

// checkModules resolves each node's module and checks that it may run.
func (v *validator) checkModules() {
	v.versions = map[int]*registry.Version{}
	for i, n := range v.d.Nodes {
		loc := fmt.Sprintf("nodes[%d].module", i)
		id, version, ok := strings.Cut(n.Module, "@")
		if !ok || id == "" || version == "" {
			v.add(loc, "%q must name a module version as id@version, e.g. echo@1.0.0", n.Module)
			continue
		}
		if version == "latest" {
			v.add(loc, "pin a version: %q would change under a published workflow", n.Module)
			continue
		}
		mv, err := v.cat.Get(v.ctx, id, version)
		if err != nil {
			if registry.KindOf(err) == registry.KindNotFound {
				v.add(loc, "module %s is not installed", n.Module)
			} else {
				v.add(loc, "module %s: %v", n.Module, err)
			}
			continue
		}
		v.versions[i] = mv
		if mv.Grant == nil {
			v.add(loc, "module %s has no grant: an admin must grant it before a workflow can use it", n.Module)
		} else {
			for _, c := range mv.RequiredCapabilities {
				if !mv.Grant.Allows(c) {
					v.add(loc, "module %s imports functions of the %q capability, which its grant does not include", n.Module, c)
				}
			}
		}
		if len(n.Config) > 0 && !bytes.HasPrefix(bytes.TrimSpace(n.Config), []byte("{")) {
			v.add(fmt.Sprintf("nodes[%d].config", i), "must be a JSON object")
		} else if err := v.cat.CheckDocument(mv, "config", n.Config); err != nil {
			v.add(schemaLoc(fmt.Sprintf("nodes[%d]", i), err), "%s", registryMsg(err))
		}
		if n.TimeoutMS < 0 || n.TimeoutMS > abi.MaxTimeoutMS {
			v.add(fmt.Sprintf("nodes[%d].timeout_ms", i), "%d is out of range 0..%d", n.TimeoutMS, abi.MaxTimeoutMS)
		}
		switch n.OnError {
		case "", "fail", "continue", "route":
		default:
			v.add(fmt.Sprintf("nodes[%d].on_error", i), "%q is not one of fail, continue, route", n.OnError)
		}
		if r := n.Retry; r != nil {
			rl := fmt.Sprintf("nodes[%d].retry", i)
			switch {
			case r.MaxAttempts < 1 || r.MaxAttempts > MaxAttempts:
				v.add(rl+".max_attempts", "%d is out of range 1..%d", r.MaxAttempts, MaxAttempts)
			case r.BackoffMS < 0 || r.BackoffMS > 3_600_000:
				v.add(rl+".backoff_ms", "%d is out of range 0..3600000", r.BackoffMS)
			case r.Multiplier != 0 && (r.Multiplier < 1 || r.Multiplier > 10):
				v.add(rl+".multiplier", "%g is out of range 1..10", r.Multiplier)
			case r.MaxBackoffMS < 0 || r.MaxBackoffMS > 3_600_000:
				v.add(rl+".max_backoff_ms", "%d is out of range 0..3600000", r.MaxBackoffMS)
			}
		}
	}
}

// schemaLoc turns a registry error's field ("config.url") into a location
// under the node ("nodes[1].config.url").
func schemaLoc(prefix string, err error) string {
	var re *registry.Error
	if errors.As(err, &re) && re.Field != "" {
		return prefix + "." + re.Field
	}
	return prefix
}

func registryMsg(err error) string {
	var re *registry.Error
	if errors.As(err, &re) {
		return re.Msg
	}
	return err.Error()
}

// ports returns the output ports node i may leave by.
func (v *validator) ports(i int) []string {
	var ports []string
	if mv := v.versions[i]; mv != nil {
		ports = slices.Clone(mv.Manifest.OutputPorts())
	} else {
		ports = []string{abi.DefaultOutputPort}
	}
	if v.d.Nodes[i].OnError == "route" {
		ports = append(ports, abi.ErrorOutputPort)
	}
	return ports
}

// checkEdges checks endpoints, ports and duplicates; it reports whether
// the graph is sound enough to walk.
func (v *validator) checkEdges() bool {
	ok := true
	v.incoming = map[string][]int{}
	seen := map[string]int{}
	for i, e := range v.d.Edges {
		loc := fmt.Sprintf("edges[%d]", i)
		from, fromOK := v.index[e.From]
		_, toOK := v.index[e.To]
		if !fromOK {
			v.add(loc+".from", "no node has the id %q", e.From)
		}
		if !toOK {
			v.add(loc+".to", "no node has the id %q", e.To)
		}
		if !fromOK || !toOK {
			ok = false
			continue
		}
		if e.From == e.To {
			v.add(loc, "node %q cannot lead to itself", e.From)
			ok = false
			continue
		}
		port := e.Port
		if port == "" {
			port = abi.DefaultOutputPort
		}
		if ports := v.ports(from); !slices.Contains(ports, port) {
			hint := ""
			if port == abi.ErrorOutputPort {
				hint = `; set "on_error": "route" on the node to route its failures`
			}
			v.add(loc+".port", "node %q has no port %q (it has %s)%s", e.From, port, strings.Join(ports, ", "), hint)
		}
		key := e.From + "\x00" + port + "\x00" + e.To
		if j, dup := seen[key]; dup {
			v.add(loc, "repeats edges[%d] (%s:%s → %s)", j, e.From, port, e.To)
		}
		seen[key] = i
		v.incoming[e.To] = append(v.incoming[e.To], i)
	}
	return ok
}

// checkAcyclic finds a cycle, if any, and names its nodes in order.
func (v *validator) checkAcyclic() bool {
	out := map[string][]string{}
	for _, e := range v.d.Edges {
		out[e.From] = append(out[e.From], e.To)
	}
	const (
		unvisited = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var cycle []string
	var visit func(id string) bool
	visit = func(id string) bool {
		state[id] = onPath
		path = append(path, id)
		for _, next := range out[id] {
			switch state[next] {
			case onPath:
				start := slices.Index(path, next)
				cycle = append(slices.Clone(path[start:]), next)
				return true
			case unvisited:
				if visit(next) {
					return true
				}
			}
		}
		path = path[:len(path)-1]
		state[id] = done
		return false
	}
	for _, n := range v.d.Nodes {
		if state[n.ID] == unvisited && visit(n.ID) {
			v.add("edges", "the edges form a cycle: %s; a workflow must be acyclic", strings.Join(cycle, " → "))
			return false
		}
	}
	return true
}

// computeUpstream records every ancestor of every node (the graph is
// acyclic by now).
func (v *validator) computeUpstream() {
	v.upstream = map[string]map[string]bool{}
	var anc func(id string) map[string]bool
	anc = func(id string) map[string]bool {
		if a, ok := v.upstream[id]; ok {
			return a
		}
		a := map[string]bool{}
		v.upstream[id] = a
		for _, ei := range v.incoming[id] {
			from := v.d.Edges[ei].From
			a[from] = true
			for x := range anc(from) {
				a[x] = true
			}
		}
		return a
	}
	for _, n := range v.d.Nodes {
		anc(n.ID)
	}
}

// checkRefs reports `nodes.x` references to nodes that are not upstream
// of node id: their output cannot exist when the expression runs.
func (v *validator) checkRefs(loc, id string, a *cel.Ast) {
	for _, ref := range referencedNodes(a) {
		switch {
		case ref == id:
			v.add(loc, "reads nodes.%s, the node's own output, which does not exist yet", ref)
		case !v.upstream[id][ref]:
			if _, exists := v.index[ref]; !exists {
				v.add(loc, "reads nodes.%s, but no node has that id", ref)
			} else {
				v.add(loc, "reads nodes.%s, which is not upstream of %q, so its output is not available", ref, id)
			}
		}
	}
}

func (v *validator) checkNode(i int) {
	n := v.d.Nodes[i]
	if n.Input == nil {
		return
	}
	loc := fmt.Sprintf("nodes[%d].input", i)
	m := n.Input
	if (m.Expression == "") == (len(m.Fields) == 0) {
		v.add(loc, "set exactly one of expression and fields")
		return
	}
	schema := v.inputSchema(i)
	if m.Expression != "" {
		a, err := compileExpr(false, m.Expression)
		if err != nil {
			v.add(loc+".expression", "does not compile: %v", err)
			return
		}
		v.checkRefs(loc+".expression", n.ID, a)
		if kind := jsonKind(a.OutputType()); kind != "" && !schemaAllows(schema, kind) {
			v.add(loc+".expression", "produces %s, but the module's inputs schema wants %s", article(kind), schemaTypes(schema))
		}
		return
	}
	if !schemaAllows(schema, "object") {
		v.add(loc+".fields", "builds an object, but the module's inputs schema wants %s", schemaTypes(schema))
		return
	}
	props, _ := schema["properties"].(map[string]any)
	names := make([]string, 0, len(m.Fields))
	for name := range m.Fields {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		floc := loc + ".fields." + name
		a, err := compileExpr(false, m.Fields[name])
		if err != nil {
			v.add(floc, "does not compile: %v", err)
			continue
		}
		v.checkRefs(floc, n.ID, a)
		prop, declared := props[name].(map[string]any)
		if !declared && schema["additionalProperties"] == false {
			v.add(floc, "the module's inputs schema has no field %q and allows no others", name)
			continue
		}
		if kind := jsonKind(a.OutputType()); declared && kind != "" && !schemaAllows(prop, kind) {
			v.add(floc, "produces %s, but the module's inputs schema wants %s", article(kind), schemaTypes(prop))
		}
	}
	if req, ok := schema["required"].([]any); ok {
		for _, r := range req {
			if name, ok := r.(string); ok {
				if _, set := m.Fields[name]; !set {
					v.add(loc+".fields", "does not set %q, which the module's inputs schema requires", name)
				}
			}
		}
	}
}

// inputSchema returns node i's module inputs schema as a generic object,
// or nil when it declares none (or is not a plain object).
func (v *validator) inputSchema(i int) map[string]any {
	mv := v.versions[i]
	if mv == nil || len(mv.Manifest.Inputs) == 0 {
		return nil
	}
	var s map[string]any
	if json.Unmarshal(mv.Manifest.Inputs, &s) != nil {
		return nil
	}
	return s
}

// schemaAllows reports whether a JSON Schema's "type" admits kind. A
// schema without "type" admits everything; "number" admits integers and
// "integer" admits numbers (2.0 is an integer in JSON Schema).
func schemaAllows(schema map[string]any, kind string) bool {
	types := typeList(schema)
	if len(types) == 0 {
		return true
	}
	for _, t := range types {
		if t == kind || (t == "number" && kind == "integer") || (t == "integer" && kind == "number") {
			return true
		}
	}
	return false
}

func typeList(schema map[string]any) []string {
	switch t := schema["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, x := range t {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func schemaTypes(schema map[string]any) string {
	return strings.Join(typeList(schema), " or ")
}

func article(kind string) string {
	switch kind {
	case "integer", "array", "object":
		return "an " + kind
	}
	return "a " + kind
}

func (v *validator) checkCondition(i int) {
	e := v.d.Edges[i]
	if e.When == "" {
		return
	}
	loc := fmt.Sprintf("edges[%d].when", i)
	a, err := compileExpr(true, e.When)
	if err != nil {
		v.add(loc, "does not compile: %v", err)
		return
	}
	if k := jsonKind(a.OutputType()); k != "" && k != "boolean" {
		v.add(loc, "produces %s; a condition must be true or false", article(k))
	}
	// A condition may read its source node and anything upstream of it.
	for _, ref := range referencedNodes(a) {
		if ref != e.From && !v.upstream[e.From][ref] {
			v.add(loc, "reads nodes.%s, which has not run when the edge from %q is taken", ref, e.From)
		}
	}
}
