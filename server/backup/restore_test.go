package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

// smallBackup makes a real backup of a fresh SQLite server with one data
// file, for the given recipient.
func smallBackup(t testing.TB, r age.Recipient) []byte {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "millrace.db"))
	require.NoError(t, err)
	defer db.Close()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "secret.key"), []byte("a key\n"), 0o600))
	var buf bytes.Buffer
	_, err = Create(ctx, &buf, Source{DataDir: dir, DB: db, ServerVersion: "test"}, r)
	require.NoError(t, err)
	return buf.Bytes()
}

type entry struct {
	name string
	body []byte
	kind byte
}

// craft writes an archive by hand, entry by entry, for the attacks a real
// backup never contains.
func craft(t testing.TB, r age.Recipient, entries ...entry) []byte {
	var buf bytes.Buffer
	aw, err := age.Encrypt(&buf, r)
	require.NoError(t, err)
	tw := tar.NewWriter(aw)
	for _, e := range entries {
		kind := e.kind
		if kind == 0 {
			kind = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Mode: 0o600, Size: int64(len(e.body)), Typeflag: kind}
		if kind == tar.TypeSymlink {
			h.Size, h.Linkname = 0, "/etc"
		}
		require.NoError(t, tw.WriteHeader(h))
		_, err := tw.Write(e.body)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, aw.Close())
	return buf.Bytes()
}

func headerJSON(t testing.TB, schema int) []byte {
	b, err := json.Marshal(Header{Kind: kind, Format: FormatVersion, Dialect: DialectSQLite, SchemaVersion: schema, ServerVersion: "9.9.9", CreatedAt: time.Unix(0, 0).UTC()})
	require.NoError(t, err)
	return b
}

// requireNothingWritten checks that a failed restore left neither the
// target nor a staging folder behind.
func requireNothingWritten(t *testing.T, parent, target string) {
	t.Helper()
	_, err := os.Stat(target)
	require.ErrorIs(t, err, os.ErrNotExist, "a failed restore must not create the data directory")
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Empty(t, entries, "a failed restore must leave no staging folder")
}

func TestRestoreRefuses(t *testing.T) {
	t.Parallel()
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	good := smallBackup(t, id.Recipient())
	other, err := age.GenerateX25519Identity()
	require.NoError(t, err)

	tampered := bytes.Clone(good)
	tampered[len(tampered)/2] ^= 0x01
	cases := []struct {
		name    string
		archive []byte
		ids     []age.Identity
		want    error
	}{
		{"wrong identity", good, []age.Identity{other}, ErrDecrypt},
		{"truncated", good[:len(good)*2/3], nil, ErrCorrupt},
		{"truncated at a chunk boundary", good[:len(good)-17], nil, ErrCorrupt},
		{"tampered", tampered, nil, ErrCorrupt},
		{"not age", []byte("PK\x03\x04 a zip file"), nil, ErrCorrupt},
		{"newer schema", craft(t, id.Recipient(), entry{name: headerName, body: headerJSON(t, 999)}), nil, ErrNewerSchema},
		{"no manifest", craft(t, id.Recipient(), entry{name: headerName, body: headerJSON(t, 1)}, entry{name: "data/x", body: []byte("x")}), nil, ErrCorrupt},
		// Zip-slip (CVE-2018-1002200 class): entries that climb out of
		// the restore folder or are absolute, and links that would
		// redirect later writes.
		{"zip-slip dotdot", craft(t, id.Recipient(), entry{name: headerName, body: headerJSON(t, 1)}, entry{name: "data/../../escaped", body: []byte("x")}), nil, ErrCorrupt},
		{"zip-slip absolute", craft(t, id.Recipient(), entry{name: headerName, body: headerJSON(t, 1)}, entry{name: "/tmp/escaped", body: []byte("x")}), nil, ErrCorrupt},
		{"zip-slip symlink", craft(t, id.Recipient(), entry{name: headerName, body: headerJSON(t, 1)}, entry{name: "data/etc", kind: tar.TypeSymlink}), nil, ErrCorrupt},
		{"unknown entry", craft(t, id.Recipient(), entry{name: headerName, body: headerJSON(t, 1)}, entry{name: "bin/sh", body: []byte("x")}), nil, ErrCorrupt},
		{"manifest mismatch", craft(t, id.Recipient(), entry{name: headerName, body: headerJSON(t, 1)}, entry{name: "data/x", body: []byte("x")},
			entry{name: manifestName, body: []byte(`{"kind":"millrace-backup","format":1,"dialect":"sqlite","schema_version":1,"server_version":"9.9.9","created_at":"1970-01-01T00:00:00Z","entries":[{"name":"data/x","size":1,"sha256":"00"}]}`)}), nil, ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			target := filepath.Join(parent, "data")
			ids := c.ids
			if ids == nil {
				ids = []age.Identity{id}
			}
			_, err := Restore(context.Background(), bytes.NewReader(c.archive), Target{DataDir: target}, ids...)
			require.ErrorIs(t, err, c.want)
			t.Log(err)
			requireNothingWritten(t, parent, target)
		})
	}

	t.Run("not empty", func(t *testing.T) {
		t.Parallel()
		target := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(target, "keep"), []byte("mine"), 0o600))
		_, err := Restore(context.Background(), bytes.NewReader(good), Target{DataDir: target}, id)
		require.ErrorIs(t, err, ErrNotEmpty)
		b, err := os.ReadFile(filepath.Join(target, "keep"))
		require.NoError(t, err)
		require.Equal(t, "mine", string(b))
	})
	t.Run("SQLite backup into PostgreSQL", func(t *testing.T) {
		t.Parallel()
		parent := t.TempDir()
		_, err := Restore(context.Background(), bytes.NewReader(good), Target{DataDir: filepath.Join(parent, "d"), DatabaseURL: "postgres://nowhere/db"}, id)
		require.ErrorIs(t, err, ErrWrongDialect)
		requireNothingWritten(t, parent, filepath.Join(parent, "d"))
	})
}

