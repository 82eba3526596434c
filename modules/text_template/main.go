// Command text_template is the Millrace module that renders a Go
// text/template (https://pkg.go.dev/text/template) with JSON data.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/template"

	millrace "github.com/millrace/millrace/guest-sdk"
	"github.com/millrace/millrace/modules/internal/jsonvalue"
)

func init() { millrace.Handle(run) }

func main() {}

type input struct {
	Template string          `json:"template"`
	Data     json.RawMessage `json:"data"`
}

type output struct {
	Text string `json:"text"`
}

// run renders the template with only the built-in functions: templates
// come from users, and the built-ins cannot reach anything outside the
// data.
func run(_ context.Context, in input) (output, error) {
	if in.Template == "" {
		return output{}, errors.New("input: template is required")
	}
	data, err := decodeData(in.Data)
	if err != nil {
		return output{}, fmt.Errorf("input: data: %w", err)
	}
	tmpl, err := template.New("template").Parse(in.Template)
	if err != nil {
		return output{}, fmt.Errorf("parsing the template: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, data); err != nil {
		return output{}, fmt.Errorf("executing the template: %w", err)
	}
	return output{Text: buf.String()}, nil
}

// decodeData decodes the data keeping integers as int64 (see jsonvalue);
// no data is nil.
func decodeData(doc json.RawMessage) (any, error) {
	if len(doc) == 0 {
		return nil, nil
	}
	return jsonvalue.Decode(doc)
}
