package secrets

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Rotation files beside the key file.
const (
	nextSuffix = ".next" // the key a rotation moves to, until it is done
	oldSuffix  = ".old"  // the key before the last rotation, kept for old backups and stragglers
)

// RotateKeyFile replaces the key kept in path with a new random one and
// re-encrypts every sealed value under it. It survives a crash at any
// point:
//
//  1. the new key is written to path.next and synced (or the path.next of
//     an interrupted rotation is reused);
//  2. the current key is copied to path.old;
//  3. every value is re-encrypted in one database transaction (values
//     open under either key, so repeating this step is harmless);
//  4. path.next is renamed over path, atomically, and the folder synced.
//
// A crash before step 3 commits leaves the data under the old key; one
// between 3 and 4 leaves it under the next key while path still holds the
// old one. Either way path.next exists, and ResumeRotation, which the
// server calls at start, runs steps 3 and 4 again with it.
//
// The vault must have been made with the key in path. It returns how many
// values it re-encrypted.
func RotateKeyFile(ctx context.Context, v *Vault, path string) (int, error) {
	next, err := readKeyFile(path + nextSuffix)
	created := false
	if errors.Is(err, fs.ErrNotExist) {
		next = make([]byte, KeySize)
		if _, err := rand.Read(next); err != nil {
			return 0, err
		}
		err, created = writeKeyFile(path+nextSuffix, next), true
	}
	if err != nil {
		return 0, err
	}
	n, err := finishRotation(ctx, v, path, next)
	var rerr *reencryptError
	if created && errors.As(err, &rerr) {
		// The transaction rolled back and nothing was ever sealed under
		// this key: drop it, so the next start has nothing to resume.
		os.Remove(path + nextSuffix)
	}
	return n, err
}

// reencryptError is a failure of the re-encryption transaction, which
// therefore changed nothing.
type reencryptError struct{ err error }

func (e *reencryptError) Error() string { return e.err.Error() }
func (e *reencryptError) Unwrap() error { return e.err }

// ResumeRotation finishes a rotation that a crash interrupted (path.next
// exists), and reports whether there was one. It also lets the vault open
// values sealed under the previous key (path.old): a value another server
// sealed with it before it learnt of the rotation stays readable, and the
// next rotation re-encrypts it.
func ResumeRotation(ctx context.Context, v *Vault, path string) (bool, int, error) {
	if old, err := readKeyFile(path + oldSuffix); err == nil {
		if err := v.AcceptKey(old); err != nil {
			return false, 0, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, 0, err
	}
	next, err := readKeyFile(path + nextSuffix)
	if errors.Is(err, fs.ErrNotExist) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, err
	}
	n, err := finishRotation(ctx, v, path, next)
	if err != nil {
		return true, 0, fmt.Errorf("finishing the interrupted secret-key rotation (%s exists): %w", path+nextSuffix, err)
	}
	return true, n, nil
}

func finishRotation(ctx context.Context, v *Vault, path string, next []byte) (int, error) {
	current, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading the secret key: %w", err)
	}
	if err := writeFileSynced(path+oldSuffix, current); err != nil {
		return 0, err
	}
	n, err := v.Rotate(ctx, next)
	if err != nil {
		return 0, &reencryptError{fmt.Errorf("re-encrypting the secrets (nothing was changed; a secret that cannot be opened must be deleted or set again first): %w", err)}
	}
	if err := os.Rename(path+nextSuffix, path); err != nil {
		return n, fmt.Errorf("the secrets are re-encrypted but %s could not replace %s (do it by hand: mv %s %s): %w", path+nextSuffix, path, path+nextSuffix, path, err)
	}
	return n, syncDir(filepath.Dir(path))
}

func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return decodeKey(string(b), path)
}

func writeKeyFile(path string, key []byte) error {
	return writeFileSynced(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"))
}

// writeFileSynced writes a 0600 file and syncs it and its folder, so that
// a key is on disk before anything is sealed with it.
func writeFileSynced(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
