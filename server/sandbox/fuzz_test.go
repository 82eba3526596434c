package sandbox

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/tetratelabs/wazero"
)

// oneMemoryPage is a module whose only content is an exported 64 KiB memory.
var oneMemoryPage = []byte{
	0, 'a', 's', 'm', 1, 0, 0, 0,
	5, 3, 1, 0, 1, // memory section: one memory, min 1 page
	7, 10, 1, 6, 'm', 'e', 'm', 'o', 'r', 'y', 2, 0, // export "memory"
}

// FuzzHostFunctions calls every host function with arbitrary pointers and
// lengths against a real wazero memory: none may panic, write outside the
// memory or return an errno the ABI does not define.
func FuzzHostFunctions(f *testing.F) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	mod, err := r.Instantiate(ctx, oneMemoryPage)
	if err != nil {
		f.Fatal(err)
	}
	mem := mod.Memory()
	db, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()

	f.Add(uint8(0), uint32(0), uint32(4), uint32(8), uint32(2), uint32(0), []byte(`{"a":1}`))
	f.Add(uint8(3), uint32(0), uint32(7), uint32(0), uint32(0), uint32(0), []byte(`{"x":2}`))
	f.Add(uint8(5), uint32(65530), uint32(100), uint32(0), uint32(0), uint32(0), []byte("key"))
	f.Add(uint8(7), uint32(0), uint32(3), uint32(16), uint32(4), uint32(65535), []byte("key"))
	f.Add(uint8(2), uint32(0xffffffff), uint32(0xffffffff), uint32(0), uint32(0), uint32(0), []byte{})
	f.Fuzz(func(t *testing.T, fn uint8, a, b, c, d, e uint32, data []byte) {
		if len(data) > 4096 {
			data = data[:4096]
		}
		mem.Write(0, data)
		inv := &Invocation{
			Namespace: "fuzz", Input: json.RawMessage(`{"in":1}`),
			Grant:  Grant{Capabilities: abi.Capabilities{KV: true, Secrets: []string{"S"}}},
			Limits: Limits{MemoryBytes: 1 << 20, MaxOutputBytes: 1024, MaxLogBytes: 1024, MaxKVValueBytes: 1024, MaxKVTotalBytes: 1 << 16, MaxHTTPBodyBytes: 1024},
			KV:     db,
		}
		call := newCall(inv)
		var errno abi.Errno
		switch fn % 14 {
		case 0:
			errno = call.input(mem, a)
		case 1:
			errno = call.config(mem, a)
		case 2:
			call.input(mem, 0)
			errno = call.resultRead(mem, a, b)
		case 3:
			errno = call.outputSet(mem, a, b)
		case 4:
			errno = call.errorSet(mem, a, b)
		case 5:
			errno = call.log(mem, a, b, c, d, e)
		case 6:
			errno = call.reportProgress(mem, a, b, c, d)
		case 7:
			errno = call.kvSet(ctx, mem, a, b, c, d)
		case 8:
			errno = call.kvGet(ctx, mem, a, b, c)
		case 9:
			errno = call.kvAdd(ctx, mem, a, b, int64(c)<<32|int64(d), e)
		case 10:
			errno = call.kvDelete(ctx, mem, a, b)
		case 11:
			errno = call.secretGet(ctx, mem, a, b, c)
		case 12:
			errno = call.httpSend(ctx, mem, a, b, c)
		case 13:
			errno = call.portSet(mem, a, b)
		}
		if errno > abi.ErrnoNoResult {
			t.Fatalf("errno %d is not defined by the ABI", errno)
		}
		if mem.Size() != 65536 {
			t.Fatalf("memory size changed to %d", mem.Size())
		}
		if call.hasOutput && !json.Valid(call.output) {
			t.Fatalf("accepted invalid JSON output %q", call.output)
		}
	})
}
