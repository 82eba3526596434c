// Package engine runs workflows: durable DAGs of module invocations. This
// file is the workflow definition, the JSON document users write; see
// validate.go for what saving checks.
package engine

import (
	"encoding/json"
	"errors"
	"regexp"
	"strconv"

	"github.com/millrace/millrace/internal/strictjson"
)

// Limits on a definition, so a hostile document cannot make validation or
// execution expensive.
const (
	MaxDefinitionBytes = 1 << 20
	MaxNodes           = 500
	MaxEdges           = 2000
	MaxExpressionBytes = 4096
	MaxAttempts        = 10
)

// Definition is a workflow: nodes that run modules, and edges between them.
type Definition struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema,omitempty" doc:"JSON Schema of the run input."`
	Nodes       []Node          `json:"nodes"`
	Edges       []Edge          `json:"edges,omitempty"`
}

// Node runs one module version.
type Node struct {
	ID string `json:"id"`
	// Module is "id@version", pinned so that a published workflow always
	// runs the same code.
	Module string          `json:"module"`
	Config json.RawMessage `json:"config,omitempty"`
	// Input maps the run input and upstream outputs to the module's input.
	// Without it a node with exactly one incoming edge gets that upstream
	// node's output, and any other node gets the run input.
	Input     *Mapping `json:"input,omitempty"`
	Retry     *Retry   `json:"retry,omitempty"`
	TimeoutMS int      `json:"timeout_ms,omitempty" doc:"Caps the module's granted timeout; it cannot raise it."`
	// OnError says what a failure (after retries) does: "fail" the run
	// (default), "continue" as if the node succeeded with a null output, or
	// "route" the failure to the node's "error" port.
	OnError string `json:"on_error,omitempty" enum:"fail,continue,route"`
}

// Mapping builds a module's input with CEL. Exactly one of Expression
// (the whole input) and Fields (an object, one expression per field) is
// set. Expressions see `input` (the run input), `nodes` (each finished
// node's `output` and `port` by node id) and `run` (`id`, `workflow`,
// `version`).
type Mapping struct {
	Expression string            `json:"expression,omitempty"`
	Fields     map[string]string `json:"fields,omitempty"`
}

// Retry retries a failed node with exponential backoff.
type Retry struct {
	MaxAttempts  int     `json:"max_attempts" doc:"Total attempts, 1 to 10."`
	BackoffMS    int     `json:"backoff_ms,omitempty" doc:"Delay before the second attempt; default 1000."`
	Multiplier   float64 `json:"multiplier,omitempty" doc:"Growth of the delay per attempt; default 2."`
	MaxBackoffMS int     `json:"max_backoff_ms,omitempty" doc:"Upper bound of the delay; default 60000."`
}

// Edge leads from a port of one node to another node. When, if set, is a
// CEL condition that must hold for the edge to be taken; it also sees
// `output` and `port`, the source node's.
type Edge struct {
	From string `json:"from"`
	Port string `json:"port,omitempty" doc:"The source's output port; default \"default\"."`
	To   string `json:"to"`
	When string `json:"when,omitempty"`
}

var nodeIDPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// Problem is one thing wrong with a definition, at a JSON path such as
// "nodes[2].input.fields.url" or "edges[0].when".
type Problem struct {
	Location string `json:"location"`
	Message  string `json:"message"`
}

// InvalidError lists every problem found in a definition.
type InvalidError struct {
	Problems []Problem
}

func (e *InvalidError) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0].Location + ": " + e.Problems[0].Message
	}
	msg := e.Problems[0].Location + ": " + e.Problems[0].Message
	return msg + " (and " + strconv.Itoa(len(e.Problems)-1) + " more problems)"
}

// ParseDefinition decodes a definition strictly. It checks the document's
// shape only; Validate checks its meaning.
func ParseDefinition(data []byte) (*Definition, error) {
	if len(data) > MaxDefinitionBytes {
		return nil, &InvalidError{[]Problem{{"", "the definition is over the 1 MiB limit"}}}
	}
	var d Definition
	if err := strictjson.Decode(data, &d); err != nil {
		var se *strictjson.Error
		if errors.As(err, &se) {
			return nil, &InvalidError{[]Problem{{se.Path, se.Msg}}}
		}
		return nil, err
	}
	return &d, nil
}
