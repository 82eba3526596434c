package client

import (
	"io"
	"strings"
	"testing"
)

// After Infer returns, its request body must read nothing more of the
// caller's buffers, which the caller may already be reusing.
func TestReturnGuardStopsReadsAfterClose(t *testing.T) {
	g := &returnGuard{r: strings.NewReader("tensor bytes")}
	buf := make([]byte, 6)
	if n, err := g.Read(buf); err != nil || string(buf[:n]) != "tensor" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	g.close()
	if n, err := g.Read(buf); n != 0 || err == nil || err == io.EOF {
		t.Fatalf("read %d bytes, err %v after close; want 0 and an error", n, err)
	}
}
