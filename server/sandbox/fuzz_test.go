package sandbox

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/accel/oip"
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
	f.Add(uint8(14), uint32(1), uint32(2), uint32(0), uint32(0), uint32(0), []byte("\x89PNG\r\n\x1a\n...."))
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
		switch fn % 15 {
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
		case 14:
			errno = call.reportPreview(mem, a, b, c, d, e, uint32(len(data)))
		}
		if errno > abi.ErrnoNoResult {
			t.Fatalf("errno %d is not defined by the ABI", errno)
		}
		// A call whose guest range lies (partly) outside the memory must
		// fail, never succeed on bytes from beyond it.
		outside := func(ptr, n uint32) bool { return uint64(ptr)+uint64(n) > uint64(mem.Size()) }
		if errno == abi.ErrnoSuccess {
			switch fn % 14 {
			case 3:
				if outside(a, b) {
					t.Fatalf("output_set succeeded on [%d, +%d) outside a %d-byte memory", a, b, mem.Size())
				}
			case 4:
				if outside(a, min(b, maxErrorBytes)) {
					t.Fatalf("error_set succeeded on [%d, +%d) outside a %d-byte memory", a, b, mem.Size())
				}
			case 13:
				if outside(a, min(b, 64)) {
					t.Fatalf("port_set succeeded on [%d, +%d) outside a %d-byte memory", a, b, mem.Size())
				}
			case 10:
				if outside(a, b) {
					t.Fatalf("kv_delete succeeded on a key [%d, +%d) outside a %d-byte memory", a, b, mem.Size())
				}
			}
		}
		if mem.Size() != 65536 {
			t.Fatalf("memory size changed to %d", mem.Size())
		}
		if call.hasOutput && !json.Valid(call.output) {
			t.Fatalf("accepted invalid JSON output %q", call.output)
		}
	})
}

