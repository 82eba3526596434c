//go:build !wasip1

package hostcall

import (
	"testing"

	"github.com/millrace/millrace/abi"
)

// stubHost returns a fixed input and implements nothing else.
type stubHost struct {
	Host
	input []byte
}

func (s stubHost) Input() []byte { return s.input }

// TestPendingResult checks the pending-result rules of ABI.md §3.1 that
// the SDK relies on natively.
func TestPendingResult(t *testing.T) {
	uninstall := Install(stubHost{input: []byte(`"hello"`)})
	defer uninstall()

	if errno := ResultRead(make([]byte, 10)); errno != abi.ErrnoNoResult {
		t.Fatalf("result_read with nothing pending: got %v, want no_result", errno)
	}
	var n uint32
	if errno := Input(&n); errno != abi.ErrnoSuccess || n != 7 {
		t.Fatalf("input: got %v, length %d", errno, n)
	}
	if errno := ResultRead(make([]byte, 6)); errno != abi.ErrnoTooLarge {
		t.Fatalf("result_read into a short buffer: got %v, want too_large", errno)
	}
	buf := []byte("..........")
	if errno := ResultRead(buf); errno != abi.ErrnoSuccess || string(buf) != `"hello"...` {
		t.Fatalf("result_read: got %v, %q", errno, buf)
	}
	if errno := ResultRead(buf); errno != abi.ErrnoNoResult {
		t.Fatalf("second result_read: got %v, want no_result", errno)
	}
}

func TestNoHostPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("a host call without a host did not panic")
		}
	}()
	var n uint32
	Input(&n)
}
