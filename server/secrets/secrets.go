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

	"github.com/millrace/millrace/server/store"
)

// KeySize is the AES-256 key length in bytes.
const KeySize = 32

// Vault seals and opens secrets and stores them in a store.Store.
type Vault struct {
	aead  cipher.AEAD
	store store.Store
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
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Vault{aead: aead, store: s}, nil
}

// Seal encrypts plaintext with additional data ad, which must be given
// again to open it: binding what a value belongs to (a secret's name, a
// trigger's id) means a sealed value copied elsewhere in the database
// does not open.
func (v *Vault) Seal(ad string, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, v.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return v.aead.Seal(nonce, nonce, plaintext, []byte(ad)), nil
}

// Open decrypts what Seal sealed with the same additional data.
func (v *Vault) Open(ad string, sealed []byte) ([]byte, error) {
	n := v.aead.NonceSize()
	if len(sealed) < n {
		return nil, fmt.Errorf("%s is corrupt", ad)
	}
	plain, err := v.aead.Open(nil, sealed[:n], sealed[n:], []byte(ad))
	if err != nil {
		return nil, fmt.Errorf("%s cannot be opened with this key (was the key file replaced?): %w", ad, err)
	}
	return plain, nil
}

// Put seals and stores a secret. The name is the additional data, so a
// sealed value copied to another name will not open.
func (v *Vault) Put(ctx context.Context, name string, value []byte) error {
	sealed, err := v.Seal(name, value)
	if err != nil {
		return err
	}
	return v.store.PutSecret(ctx, name, sealed)
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
