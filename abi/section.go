package abi

import (
	"bytes"
	"errors"
	"fmt"
)

var wasmHeader = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// ErrNotWasm is returned for bytes that do not start with the Wasm binary
// header (magic number and version 1).
var ErrNotWasm = errors.New("not a WebAssembly binary: missing the \\0asm header with version 1")

// ManifestFromWasm returns the payload of the module's ManifestSection custom
// section, or ok=false when there is none. It walks only the section
// headers, so it is cheap and safe on hostile input: every length is checked
// against the bytes that remain.
func ManifestFromWasm(wasm []byte) (manifest []byte, ok bool, err error) {
	if !bytes.HasPrefix(wasm, wasmHeader) {
		return nil, false, ErrNotWasm
	}
	rest := wasm[len(wasmHeader):]
	for len(rest) > 0 {
		id := rest[0]
		size, n, err := readVarU32(rest[1:])
		if err != nil {
			return nil, false, fmt.Errorf("section at offset %d: %w", len(wasm)-len(rest), err)
		}
		body := rest[1+n:]
		if uint64(size) > uint64(len(body)) {
			return nil, false, fmt.Errorf("section at offset %d claims %d bytes but only %d remain", len(wasm)-len(rest), size, len(body))
		}
		body = body[:size]
		rest = rest[1+n+int(size):]
		if id != 0 {
			continue
		}
		nameLen, m, err := readVarU32(body)
		if err != nil || uint64(nameLen) > uint64(len(body)-m) {
			return nil, false, fmt.Errorf("custom section at offset %d has a malformed name", len(wasm)-len(rest)-int(size))
		}
		if string(body[m:m+int(nameLen)]) == ManifestSection {
			if ok {
				return nil, false, fmt.Errorf("the module has more than one %q custom section", ManifestSection)
			}
			manifest, ok = body[m+int(nameLen):], true
		}
	}
	return manifest, ok, nil
}

// AppendManifestSection returns wasm with a ManifestSection custom section
// holding manifest appended at the end. Custom sections may appear anywhere
// and do not change what the module does.
func AppendManifestSection(wasm, manifest []byte) []byte {
	name := []byte(ManifestSection)
	var payload []byte
	payload = appendVarU32(payload, uint32(len(name)))
	payload = append(payload, name...)
	payload = append(payload, manifest...)
	out := append([]byte(nil), wasm...)
	out = append(out, 0)
	out = appendVarU32(out, uint32(len(payload)))
	return append(out, payload...)
}

// readVarU32 decodes an unsigned LEB128 number of at most 5 bytes.
func readVarU32(b []byte) (uint32, int, error) {
	var v uint64
	for i := 0; i < 5; i++ {
		if i >= len(b) {
			return 0, 0, errors.New("truncated LEB128 number")
		}
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if v > 0xffffffff {
				return 0, 0, errors.New("LEB128 number overflows 32 bits")
			}
			return uint32(v), i + 1, nil
		}
	}
	return 0, 0, errors.New("LEB128 number longer than 5 bytes")
}

func appendVarU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		b = append(b, c)
		if v == 0 {
			return b
		}
	}
}
