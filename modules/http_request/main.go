// Command http_request is the Millrace module that sends one HTTP request
// and returns the response. The host decides which URLs it may reach:
// the module requests every public host, and an admin's grant narrows it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	millrace "github.com/millrace/millrace/guest-sdk"
	"github.com/millrace/millrace/guest-sdk/millracehttp"
)

func init() { millrace.Handle(run) }

func main() {}

// input describes the request. JSON, when given, is sent as the body with
// Content-Type application/json unless the headers set another type. The
// method defaults to GET, or POST when there is a body.
type input struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	JSON    json.RawMessage   `json:"json"`
}

// output describes the response. Headers keep the first value of each
// header; JSON is the parsed body when the response says it is JSON.
type output struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	JSON    json.RawMessage   `json:"json,omitempty"`
}

func run(ctx context.Context, in input) (output, error) {
	if in.URL == "" {
		return output{}, errors.New("input: url is required")
	}
	body := []byte(in.Body)
	hasJSON := len(in.JSON) > 0 && string(in.JSON) != "null"
	if hasJSON {
		if in.Body != "" {
			return output{}, errors.New("input: give body or json, not both")
		}
		body = in.JSON
	}
	// As with curl -d, a body without a method means POST.
	method := strings.ToUpper(in.Method)
	switch {
	case method != "":
	case len(body) > 0:
		method = http.MethodPost
	default:
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, in.URL, bytes.NewReader(body))
	if err != nil {
		return output{}, fmt.Errorf("input: %w", err)
	}
	for k, v := range in.Headers {
		req.Header.Set(k, v)
	}
	if hasJSON && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}

	// The transport alone, not millracehttp.Client(): http.Client links
	// net/http's own transport (5 MB of Wasm) for its default, and the
	// host already follows redirects.
	resp, err := millracehttp.Transport{}.RoundTrip(req)
	if err != nil {
		return output{}, err
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(resp.Body)
	if err != nil {
		return output{}, fmt.Errorf("reading the response: %w", err)
	}
	millrace.Logger().Info("http request", "method", method, "url", req.URL.Redacted(), "status", resp.StatusCode)

	out := output{Status: resp.StatusCode, Headers: map[string]string{}, Body: string(respBody)}
	for k, vs := range resp.Header {
		if len(vs) > 0 {
			out.Headers[k] = vs[0]
		}
	}
	if isJSON(resp.Header.Get("Content-Type")) && json.Valid(respBody) {
		out.JSON = respBody
	}
	return out, nil
}

// isJSON reports whether a Content-Type names JSON: application/json or
// any type with the +json suffix (application/problem+json).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}
