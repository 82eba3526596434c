//go:build wasmtime && cgo

package sandbox

// Stopping a guest on wasmtime: epoch interruption with a per-store
// callback. wasmtime-go exposes the epoch deadline but not the callback
// that decides, each time a store reaches it, whether to trap or to carry
// on; without it a deadline could only be set in advance, and an
// invocation whose caller goes away (a canceled run, a server shutting
// down) could not be stopped before its timeout. So this file calls the C
// API (wasmtime.h, linked by wasmtime-go) for that one function.

/*
#include <stdint.h>
#include <stdlib.h>

// Declared here rather than included: the headers live in wasmtime-go's
// module directory, which cgo cannot name. The signatures are those of
// wasmtime.h v39 (store.h, error.h).
typedef struct wasmtime_store wasmtime_store_t;
typedef struct wasmtime_context wasmtime_context_t;
typedef struct wasmtime_error wasmtime_error_t;
typedef uint8_t wasmtime_update_deadline_kind_t;

extern wasmtime_context_t *wasmtime_store_context(wasmtime_store_t *store);
extern wasmtime_error_t *wasmtime_error_new(const char *);
extern void wasmtime_store_epoch_deadline_callback(
    wasmtime_store_t *store,
    wasmtime_error_t *(*func)(wasmtime_context_t *context, void *data,
                              uint64_t *epoch_deadline_delta,
                              wasmtime_update_deadline_kind_t *update_kind),
    void *data, void (*finalizer)(void *));

// millrace_on_epoch runs, inside the guest's call, every time the engine's
// epoch passes the store's deadline (one tick): it traps once the
// invocation's flag is set and otherwise lets the guest run one more tick.
static wasmtime_error_t *millrace_on_epoch(wasmtime_context_t *cx, void *data,
                                           uint64_t *delta,
                                           wasmtime_update_deadline_kind_t *kind) {
	if (__atomic_load_n((int32_t *)data, __ATOMIC_ACQUIRE)) {
		return wasmtime_error_new("millrace: invocation stopped");
	}
	*delta = 1;
	*kind = 0; // WASMTIME_UPDATE_DEADLINE_CONTINUE
	return NULL;
}

static void millrace_watch_epoch(wasmtime_store_t *store, int32_t *flag) {
	wasmtime_store_epoch_deadline_callback(store, millrace_on_epoch, flag, NULL);
}
*/
import "C"

import (
	"errors"
	"sync/atomic"
	"unsafe"

	"github.com/bytecodealliance/wasmtime-go/v39"
)

// interrupter stops the guest code of one store from another goroutine.
// Its flag lives in C memory, which the callback reads while the guest
// runs; free it only after the store is closed.
type interrupter struct {
	flag *C.int32_t
}

// watchEpoch installs the callback on a fresh store and sets its deadline
// to the next tick.
func watchEpoch(store *wasmtime.Store) *interrupter {
	i := &interrupter{flag: (*C.int32_t)(C.calloc(1, C.size_t(unsafe.Sizeof(C.int32_t(0)))))}
	C.millrace_watch_epoch(storePtr(store), i.flag)
	store.SetEpochDeadline(1)
	return i
}

func (i *interrupter) stop()         { atomic.StoreInt32((*int32)(unsafe.Pointer(i.flag)), 1) }
func (i *interrupter) stopped() bool { return atomic.LoadInt32((*int32)(unsafe.Pointer(i.flag))) != 0 }
func (i *interrupter) free()         { C.free(unsafe.Pointer(i.flag)) }

// storePtr is the wasmtime_store_t behind a Store: its first field, which
// wasmtime-go does not export. checkStoreLayout verifies the reading at
// start-up, so a wasmtime-go upgrade that moves it fails loudly instead of
// corrupting memory.
func storePtr(s *wasmtime.Store) *C.wasmtime_store_t {
	return *(**C.wasmtime_store_t)(unsafe.Pointer(s))
}

func checkStoreLayout(e *wasmtime.Engine) error {
	s := wasmtime.NewStore(e)
	defer s.Close()
	if unsafe.Pointer(C.wasmtime_store_context(storePtr(s))) != unsafe.Pointer(s.Context()) {
		return errors.New("wasmtime-go's Store no longer starts with its wasmtime_store_t: update storePtr in server/sandbox/wasmtime_interrupt.go")
	}
	return nil
}
