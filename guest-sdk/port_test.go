//go:build !wasip1

package millrace_test

import (
	"context"
	"testing"

	"github.com/millrace/millrace/abi"
	millrace "github.com/millrace/millrace/guest-sdk"
	"github.com/millrace/millrace/guest-sdk/millracetest"
)

func TestSetPort(t *testing.T) {
	h := millracetest.NewHost()
	h.Ports = []string{"sunny", "rainy"}
	choose := func(ctx context.Context, port string) (string, error) { return port, millrace.SetPort(port) }
	if _, err := millracetest.Call(h, choose, "rainy"); err != nil || h.Port != "rainy" {
		t.Fatalf("got port %q, err %v", h.Port, err)
	}
	// Call reports a failure by its message, which names the call and errno.
	_, err := millracetest.Call(h, choose, "snowy")
	if err == nil || err.Error() != "port_set: "+abi.ErrnoInvalidArgument.String() {
		t.Fatalf("an undeclared port must be refused, got %v", err)
	}
}
