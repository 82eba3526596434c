// Package secrets seals secret values with AES-256-GCM under a key kept
// outside the database, so a copy of the database alone reveals nothing.
package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/millrace/millrace/server/store"
)

// KeySize is the AES-256 key length in bytes.
const KeySize = 32

// Vault seals and opens secrets and stores them in a store.Store.
type Vault struct {
	store store.Store

	// mu is held for writing while the key rotates, so that nothing is
	// sealed under the old key once the rotation has read every value.
	mu   sync.RWMutex
	aead cipher.AEAD
	// older opens values sealed under keys the vault knew before: the
	// key before a rotation (another server sharing the database may
	// still seal with it) or the next key of an interrupted rotation.
	older []cipher.AEAD
}

// LoadOrCreateKey reads the base64 key in path, creating it with mode 0600
// when the file does not exist. A key given in env (base64) wins over the
// file, for deployments that inject it.
func LoadOrCreateKey(path, env string) ([]byte, error) {
	if env != "" {
		return decodeKey(env, "MILLRACE_SECRET_KEY")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, KeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("creating secret key %s: %w", path, err)
		}
		_, werr := f.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
		if err := errors.Join(werr, f.Close()); err != nil {
			return nil, err
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading secret key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret key %s is readable by others (mode %v): run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	return decodeKey(string(b), path)
}

func decodeKey(s, where string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(key) != KeySize {
		return nil, fmt.Errorf("%s must hold a base64-encoded %d-byte key", where, KeySize)
	}
	return key, nil
}

// New returns a vault sealing with key.
func New(key []byte, s store.Store) (*Vault, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return &Vault{aead: aead, store: s}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// TriggerAD is the additional data a webhook trigger's secret is sealed
// with.
func TriggerAD(triggerID string) string { return "trigger:" + triggerID }

// adFor is the additional data of a stored sealed value.
func adFor(v store.SealedValue) string {
	if v.Kind == store.SealedTrigger {
		return TriggerAD(v.ID)
	}
	return v.ID
}

// Seal encrypts plaintext with additional data ad, which must be given
// again to open it: binding what a value belongs to (a secret's name, a
// trigger's id) means a sealed value copied elsewhere in the database
// does not open.
func (v *Vault) Seal(ad string, plaintext []byte) ([]byte, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return seal(v.aead, ad, plaintext)
}

func seal(aead cipher.AEAD, ad string, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plaintext, []byte(ad)), nil
}

// Open decrypts what Seal sealed with the same additional data.
func (v *Vault) Open(ad string, sealed []byte) ([]byte, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.openLocked(ad, sealed)
}

func (v *Vault) openLocked(ad string, sealed []byte) ([]byte, error) {
	n := v.aead.NonceSize()
	if len(sealed) < n {
		return nil, fmt.Errorf("%s is corrupt", ad)
	}
	var err error
	for _, aead := range append([]cipher.AEAD{v.aead}, v.older...) {
		var plain []byte
		if plain, err = aead.Open(nil, sealed[:n], sealed[n:], []byte(ad)); err == nil {
			return plain, nil
		}
	}
	return nil, fmt.Errorf("%s cannot be opened with this key (was the key file replaced?): %w", ad, err)
}

// Rotate re-encrypts every sealed value (secrets and webhook secrets)
// under newKey in one database transaction, then seals with newKey. Until
// the transaction commits, nothing changes; the old key stays able to open
// values (sealed by another server that has not restarted yet). It
// returns how many values it re-encrypted.
func (v *Vault) Rotate(ctx context.Context, newKey []byte) (int, error) {
	next, err := newAEAD(newKey)
	if err != nil {
		return 0, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	// The next key opens too: an interrupted rotation may have committed
	// values under it already.
	v.older = append(v.older, next)
	n, err := v.store.ResealAll(ctx, func(sv store.SealedValue) ([]byte, error) {
		plain, err := v.openLocked(adFor(sv), sv.Sealed)
		if err != nil {
			return nil, fmt.Errorf("%s %w", sv.Kind, err)
		}
		return seal(next, adFor(sv), plain)
	})
	if err != nil {
		v.older = v.older[:len(v.older)-1]
		return 0, err
	}
	v.older = append([]cipher.AEAD{v.aead}, v.older[:len(v.older)-1]...)
	v.aead = next
	return n, nil
}

// Put seals and stores a secret. The name is the additional data, so a
// sealed value copied to another name will not open.
func (v *Vault) Put(ctx context.Context, name string, value []byte) error {
	// Held until the value is stored, so that a rotation cannot read
	// every value between the sealing and the storing and miss this one.
	v.mu.RLock()
	defer v.mu.RUnlock()
	sealed, err := seal(v.aead, name, value)
	if err != nil {
		return err
	}
	return v.store.PutSecret(ctx, name, sealed)
}

// AcceptKey lets the vault open (never seal) values sealed under key: the
// key before the last rotation, which another server sharing the database
// may still have sealed a value with.
func (v *Vault) AcceptKey(key []byte) error {
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.older = append(v.older, aead)
	return nil
}

// Reveal opens a secret; store.ErrNotFound when it is not set.
func (v *Vault) Reveal(ctx context.Context, name string) ([]byte, error) {
	sealed, err := v.store.Secret(ctx, name)
	if err != nil {
		return nil, err
	}
	plain, err := v.Open(name, sealed)
	if err != nil {
		return nil, fmt.Errorf("secret %w", err)
	}
	return plain, nil
}
