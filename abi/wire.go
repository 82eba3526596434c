package abi

// HTTPRequest is the JSON document a guest passes to http_send.
type HTTPRequest struct {
	Method  string              `json:"method"`            // GET when empty
	URL     string              `json:"url"`               // absolute http or https URL
	Headers map[string][]string `json:"headers,omitempty"` // canonicalised by the host
	Body    []byte              `json:"body,omitempty"`    // base64 in JSON
}

// HTTPResponse is the JSON document http_send leaves as the pending result.
type HTTPResponse struct {
	Status  int                 `json:"status"`
	Headers map[string][]string `json:"headers,omitempty"`
	Body    []byte              `json:"body,omitempty"` // base64 in JSON
}
