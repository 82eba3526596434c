//go:build wasip1

package hostcall

import (
	"runtime"
	"unsafe"

	"github.com/millrace/millrace/abi"
)

// The declarations below follow ABI.md §4 exactly: every parameter is an
// i32 except kv_add's delta, and every function returns an i32 errno.
// Pointers are passed as uint32 offsets into linear memory, which is what
// an address in GOARCH=wasm is.

//go:wasmimport millrace_v1 input
func input(outLenPtr uint32) uint32

//go:wasmimport millrace_v1 config
func config(outLenPtr uint32) uint32

//go:wasmimport millrace_v1 result_read
func resultRead(bufPtr, bufLen uint32) uint32

//go:wasmimport millrace_v1 output_set
func outputSet(ptr, n uint32) uint32

//go:wasmimport millrace_v1 error_set
func errorSet(ptr, n uint32) uint32

//go:wasmimport millrace_v1 log
func log(level, msgPtr, msgLen, attrsPtr, attrsLen uint32) uint32

//go:wasmimport millrace_v1 progress
func progress(done, total, msgPtr, msgLen uint32) uint32

//go:wasmimport millrace_v1 progress_preview
func progressPreview(done, total, msgPtr, msgLen, imagePtr, imageLen uint32) uint32

//go:wasmimport millrace_v1 port_set
func portSet(namePtr, nameLen uint32) uint32

//go:wasmimport millrace_v1 kv_get
func kvGet(keyPtr, keyLen, outLenPtr uint32) uint32

//go:wasmimport millrace_v1 kv_set
func kvSet(keyPtr, keyLen, valPtr, valLen uint32) uint32

//go:wasmimport millrace_v1 kv_delete
func kvDelete(keyPtr, keyLen uint32) uint32

//go:wasmimport millrace_v1 kv_add
func kvAdd(keyPtr, keyLen uint32, delta int64, outValuePtr uint32) uint32

//go:wasmimport millrace_v1 http_send
func httpSend(reqPtr, reqLen, outLenPtr uint32) uint32

//go:wasmimport millrace_v1 secret_get
func secretGet(namePtr, nameLen, outLenPtr uint32) uint32

// bytesPtr returns the address of b's first byte, or 0 for an empty slice:
// &b[0] would panic, and the host accepts (0, 0) as an empty range.
func bytesPtr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// stringPtr is bytesPtr for strings; the host only reads them, so passing
// the string's own bytes saves a copy.
func stringPtr(s string) uint32 {
	if len(s) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.StringData(s))))
}

func u32Ptr(p *uint32) uint32 { return uint32(uintptr(unsafe.Pointer(p))) }

// Input makes the invocation's input the pending result.
func Input(outLen *uint32) abi.Errno {
	e := input(u32Ptr(outLen))
	runtime.KeepAlive(outLen)
	return abi.Errno(e)
}

// Config makes the invocation's config the pending result.
func Config(outLen *uint32) abi.Errno {
	e := config(u32Ptr(outLen))
	runtime.KeepAlive(outLen)
	return abi.Errno(e)
}

// ResultRead copies the pending result into buf.
func ResultRead(buf []byte) abi.Errno {
	e := resultRead(bytesPtr(buf), uint32(len(buf)))
	runtime.KeepAlive(buf)
	return abi.Errno(e)
}

// OutputSet sets the invocation's output to the JSON document doc.
func OutputSet(doc []byte) abi.Errno {
	e := outputSet(bytesPtr(doc), uint32(len(doc)))
	runtime.KeepAlive(doc)
	return abi.Errno(e)
}

// ErrorSet fails the invocation with msg.
func ErrorSet(msg string) abi.Errno {
	e := errorSet(stringPtr(msg), uint32(len(msg)))
	runtime.KeepAlive(msg)
	return abi.Errno(e)
}

// Log appends a log record; attrs is a JSON object or empty.
func Log(level abi.LogLevel, msg string, attrs []byte) abi.Errno {
	e := log(uint32(level), stringPtr(msg), uint32(len(msg)), bytesPtr(attrs), uint32(len(attrs)))
	runtime.KeepAlive(msg)
	runtime.KeepAlive(attrs)
	return abi.Errno(e)
}

// ProgressPreview reports done of total units with a preview image.
func ProgressPreview(done, total uint32, msg string, image []byte) abi.Errno {
	e := progressPreview(done, total, stringPtr(msg), uint32(len(msg)), bytesPtr(image), uint32(len(image)))
	runtime.KeepAlive(msg)
	runtime.KeepAlive(image)
	return abi.Errno(e)
}

// Progress reports done of total units.
func Progress(done, total uint32, msg string) abi.Errno {
	e := progress(done, total, stringPtr(msg), uint32(len(msg)))
	runtime.KeepAlive(msg)
	return abi.Errno(e)
}

// PortSet chooses the output port.
func PortSet(name string) abi.Errno {
	e := portSet(stringPtr(name), uint32(len(name)))
	runtime.KeepAlive(name)
	return abi.Errno(e)
}

// KVGet makes the value stored under key the pending result.
func KVGet(key string, outLen *uint32) abi.Errno {
	e := kvGet(stringPtr(key), uint32(len(key)), u32Ptr(outLen))
	runtime.KeepAlive(key)
	runtime.KeepAlive(outLen)
	return abi.Errno(e)
}

// KVSet stores value under key.
func KVSet(key string, value []byte) abi.Errno {
	e := kvSet(stringPtr(key), uint32(len(key)), bytesPtr(value), uint32(len(value)))
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	return abi.Errno(e)
}

// KVDelete deletes key.
func KVDelete(key string) abi.Errno {
	e := kvDelete(stringPtr(key), uint32(len(key)))
	runtime.KeepAlive(key)
	return abi.Errno(e)
}

// KVAdd adds delta to the integer under key and writes the sum to out.
func KVAdd(key string, delta int64, out *int64) abi.Errno {
	e := kvAdd(stringPtr(key), uint32(len(key)), delta, uint32(uintptr(unsafe.Pointer(out))))
	runtime.KeepAlive(key)
	runtime.KeepAlive(out)
	return abi.Errno(e)
}

// HTTPSend sends the abi.HTTPRequest document req and makes the response
// document the pending result.
func HTTPSend(req []byte, outLen *uint32) abi.Errno {
	e := httpSend(bytesPtr(req), uint32(len(req)), u32Ptr(outLen))
	runtime.KeepAlive(req)
	runtime.KeepAlive(outLen)
	return abi.Errno(e)
}

// SecretGet makes the named secret's value the pending result.
func SecretGet(name string, outLen *uint32) abi.Errno {
	e := secretGet(stringPtr(name), uint32(len(name)), u32Ptr(outLen))
	runtime.KeepAlive(name)
	runtime.KeepAlive(outLen)
	return abi.Errno(e)
}

// Installed reports whether a host is there to call: under wasip1 the real
// one always is.
func Installed() bool { return true }