// TestRestoreWrongPassphrase uses a real scrypt passphrase.
func TestRestoreWrongPassphrase(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	right, wrong := filepath.Join(dir, "right"), filepath.Join(dir, "wrong")
	require.NoError(t, os.WriteFile(right, []byte("right passphrase\n"), 0o600))
	require.NoError(t, os.WriteFile(wrong, []byte("wrong passphrase\n"), 0o600))
	rs, err := Recipients(right, nil, "")
	require.NoError(t, err)
	archive := smallBackup(t, rs[0])
	ids, err := Identities(wrong, nil)
	require.NoError(t, err)
	parent := t.TempDir()
	_, err = Restore(context.Background(), bytes.NewReader(archive), Target{DataDir: filepath.Join(parent, "data")}, ids...)
	require.ErrorIs(t, err, ErrDecrypt)
	require.Contains(t, err.Error(), "passphrase")
	requireNothingWritten(t, parent, filepath.Join(parent, "data"))

	ids, err = Identities(right, nil)
	require.NoError(t, err)
	m, err := Restore(context.Background(), bytes.NewReader(archive), Target{DataDir: filepath.Join(parent, "data")}, ids...)
	require.NoError(t, err)
	require.True(t, m.SecretKeyIncluded)
}

// FuzzUnpackArchive feeds arbitrary decrypted tar streams to the archive
// reader: it must never panic, never write outside its folder, and
// accept only what matches its manifest. Decryption is age's (fuzzed by
// age); what follows it is ours.
func FuzzUnpackArchive(f *testing.F) {
	id, err := age.GenerateX25519Identity()
	require.NoError(f, err)
	ar, err := age.Decrypt(bytes.NewReader(smallBackup(f, id.Recipient())), id)
	require.NoError(f, err)
	plain, err := io.ReadAll(ar)
	require.NoError(f, err)
	f.Add(plain)
	f.Add(plain[:len(plain)/2])
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: headerName, Size: int64(len(headerJSON(f, 1))), Typeflag: tar.TypeReg})
	tw.Write(headerJSON(f, 1))
	tw.WriteHeader(&tar.Header{Name: "data/../x", Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	f.Add(b.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "in")
		require.NoError(t, os.Mkdir(dir, 0o700))
		_, err := unpackTar(bytes.NewReader(data), dir)
		if err != nil {
			return
		}
		// Whatever was accepted lies inside dir.
		entries, err := os.ReadDir(parent)
		require.NoError(t, err)
		require.Len(t, entries, 1)
	})
}
