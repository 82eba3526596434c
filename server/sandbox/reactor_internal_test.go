package sandbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/millrace/millrace/abi"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/stretchr/testify/require"
)

type secretTable map[string][]byte

func (s secretTable) Reveal(_ context.Context, name string) ([]byte, error) { return s[name], nil }

// One invocation's input and secrets never appear in the memory another
// invocation starts with: after an invocation returns its instance to the
// pool, nothing of what it read is left anywhere in the instance's memory.
func TestPooledInstanceKeepsNothing(t *testing.T) {
	ctx := context.Background()
	eng, err := NewWazero(ctx, WazeroConfig{MaxMemoryMB: 256})
	require.NoError(t, err)
	defer eng.Close(ctx)

	marker := func() string {
		b := make([]byte, 16)
		rand.Read(b)
		return "marker-" + hex.EncodeToString(b)
	}
	limits := Limits{MemoryBytes: 128 << 20, Timeout: 10 * time.Second, MaxOutputBytes: 1 << 20, MaxLogBytes: 64 << 10}

	for _, tc := range []struct {
		guest string
		inv   func(secret string) *Invocation
	}{
		{"counter", func(secret string) *Invocation {
			in, _ := json.Marshal(map[string]string{"secret": secret})
			return &Invocation{Input: in, Limits: limits}
		}},
		{"secretuser", func(secret string) *Invocation {
			return &Invocation{Input: json.RawMessage(`{"name":"api_key"}`), Limits: limits,
				Grant:   Grant{Capabilities: abi.Capabilities{Secrets: []string{"api_key"}}},
				Secrets: secretTable{"api_key": []byte(secret)}}
		}},
	} {
		t.Run(tc.guest, func(t *testing.T) {
			mod, err := eng.Compile(ctx, testguests.Reactor(t, tc.guest))
			require.NoError(t, err)
			defer mod.Close(ctx)
			m := mod.(*wazeroModule)
			require.NotNil(t, m.snap, "the reactor must have been snapshotted")

			secret := marker()
			res := m.Invoke(ctx, tc.inv(secret))
			require.Nil(t, res.Failure)

			inst := m.pool.get(limits.MemoryBytes)
			require.NotNil(t, inst, "the instance must be back in the pool")
			defer inst.close()
			mem, ok := inst.mod.Memory().Read(0, inst.mod.Memory().Size())
			require.True(t, ok)
			require.False(t, bytes.Contains(mem, []byte(secret)), "the secret survived the reset")
			require.Equal(t, uint32(m.snap.pages), inst.mod.Memory().Size()/65536)
		})
	}
}
