package datasets

import (
	"fmt"
	"strings"
)

// Kind classifies an Error, so the API can choose a status code.
type Kind int

// The kinds of Error.
const (
	KindInvalid  Kind = iota // a bad file or option: 422
	KindTooLarge             // over a size or count limit: 413
	KindNotFound             // no such dataset or version: 404
	KindConflict             // a concurrent import, or a version in use: 409
)

// Error is a problem with an import or a request, precise enough to fix:
// which option (Field) or where in which file (File, Line, Column).
type Error struct {
	Kind Kind
	// Field is the request field at fault, as the API names it
	// ("body.file", "query.text_column"); empty when none is.
	Field string
	// File is the file inside a zip archive; empty for the upload itself.
	File string
	// Line and Column are 1-based; 0 when unknown or not applicable.
	// Column counts characters (runes) from the start of the line.
	Line, Column int
	Msg          string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ", column %d", e.Column)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// at is an invalid-file error at a position in the upload.
func at(line, column int, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: "body.file", Line: line, Column: column, Msg: fmt.Sprintf(format, args...)}
}
