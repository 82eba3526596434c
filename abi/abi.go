// Package abi is the contract between the Millrace host and the WebAssembly
// modules it runs: the import module name, the host function names and the
// capability each one needs, the error numbers, and the JSON wire types that
// cross the boundary. ABI.md is the normative spec; this package mirrors it
// in Go so that host and guests cannot drift apart.
//
// The package imports only the standard library, so guests compiled with
// GOOS=wasip1 can import it without pulling in the server.
package abi

// Version is the ABI version this package describes. A module's manifest
// names the version it targets in its "abi" field.
const Version = 1

// SupportedVersions lists the ABI versions the host can run.
var SupportedVersions = []int{1}

// ImportModule is the Wasm import module that holds every Millrace host
// function of ABI v1.
const ImportModule = "millrace_v1"

// ExportHandle is the function a reactor module exports to handle one
// invocation (ABI.md §1): the host calls _initialize once, then this once
// per invocation, each time starting from the state _initialize left.
const ExportHandle = "millrace_handle"

// WASIModule is the WASI preview1 import module. Its clocks, random source and
// process exit work; it grants no filesystem, no sockets and no environment.
const WASIModule = "wasi_snapshot_preview1"

// DefaultOutputPort is the output port of a module that does not choose
// one; ErrorOutputPort is where a workflow routes a node's failure.
const (
	DefaultOutputPort = "default"
	ErrorOutputPort   = "error"
)

// ManifestSection is the name of the Wasm custom section that may carry the
// module's manifest.json, so a module can be uploaded as a single file.
const ManifestSection = "millrace.manifest"

// Errno is the result of every Millrace host function: zero on success.
type Errno uint32

// Error numbers returned by host functions. Their values are fixed by ABI v1.
const (
	ErrnoSuccess         Errno = 0 // the call succeeded
	ErrnoInvalidArgument Errno = 1 // a pointer, length, UTF-8 string or JSON document was malformed
	ErrnoDenied          Errno = 2 // the capability or the target (host, secret) was not granted
	ErrnoNotFound        Errno = 3 // the key or secret does not exist
	ErrnoTooLarge        Errno = 4 // a size limit was exceeded, or the buffer given is too small
	ErrnoIO              Errno = 5 // an upstream failure (connection refused, TLS, DNS)
	ErrnoTimeout         Errno = 6 // the operation ran past its deadline
	ErrnoNoResult        Errno = 7 // result_read was called with no pending result
)

var errnoNames = [...]string{
	ErrnoSuccess:         "success",
	ErrnoInvalidArgument: "invalid_argument",
	ErrnoDenied:          "denied",
	ErrnoNotFound:        "not_found",
	ErrnoTooLarge:        "too_large",
	ErrnoIO:              "io",
	ErrnoTimeout:         "timeout",
	ErrnoNoResult:        "no_result",
}

// String returns the errno's name as written in ABI.md.
func (e Errno) String() string {
	if int(e) < len(errnoNames) {
		return errnoNames[e]
	}
	return "unknown"
}

// Error makes a non-zero Errno usable as a Go error in guests.
func (e Errno) Error() string { return "millrace: " + e.String() }

// LogLevel is the severity passed to the log host function.
type LogLevel uint32

// Log levels, in increasing severity.
const (
	LogDebug LogLevel = 0
	LogInfo  LogLevel = 1
	LogWarn  LogLevel = 2
	LogError LogLevel = 3
)

var logLevelNames = [...]string{"debug", "info", "warn", "error"}

// String returns the level's lower-case name.
func (l LogLevel) String() string {
	if int(l) < len(logLevelNames) {
		return logLevelNames[l]
	}
	return "info"
}

// Capability names a class of host functions that an admin must grant.
type Capability string

