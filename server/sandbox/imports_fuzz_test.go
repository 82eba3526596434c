package sandbox_test

import (
	"testing"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/sandbox"
)

// FuzzParseImports feeds arbitrary bytes to the upload validator's import
// parser: it must never panic, and what it accepts must round-trip through
// CheckImports without panicking either.
func FuzzParseImports(f *testing.F) {
	f.Add(rawModule{memPages: 1}.bytes())
	f.Add(rawModule{imports: []rawImport{{"env", "x", 0}, {abi.ImportModule, "kv_get", 0}}, memPages: 1}.bytes())
	f.Add(rawModule{imports: []rawImport{{abi.WASIModule, "fd_write", 0}, {"m", "g", 3}, {"m", "mem", 2}}, noMemory: true}.bytes())
	f.Add([]byte{0, 'a', 's', 'm', 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte("not wasm"))
	f.Fuzz(func(t *testing.T, wasm []byte) {
		imports, err := sandbox.ParseImports(wasm)
		if err != nil {
			return
		}
		if len(imports) > len(wasm) {
			t.Fatalf("%d imports from %d bytes", len(imports), len(wasm))
		}
		_ = sandbox.CheckImports(imports, abi.Capabilities{KV: true, Secrets: []string{"A"}, AllowedOutboundHosts: []string{"https://x.example"}})
		_ = sandbox.RequiredCapabilities(imports)
	})
}
