package engine

import "fmt"

// Limits cap the values that flow through runs. A node's output is also
// capped by its module's max_output_bytes, which the sandbox enforces.
// Zero fields take their defaults (DefaultLimits).
type Limits struct {
	// RunInputBytes caps a run's input, from any trigger; default 1 MiB.
	RunInputBytes int64
	// NodeInputBytes caps the input computed for a node (by its mapping,
	// or taken from its upstream node or the run input); default 64 MiB,
	// the largest output a module may be granted by default.
	NodeInputBytes int64
	// InlineBytes is the largest value a checkpoint keeps inline: larger
	// node outputs, node inputs and run outputs are stored as artifacts
	// and the checkpoint keeps a reference; default 256 KiB.
	InlineBytes int64
}

// DefaultLimits returns the limits a server has unless told otherwise.
func DefaultLimits() Limits {
	return Limits{RunInputBytes: 1 << 20, NodeInputBytes: 64 << 20, InlineBytes: 256 << 10}
}

// WithDefaults returns l with every unset (zero or negative) field set to
// its default.
func (l Limits) WithDefaults() Limits {
	d := DefaultLimits()
	if l.RunInputBytes <= 0 {
		l.RunInputBytes = d.RunInputBytes
	}
	if l.NodeInputBytes <= 0 {
		l.NodeInputBytes = d.NodeInputBytes
	}
	if l.InlineBytes <= 0 {
		l.InlineBytes = d.InlineBytes
	}
	return l
}

// LimitError refuses a value larger than one of the server's limits.
type LimitError struct {
	Field string // what was too large, e.g. "input"
	Size  int64  // its size in bytes
	Limit int64  // the limit in bytes
	Of    string // what the limit applies to, e.g. "run inputs"
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s is %d bytes, over the server's %d-byte limit on %s", e.Field, e.Size, e.Limit, e.Of)
}
