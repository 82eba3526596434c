package registry

import (
	"errors"
	"fmt"
)

// Kind classifies registry errors; the HTTP layer maps each to one status.
type Kind int

// Error kinds.
const (
	KindInvalid    Kind = iota + 1 // the request is malformed: 422
	KindTooLarge                   // over a size limit: 413
	KindConflict                   // clashes with what exists: 409
	KindNotFound                   // no such module or version: 404
	KindNotGranted                 // the module version cannot run as granted: 403
	KindBusy                       // no capacity right now: 503
)

// Error is a registry failure with the field it concerns, so API clients
// can point at the right place.
type Error struct {
	Kind  Kind
	Field string // e.g. "manifest.capabilities.secrets[0]", "wasm", "input.name"
	Msg   string
	Err   error // the cause, if any
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

func errorf(kind Kind, field, format string, args ...any) *Error {
	return &Error{Kind: kind, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// KindOf returns the kind of a registry error, or 0 for other errors.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}
