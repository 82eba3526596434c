package millrace

import (
	"encoding/json"
	"fmt"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/guest-sdk/internal/hostcall"
)

// HTTPSend sends one request through the host's http_send function. The
// URL must match a granted allowed_outbound_hosts entry, else the call
// fails with abi.ErrnoDenied; connection failures are abi.ErrnoIO. An HTTP
// error status is not an error: it is in the response's Status. Code
// written against net/http can use the client of package millracehttp.
func HTTPSend(req abi.HTTPRequest) (abi.HTTPResponse, error) {
	var resp abi.HTTPResponse
	doc, err := json.Marshal(req)
	if err != nil {
		return resp, fmt.Errorf("http_send: encoding the request: %w", err)
	}
	raw, err := readDocument(abi.FnHTTPSend, func(outLen *uint32) abi.Errno {
		return hostcall.HTTPSend(doc, outLen)
	})
	if err != nil {
		return resp, err
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return resp, fmt.Errorf("http_send: decoding the response: %w", err)
	}
	return resp, nil
}
