//go:build !wasip1

package millrace_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/abi"
	millrace "github.com/millrace/millrace/guest-sdk"
	"github.com/millrace/millrace/guest-sdk/millracetest"
)

func TestKV(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.KV["preset"] = []byte("hello")
	h.Run(func() {
		v, found, err := millrace.KVGet("preset")
		require.NoError(t, err)
		require.True(t, found)
		require.Equal(t, []byte("hello"), v)

		_, found, err = millrace.KVGet("missing")
		require.NoError(t, err)
		require.False(t, found)

		require.NoError(t, millrace.KVSet("empty", nil))
		v, found, err = millrace.KVGet("empty")
		require.NoError(t, err)
		require.True(t, found)
		require.Empty(t, v)

		n, err := millrace.KVAdd("n", 5)
		require.NoError(t, err)
		require.Equal(t, int64(5), n)
		n, err = millrace.KVAdd("n", -7)
		require.NoError(t, err)
		require.Equal(t, int64(-2), n)

		require.NoError(t, millrace.KVDelete("preset"))
		require.NoError(t, millrace.KVDelete("preset"))
	})
	require.Equal(t, map[string][]byte{"empty": {}, "n": []byte("-2")}, h.KV)
}

func TestKVErrors(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.KV["text"] = []byte("abc")
	h.KV["max"] = []byte("9223372036854775807")
	h.Run(func() {
		_, err := millrace.KVAdd("text", 1)
		require.ErrorIs(t, err, abi.ErrnoInvalidArgument)
		require.EqualError(t, err, "kv_add: invalid_argument")
		_, err = millrace.KVAdd("max", 1)
		require.ErrorIs(t, err, abi.ErrnoInvalidArgument)
		require.ErrorIs(t, millrace.KVSet("", []byte("x")), abi.ErrnoInvalidArgument)
		require.ErrorIs(t, millrace.KVSet(strings.Repeat("k", 513), nil), abi.ErrnoTooLarge)
		require.ErrorIs(t, millrace.KVSet("big", make([]byte, 1<<20+1)), abi.ErrnoTooLarge)
	})
}

func TestKVDenied(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Grants = &abi.Capabilities{Secrets: []string{"X"}}
	h.Run(func() {
		_, _, err := millrace.KVGet("k")
		require.EqualError(t, err, "kv_get: denied")
		require.ErrorIs(t, millrace.KVSet("k", nil), abi.ErrnoDenied)
		require.ErrorIs(t, millrace.KVDelete("k"), abi.ErrnoDenied)
		_, err = millrace.KVAdd("k", 1)
		require.ErrorIs(t, err, abi.ErrnoDenied)
	})
}

func TestSecret(t *testing.T) {
	t.Parallel()
	h := millracetest.NewHost()
	h.Secrets["API_KEY"] = "k"
	h.Grants = &abi.Capabilities{Secrets: []string{"API_KEY", "UNSET"}}
	h.Run(func() {
		v, err := millrace.Secret("API_KEY")
		require.NoError(t, err)
		require.Equal(t, "k", v)

		_, err = millrace.Secret("UNSET")
		require.ErrorIs(t, err, abi.ErrnoNotFound)
		require.EqualError(t, err, "secret_get: not_found")

		_, err = millrace.Secret("OTHER")
		require.ErrorIs(t, err, abi.ErrnoDenied)
	})
}
