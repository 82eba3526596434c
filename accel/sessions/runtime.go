package sessions

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ORTVersion is the ONNX Runtime version onnxruntime_go's C API headers
// come from (API version 24); the library must be this version or newer.
const ORTVersion = "1.24.1"

// DefaultLibraryPath is where `make accel-deps` puts the library, relative
// to the repository root.
const DefaultLibraryPath = "build/cache/onnxruntime/" + ORTVersion + "/libonnxruntime.so.1"

// The ONNX Runtime environment is process-wide (one OrtEnv, one loaded
// library), so it lives here rather than in a Manager. A failed load is
// not remembered: the next call tries again, so running `make accel-deps`
// makes a running service ready.
var runtime struct {
	mu   sync.Mutex
	path string // the library loaded, once loaded
}

// ErrLibrary wraps every failure to load the ONNX Runtime library.
var ErrLibrary = errors.New("ONNX Runtime library not loaded")

func libraryHint(path string) string {
	return fmt.Sprintf("run `make accel-deps` (it fetches ONNX Runtime %s into %s) or point -ort-lib / MILLRACE_ORT_LIB at a libonnxruntime.so of ONNX Runtime %s or newer; tried %q",
		ORTVersion, DefaultLibraryPath, ORTVersion, path)
}

// initRuntime loads the ONNX Runtime library at path and creates the
// environment, once per process.
func initRuntime(path string) error {
	runtime.mu.Lock()
	defer runtime.mu.Unlock()
	if strings.Contains(path, "/") {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("%w: %s is missing: %s", ErrLibrary, path, libraryHint(path))
		}
	}
	if ort.IsInitialized() {
		if path != runtime.path {
			return fmt.Errorf("%w: this process already loaded ONNX Runtime from %s and cannot load %s too", ErrLibrary, runtime.path, path)
		}
		return nil
	}
	ort.SetSharedLibraryPath(path)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("%w: %v: %s", ErrLibrary, err, libraryHint(path))
	}
	runtime.path = path
	return nil
}

// RuntimeVersion is the loaded ONNX Runtime's version, or "" before one
// is loaded.
func RuntimeVersion() string {
	runtime.mu.Lock()
	defer runtime.mu.Unlock()
	if !ort.IsInitialized() {
		return ""
	}
	return ort.GetVersion()
}