// Capabilities of ABI v1. CapCore is always granted.
const (
	CapCore    Capability = "core"    // input, output, logs, progress
	CapKV      Capability = "kv"      // the module's own key-value namespace
	CapHTTP    Capability = "http"    // outbound HTTP to allowed hosts
	CapSecrets Capability = "secrets" // named secrets
	CapAccel   Capability = "accel"   // registered models, through the tensor ABI (§8)
)

// MaxPreviewBytes bounds the image of progress_preview.
const MaxPreviewBytes = 64 << 10

// Host function names in ImportModule.
const (
	FnInput      = "input"
	FnConfig     = "config"
	FnResultRead = "result_read"
	FnOutputSet  = "output_set"
	FnErrorSet   = "error_set"
	FnLog        = "log"
	FnProgress   = "progress"
	// FnProgressPreview is progress with a small preview image (a PNG or
	// JPEG of at most MaxPreviewBytes), for modules that make pictures.
	FnProgressPreview = "progress_preview"
	FnPortSet         = "port_set"
	FnKVGet           = "kv_get"
	FnKVSet           = "kv_set"
	FnKVDelete        = "kv_delete"
	FnKVAdd           = "kv_add"
	FnHTTPSend        = "http_send"
	FnSecretGet       = "secret_get"
)

// Functions maps every host function of ImportModule to the capability it
// needs. A module importing a name absent from this map is rejected.
var Functions = map[string]Capability{
	FnInput:           CapCore,
	FnConfig:          CapCore,
	FnResultRead:      CapCore,
	FnOutputSet:       CapCore,
	FnErrorSet:        CapCore,
	FnLog:             CapCore,
	FnProgress:        CapCore,
	FnProgressPreview: CapCore,
	FnPortSet:         CapCore,
	FnKVGet:           CapKV,
	FnKVSet:           CapKV,
	FnKVDelete:        CapKV,
	FnKVAdd:           CapKV,
	FnHTTPSend:        CapHTTP,
	FnSecretGet:       CapSecrets,
}

// ImportCapability returns the capability an imported function needs:
// each millrace_v1 function's, and CapAccel for every function of NNModule
// and NNExtModule. ok is false for a function the ABI does not define
// (WASI preview1 functions included: they need no capability).
func ImportCapability(module, name string) (c Capability, ok bool) {
	switch module {
	case ImportModule:
		c, ok = Functions[name]
		return c, ok
	case NNModule:
		return CapAccel, NNFunctions[name]
	case NNExtModule:
		return CapAccel, NNExtFunctions[name]
	}
	return "", false
}

// WASIFunctions is the set of wasi_snapshot_preview1 functions a module may
// import. Filesystem and socket calls are present because Go's runtime
// imports them, but no directory is ever mounted and no socket is ever
// opened, so they fail with EBADF or ENOTSUP.
var WASIFunctions = map[string]bool{
	"args_get": true, "args_sizes_get": true,
	"environ_get": true, "environ_sizes_get": true,
	"clock_res_get": true, "clock_time_get": true,
	"fd_advise": true, "fd_allocate": true, "fd_close": true, "fd_datasync": true,
	"fd_fdstat_get": true, "fd_fdstat_set_flags": true, "fd_fdstat_set_rights": true,
	"fd_filestat_get": true, "fd_filestat_set_size": true, "fd_filestat_set_times": true,
	"fd_pread": true, "fd_prestat_get": true, "fd_prestat_dir_name": true,
	"fd_pwrite": true, "fd_read": true, "fd_readdir": true, "fd_renumber": true,
	"fd_seek": true, "fd_sync": true, "fd_tell": true, "fd_write": true,
	"path_create_directory": true, "path_filestat_get": true, "path_filestat_set_times": true,
	"path_link": true, "path_open": true, "path_readlink": true, "path_remove_directory": true,
	"path_rename": true, "path_symlink": true, "path_unlink_file": true,
	"poll_oneoff": true, "proc_exit": true, "proc_raise": true, "sched_yield": true,
	"random_get":  true,
	"sock_accept": true, "sock_recv": true, "sock_send": true, "sock_shutdown": true,
}
