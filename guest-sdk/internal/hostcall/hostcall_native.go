//go:build !wasip1

package hostcall

import (
	"sync"

	"github.com/millrace/millrace/abi"
)

// Host is a fake Millrace host for native builds. Its methods receive the
// same bytes the real host functions would read from guest memory, and
// return documents rather than lengths: this package keeps them as the
// pending result, as the real host does. Implementations must copy any
// slice they keep.
type Host interface {
	Input() []byte
	Config() []byte
	OutputSet(doc []byte) abi.Errno
	ErrorSet(msg string) abi.Errno
	Log(level abi.LogLevel, msg string, attrs []byte) abi.Errno
	Progress(done, total uint32, msg string) abi.Errno
	PortSet(name string) abi.Errno
	KVGet(key string) ([]byte, abi.Errno)
	KVSet(key string, value []byte) abi.Errno
	KVDelete(key string) abi.Errno
	KVAdd(key string, delta int64) (int64, abi.Errno)
	HTTPSend(req []byte) ([]byte, abi.Errno)
	SecretGet(name string) ([]byte, abi.Errno)
}

// mu serialises host calls, as a single-threaded Wasm instance does, and
// guards the installed host and its pending result.
var (
	mu         sync.Mutex
	current    Host
	pending    []byte
	hasPending bool
)

// Install makes h the host of every call until the returned function is
// called. Only one host can be installed at a time.
func Install(h Host) (uninstall func()) {
	mu.Lock()
	defer mu.Unlock()
	if current != nil {
		panic("millrace: a fake host is already installed")
	}
	current, pending, hasPending = h, nil, false
	return func() {
		mu.Lock()
		defer mu.Unlock()
		current, pending, hasPending = nil, nil, false
	}
}

// host returns the installed host; the caller holds mu.
func host() Host {
	if current == nil {
		panic("millrace: no host: build with GOOS=wasip1 GOARCH=wasm to run under Millrace, " +
			"or use the millracetest package in tests")
	}
	return current
}

// setPending keeps b as the pending result and reports its length; the
// caller holds mu.
func setPending(b []byte, errno abi.Errno, outLen *uint32) abi.Errno {
	if errno != abi.ErrnoSuccess {
		return errno
	}
	pending, hasPending = b, true
	*outLen = uint32(len(b))
	return abi.ErrnoSuccess
}

// Input makes the invocation's input the pending result.
func Input(outLen *uint32) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	return setPending(host().Input(), abi.ErrnoSuccess, outLen)
}

// Config makes the invocation's config the pending result.
func Config(outLen *uint32) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	return setPending(host().Config(), abi.ErrnoSuccess, outLen)
}

// ResultRead copies the pending result into buf.
func ResultRead(buf []byte) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	host()
	if !hasPending {
		return abi.ErrnoNoResult
	}
	if len(buf) < len(pending) {
		return abi.ErrnoTooLarge
	}
	copy(buf, pending)
	pending, hasPending = nil, false
	return abi.ErrnoSuccess
}

// OutputSet sets the invocation's output to the JSON document doc.
func OutputSet(doc []byte) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	return host().OutputSet(doc)
}

// ErrorSet fails the invocation with msg.
func ErrorSet(msg string) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	return host().ErrorSet(msg)
}

// Log appends a log record; attrs is a JSON object or empty.
func Log(level abi.LogLevel, msg string, attrs []byte) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	return host().Log(level, msg, attrs)
}

// PreviewHost is a fake host that takes progress_preview; one that does
// not gets the report without its image.
type PreviewHost interface {
	ProgressPreview(done, total uint32, msg string, image []byte) abi.Errno
}

// ProgressPreview reports done of total units with a preview image.
func ProgressPreview(done, total uint32, msg string, image []byte) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	if h, ok := host().(PreviewHost); ok {
		return h.ProgressPreview(done, total, msg, image)
	}
	return host().Progress(done, total, msg)
}

// Progress reports done of total units.
func Progress(done, total uint32, msg string) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	return host().Progress(done, total, msg)
}

// PortSet chooses the output port.
func PortSet(name string) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	return host().PortSet(name)
}

// KVGet makes the value stored under key the pending result.
func KVGet(key string, outLen *uint32) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	v, errno := host().KVGet(key)
	return setPending(v, errno, outLen)
}

// KVSet stores value under key.
func KVSet(key string, value []byte) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	return host().KVSet(key, value)
}

// KVDelete deletes key.
func KVDelete(key string) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	return host().KVDelete(key)
}

// KVAdd adds delta to the integer under key and writes the sum to out.
func KVAdd(key string, delta int64, out *int64) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	v, errno := host().KVAdd(key, delta)
	if errno == abi.ErrnoSuccess {
		*out = v
	}
	return errno
}

// HTTPSend sends the abi.HTTPRequest document req and makes the response
// document the pending result.
func HTTPSend(req []byte, outLen *uint32) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	resp, errno := host().HTTPSend(req)
	return setPending(resp, errno, outLen)
}

// SecretGet makes the named secret's value the pending result.
func SecretGet(name string, outLen *uint32) abi.Errno {
	mu.Lock()
	defer mu.Unlock()
	v, errno := host().SecretGet(name)
	return setPending(v, errno, outLen)
}

// Installed reports whether a fake host is installed: natively, a module's
// init-time Handle only registers its handler when none is.
func Installed() bool {
	mu.Lock()
	defer mu.Unlock()
	return current != nil
}
