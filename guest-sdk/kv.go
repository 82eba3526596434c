package millrace

import (
	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/guest-sdk/internal/hostcall"
)

// The KV functions reach the module's own key-value namespace, shared by
// all versions of the module and by concurrent invocations. They need the
// kv capability ("kv": true in the manifest); without a grant they fail
// with abi.ErrnoDenied. Keys are 1-512 bytes of UTF-8, values up to 1 MiB.

// KVGet returns the value stored under key; found is false when the key is
// not set.
func KVGet(key string) (value []byte, found bool, err error) {
	var n uint32
	switch errno := hostcall.KVGet(key, &n); errno {
	case abi.ErrnoSuccess:
	case abi.ErrnoNotFound:
		return nil, false, nil
	default:
		return nil, false, hostError(abi.FnKVGet, errno)
	}
	value, err = readResult(n)
	if err != nil {
		return nil, false, err
	}
	return value, true, nil
}

// KVSet stores value under key.
func KVSet(key string, value []byte) error {
	if errno := hostcall.KVSet(key, value); errno != abi.ErrnoSuccess {
		return hostError(abi.FnKVSet, errno)
	}
	return nil
}

// KVDelete deletes key; deleting a key that is not set succeeds.
func KVDelete(key string) error {
	if errno := hostcall.KVDelete(key); errno != abi.ErrnoSuccess {
		return hostError(abi.FnKVDelete, errno)
	}
	return nil
}

// KVAdd atomically adds delta to the integer stored under key (a missing
// key counts as 0) and returns the new value. It fails with
// abi.ErrnoInvalidArgument when the stored value is not a decimal integer
// or the sum overflows.
func KVAdd(key string, delta int64) (int64, error) {
	var v int64
	if errno := hostcall.KVAdd(key, delta, &v); errno != abi.ErrnoSuccess {
		return 0, hostError(abi.FnKVAdd, errno)
	}
	return v, nil
}