// FuzzNNHostFunctions calls the tensor ABI's host functions with
// arbitrary handles, pointers and tensor structs against a real wazero
// memory, on a call that already holds a graph (built from metadata:
// nothing here reaches an accelerator). None may panic, write outside the
// memory, return an errno WASI-NN does not define, or hold more tensor
// bytes than the memory limit.
func FuzzNNHostFunctions(f *testing.F) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	mod, err := r.Instantiate(ctx, oneMemoryPage)
	if err != nil {
		f.Fatal(err)
	}
	mem := mod.Memory()
	tensor := func(dimsPtr, dimsLen uint32, typ byte, dataPtr, dataLen uint32) []byte {
		b := make([]byte, 20)
		binary.LittleEndian.PutUint32(b[0:], dimsPtr)
		binary.LittleEndian.PutUint32(b[4:], dimsLen)
		b[8] = typ
		binary.LittleEndian.PutUint32(b[12:], dataPtr)
		binary.LittleEndian.PutUint32(b[16:], dataLen)
		return b
	}
	// A [1,3] f32 tensor: struct at 0, dims at 32, data at 64.
	valid := append(tensor(32, 2, 1, 64, 12), make([]byte, 12)...)
	valid = append(valid, 1, 0, 0, 0, 3, 0, 0, 0)
	f.Add(uint8(3), uint32(0), uint32(0), uint32(0), uint32(0), uint32(0), valid)
	f.Add(uint8(9), uint32(0), uint32(1), uint32(0), uint32(0), uint32(0), valid)
	f.Add(uint8(3), uint32(0), uint32(0), uint32(0), uint32(0), uint32(0), tensor(32, 0xffffffff, 1, 0, 0))
	f.Add(uint8(3), uint32(0), uint32(0), uint32(0), uint32(0), uint32(0), tensor(0xfffffff0, 2, 22, 0xffffffff, 0xffffffff))
	f.Add(uint8(1), uint32(0), uint32(0xfffffffc), uint32(0), uint32(0), uint32(0), []byte("arith"))
	f.Add(uint8(5), uint32(0), uint32(0), uint32(0), uint32(0xffffffff), uint32(0), []byte{})
	f.Add(uint8(10), uint32(0), uint32(5), uint32(5), uint32(26), uint32(100), []byte("arithscheduler/config.json"))
	f.Add(uint8(11), uint32(0), uint32(100), uint32(64), uint32(0), uint32(0), []byte{})
	f.Fuzz(func(t *testing.T, fn uint8, a, b, c, d, e uint32, data []byte) {
		if len(data) > 4096 {
			data = data[:4096]
		}
		mem.Write(0, data)
		inv := &Invocation{
			Namespace: "fuzz",
			Grant:     Grant{Capabilities: abi.Capabilities{Accel: &abi.Accel{Models: []string{"arith"}}}},
			Limits:    Limits{MemoryBytes: 1 << 16, MaxLogBytes: 1024},
			Accel:     fileAccel{},
		}
		call := newCall(inv)
		shape := []int64{-1, 3}
		call.nn.graphs = append(call.nn.graphs, &AccelModel{Name: "arith",
			Inputs:  []oip.TensorMetadata{{Name: "a", Datatype: oip.FP32, Shape: shape}, {Name: "b", Datatype: oip.FP32, Shape: shape}},
			Outputs: []oip.TensorMetadata{{Name: "sum", Datatype: oip.FP32, Shape: shape}}})
		call.nnInitExecutionContext(mem, 0, 60000)
		var errno abi.NNErrno
		switch fn % 12 {
		case 0:
			errno = call.nnLoad()
		case 1:
			errno = call.nnLoadByName(ctx, mem, a, b, c) // no accelerator: runtime_error at most
		case 2:
			errno = call.nnInitExecutionContext(mem, a%2, b)
		case 3:
			errno = call.nnSetInput(mem, a%2, b%3, c, false)
		case 4:
			errno = call.nnSetInput(mem, a%2, b%3, c, true)
		case 5:
			errno = call.nnGetOutput(mem, a%2, b, c, d, e)
		case 6:
			errno = call.nnOutputShape(mem, a%2, b, c, d, e)
		case 7:
			errno = call.nnOutputType(mem, a%2, b, c)
		case 8:
			errno = call.nnCompute(ctx, a%2) // inputs unset or no accelerator
		case 9:
			call.nnSetInput(mem, 0, 0, 0, false)
			errno = call.nnComputeWait(ctx, a%2, 0)
		case 10:
			// name, path, buffer and out pointer, each anywhere.
			errno = call.nnModelFile(ctx, mem, a, b%300, b, c%600, d, e, a^e)
		case 11:
			errno = call.nnGraphMetadata(mem, a%2, b, c, d)
		}
		call.release()
		if errno > abi.NNNotFound {
			t.Fatalf("errno %d is not defined by WASI-NN", errno)
		}
		if mem.Size() != 65536 {
			t.Fatalf("memory size changed to %d", mem.Size())
		}
		if call.nn.held < 0 || call.nn.held > int64(inv.Limits.MemoryBytes) {
			t.Fatalf("holding %d tensor bytes, limit %d", call.nn.held, inv.Limits.MemoryBytes)
		}
	})
}

// fileAccel serves one fixed file to model_file, so the fuzzers reach its
// copying; server/accel's tests read real pipeline folders.
type fileAccel struct{}

func (fileAccel) LoadModel(context.Context, string) (*AccelModel, error) {
	return nil, ErrModelNotFound
}

func (fileAccel) Infer(context.Context, *AccelModel, []oip.Tensor) ([]oip.Tensor, error) {
	return nil, ErrAccelUnsupported
}

func (fileAccel) ModelFile(_ context.Context, model, path string) ([]byte, error) {
	if path == "scheduler/config.json" {
		return []byte(`{"_class_name": "EulerDiscreteScheduler"}`), nil
	}
	return nil, ErrModelNotFound
}
