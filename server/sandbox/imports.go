package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/millrace/millrace/abi"
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

var wasmMagic = []byte{0, 'a', 's', 'm', 1, 0, 0, 0}

// ParseImports lists a module's imports by reading its import section. It
// checks every length against the bytes that remain, so hostile input gives
// an error, never a panic or a large allocation.
func ParseImports(wasm []byte) ([]Import, error) {
	if !bytes.HasPrefix(wasm, wasmMagic) {
		return nil, abi.ErrNotWasm
	}
	r := reader{b: wasm, off: len(wasmMagic)}
	for !r.done() {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		body, err := r.bytes(size)
		if err != nil {
			return nil, fmt.Errorf("section %d: %w", id, err)
		}
		if id == 2 {
			return parseImportSection(body)
		}
	}
	return nil, nil
}

func parseImportSection(b []byte) ([]Import, error) {
	r := reader{b: b}
	n, err := r.u32()
	if err != nil {
		return nil, fmt.Errorf("import section: %w", err)
	}
	if int(n) > len(b) { // every import takes at least 3 bytes; this just bounds the allocation
		return nil, fmt.Errorf("import section claims %d imports in %d bytes", n, len(b))
	}
	imports := make([]Import, 0, n)
	for i := uint32(0); i < n; i++ {
		mod, err := r.name()
		if err != nil {
			return nil, fmt.Errorf("import %d: %w", i, err)
		}
		name, err := r.name()
		if err != nil {
			return nil, fmt.Errorf("import %d: %w", i, err)
		}
		kind, err := r.byte()
		if err != nil {
			return nil, fmt.Errorf("import %d: %w", i, err)
		}
		if err := r.skipImportDesc(ImportKind(kind)); err != nil {
			return nil, fmt.Errorf("import %d (%s.%s): %w", i, mod, name, err)
		}
		imports = append(imports, Import{Module: mod, Name: name, Kind: ImportKind(kind)})
	}
	return imports, nil
}

type reader struct {
	b   []byte
	off int
}

var errTruncated = errors.New("unexpected end of module")

func (r *reader) done() bool { return r.off >= len(r.b) }

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) u32() (uint32, error) {
	var v uint64
	for i := 0; i < 5; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if v > 0xffffffff {
				return 0, errors.New("LEB128 number overflows 32 bits")
			}
			return uint32(v), nil
		}
	}
	return 0, errors.New("LEB128 number longer than 5 bytes")
}

func (r *reader) bytes(n uint32) ([]byte, error) {
	if uint64(n) > uint64(len(r.b)-r.off) {
		return nil, errTruncated
	}
	b := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return b, nil
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	b, err := r.bytes(n)
	return string(b), err
}

func (r *reader) limits() error {
	flag, err := r.byte()
	if err != nil {
		return err
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flag&1 != 0 {
		_, err = r.u32()
	}
	return err
}

func (r *reader) skipImportDesc(kind ImportKind) error {
	switch kind {
	case ImportFunc:
		_, err := r.u32()
		return err
	case ImportTable:
		if _, err := r.byte(); err != nil {
			return err
		}
		return r.limits()
	case ImportMemory:
		return r.limits()
	case ImportGlobal:
		if _, err := r.byte(); err != nil {
			return err
		}
		_, err := r.byte()
		return err
	case ImportTag:
		if _, err := r.byte(); err != nil {
			return err
		}
		_, err := r.u32()
		return err
	}
	return fmt.Errorf("unknown import kind 0x%02x", byte(kind))
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
