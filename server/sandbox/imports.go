package sandbox

import (
	"errors"
	"fmt"
	"slices"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/sandbox/internal/wasmbin"
)

// ImportKind is the kind of an imported item.
type ImportKind byte

// Import kinds, numbered as in the Wasm binary format.
const (
	ImportFunc   ImportKind = 0
	ImportTable  ImportKind = 1
	ImportMemory ImportKind = 2
	ImportGlobal ImportKind = 3
	ImportTag    ImportKind = 4
)

func (k ImportKind) String() string {
	switch k {
	case ImportFunc:
		return "function"
	case ImportTable:
		return "table"
	case ImportMemory:
		return "memory"
	case ImportGlobal:
		return "global"
	case ImportTag:
		return "tag"
	}
	return "unknown"
}

// Import is one entry of a module's import section.
type Import struct {
	Module string     `json:"module"`
	Name   string     `json:"name"`
	Kind   ImportKind `json:"-"`
}

func (i Import) String() string { return i.Module + "." + i.Name }

// ImportError rejects a module because of one import.
type ImportError struct {
	Import Import
	Reason string
}

func (e *ImportError) Error() string {
	return fmt.Sprintf("import %s: %s", e.Import, e.Reason)
}

// ParseImports lists a module's imports by reading its import section. It
// checks every length against the bytes that remain, so hostile input gives
// an error, never a panic or a large allocation.
func ParseImports(wasm []byte) ([]Import, error) {
	imps, err := wasmbin.Imports(wasm)
	if errors.Is(err, wasmbin.ErrNotWasm) {
		return nil, abi.ErrNotWasm
	}
	if err != nil {
		return nil, err
	}
	out := make([]Import, len(imps))
	for i, imp := range imps {
		out[i] = Import{Module: imp.Module, Name: imp.Name, Kind: ImportKind(imp.Kind)}
	}
	return out, nil
}

// knownImportModule reports whether modules may import from name at all.
func knownImportModule(name string) bool {
	switch name {
	case abi.ImportModule, abi.WASIModule, abi.NNModule, abi.NNExtModule:
		return true
	}
	return false
}

// RequiredCapabilities returns the capabilities a module's imports need
// (millrace_v1's, and accel for the tensor ABI's), in a stable order,
// without CapCore.
func RequiredCapabilities(imports []Import) []abi.Capability {
	var caps []abi.Capability
	for _, imp := range imports {
		if c, ok := abi.ImportCapability(imp.Module, imp.Name); ok && c != abi.CapCore && !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	slices.Sort(caps)
	return caps
}

// CheckImports verifies that every import is part of the ABI and that each
// capability the imports need is requested. It returns an *ImportError
// naming the first import at fault.
func CheckImports(imports []Import, requested abi.Capabilities) error {
	for _, imp := range imports {
		if imp.Kind != ImportFunc {
			return &ImportError{imp, fmt.Sprintf("imports a %s; modules may import only functions of %s, %s, %s and %s", imp.Kind, abi.ImportModule, abi.WASIModule, abi.NNModule, abi.NNExtModule)}
		}
		switch imp.Module {
		case abi.WASIModule:
			if !abi.WASIFunctions[imp.Name] {
				return &ImportError{imp, "is not a WASI preview1 function"}
			}
		case abi.ImportModule, abi.NNModule, abi.NNExtModule:
			c, ok := abi.ImportCapability(imp.Module, imp.Name)
			if !ok {
				what := fmt.Sprintf("a function of ABI v%d", abi.Version)
				if imp.Module == abi.NNModule {
					what = "a function of WASI-NN preview1 as Millrace implements it (§8)"
				}
				return &ImportError{imp, fmt.Sprintf("is not %s (see abi/ABI.md)", what)}
			}
			if !requested.Requests(c) {
				hint := ""
				if c == abi.CapAccel {
					hint = `: add "accel": {"models": [...]} to the manifest's capabilities`
				}
				return &ImportError{imp, fmt.Sprintf("needs the %q capability, which the manifest does not request%s", c, hint)}
			}
		default:
			return &ImportError{imp, fmt.Sprintf("module %q is not part of the ABI; only %s, %s, %s and %s may be imported", imp.Module, abi.ImportModule, abi.WASIModule, abi.NNModule, abi.NNExtModule)}
		}
	}
	return nil
}

// checkGranted refuses an invocation whose module imports a capability the
// grant lacks: such a function is not linked, so the instance cannot start.
func checkGranted(imports []Import, g *Grant) *Failure {
	for _, imp := range imports {
		if c, ok := abi.ImportCapability(imp.Module, imp.Name); ok && !g.Allows(c) {
			return failf(FailDenied, "the module imports %s, which needs the %q capability, and it is not granted", imp, c)
		}
	}
	return nil
}
