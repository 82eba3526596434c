package backup

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"github.com/millrace/millrace/migrations"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, to check a restored snapshot
)

// maxMetaBytes bounds the header and the manifest, which are read into
// memory.
const maxMetaBytes = 64 << 20

// Target is where a backup is restored.
type Target struct {
	// DataDir must not exist or be empty; it receives the data
	// directory's files (and, for a SQLite backup, the database).
	DataDir string
	// DatabaseURL is the PostgreSQL database whose current schema (empty)
	// receives a PostgreSQL backup; it must be empty for a SQLite backup.
	DatabaseURL string
}

// Restore decrypts the backup in r with the given identities and unpacks
// it into t. It writes nothing to t until the whole archive has been read
// and checked: it unpacks into a staging folder beside t.DataDir, checks
// every entry against the manifest, loads the database in one transaction
// (PostgreSQL) and finally renames the staging folder into place.
func Restore(ctx context.Context, r io.Reader, t Target, identities ...age.Identity) (Manifest, error) {
	if t.DataDir == "" {
		return Manifest{}, &Error{Msg: "restore needs a data directory", Hint: "pass -data with a new, empty folder"}
	}
	if err := checkEmpty(t.DataDir); err != nil {
		return Manifest{}, err
	}
	parent := filepath.Dir(filepath.Clean(t.DataDir))
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return Manifest{}, err
	}
	staging, err := os.MkdirTemp(parent, tempPrefix+"restore-")
	if err != nil {
		return Manifest{}, err
	}
	defer os.RemoveAll(staging)

	m, err := Unpack(r, staging, identities...)
	if err != nil {
		return Manifest{}, err
	}
	switch m.Dialect {
	case DialectSQLite:
		if t.DatabaseURL != "" {
			return Manifest{}, &Error{Msg: "this is a backup of a SQLite server", Hint: "restore it without -database-url (and with DATABASE_URL unset); the database goes into the data directory", Err: ErrWrongDialect}
		}
		if err := checkSQLite(ctx, filepath.Join(staging, filepath.FromSlash(sqliteName)), m.SchemaVersion); err != nil {
			return Manifest{}, err
		}
		if err := os.MkdirAll(filepath.Join(staging, "data"), 0o700); err != nil {
			return Manifest{}, err
		}
		if err := os.Rename(filepath.Join(staging, filepath.FromSlash(sqliteName)), filepath.Join(staging, "data", "millrace.db")); err != nil {
			return Manifest{}, err
		}
	case DialectPostgres:
		if t.DatabaseURL == "" {
			return Manifest{}, &Error{Msg: "this is a backup of a PostgreSQL server", Hint: "pass -database-url with an empty database to restore into", Err: ErrWrongDialect}
		}
		if err := loadPostgres(ctx, t.DatabaseURL, staging, m); err != nil {
			return Manifest{}, err
		}
	}
	if err := os.MkdirAll(filepath.Join(staging, "data"), 0o700); err != nil {
		return Manifest{}, err
	}
	// Checked again: something may have appeared while we unpacked.
	if err := checkEmpty(t.DataDir); err != nil {
		return Manifest{}, err
	}
	if err := os.Remove(t.DataDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, err
	}
	if err := os.Rename(filepath.Join(staging, "data"), t.DataDir); err != nil {
		return Manifest{}, fmt.Errorf("moving the restored data into %s: %w", t.DataDir, err)
	}
	return m, nil
}

// checkEmpty accepts a folder that does not exist or holds nothing.
func checkEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return &Error{Msg: fmt.Sprintf("%s is not empty (it holds %s)", dir, entries[0].Name()), Hint: "restore into a new folder; a restore never overwrites a data directory", Err: ErrNotEmpty}
	}
	return nil
}

// Unpack decrypts and reads a whole archive into dir (which should be
// empty), checking every entry against the manifest, and returns the
// manifest. Entries keep their archive names under dir. It is Restore
// without the database step, and what the fuzz target exercises.
func Unpack(r io.Reader, dir string, identities ...age.Identity) (Manifest, error) {
	if len(identities) == 0 {
		return Manifest{}, &Error{Msg: "a restore needs the backup's passphrase or an identity", Hint: "pass -passphrase-file or -identity"}
	}
	ar, err := age.Decrypt(r, identities...)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return Manifest{}, &Error{Msg: "the archive cannot be decrypted with this passphrase or identity", Hint: "check the passphrase file or use the identity whose public key the backup was made for", Err: ErrDecrypt}
		}
		return Manifest{}, &Error{Msg: "the file is not an age-encrypted Millrace backup", Hint: "check that -i names a file written by millrace backup create", Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
	}
	return unpackTar(ar, dir)
}

// unpackTar reads the decrypted tar stream; see Unpack.
func unpackTar(r io.Reader, dir string) (Manifest, error) {
	tr := tar.NewReader(r)
	readErr := func(err error) error {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return &Error{Msg: "reading the archive", Hint: "the backup file is damaged, cut short or was altered; use another copy", Err: fmt.Errorf("%w: %v", ErrCorrupt, err)}
	}

	th, err := tr.Next()
	if err != nil {
		return Manifest{}, readErr(err)
	}
	if th.Name != headerName || th.Typeflag != tar.TypeReg || th.Size > maxMetaBytes {
		return Manifest{}, corrupt("the archive does not start with %s", headerName)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		return Manifest{}, readErr(err)
	}
	h, err := decodeHeader(b)
	if err != nil {
		return Manifest{}, err
	}
	if err := checkVersions(h); err != nil {
		return Manifest{}, err
	}

	seen := map[string]Entry{}
	var order []string
	var m *Manifest
	for {
		th, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Manifest{}, readErr(err)
		}
		if m != nil {
			return Manifest{}, corrupt("entry %q follows the manifest", th.Name)
		}
		if err := checkEntryName(th.Name); err != nil {
			return Manifest{}, err
		}
		if th.Typeflag != tar.TypeReg || th.Size < 0 {
			return Manifest{}, corrupt("archive entry %q is not a regular file", th.Name)
		}
		if th.Name == headerName {
			return Manifest{}, corrupt("the archive holds two headers")
		}
		if th.Name == manifestName {
			if th.Size > maxMetaBytes {
				return Manifest{}, corrupt("the manifest is too large")
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return Manifest{}, readErr(err)
			}
			m = &Manifest{}
			if err := json.Unmarshal(b, m); err != nil {
				return Manifest{}, corrupt("the manifest is not valid JSON: %v", err)
			}
			continue
		}
		if _, dup := seen[th.Name]; dup {
			return Manifest{}, corrupt("archive entry %q appears twice", th.Name)
		}
		e, err := unpackFile(tr, th, dir)
		if err != nil {
			var be *Error
			if errors.As(err, &be) {
				return Manifest{}, err
			}
			return Manifest{}, readErr(err)
		}
		seen[th.Name] = e
		order = append(order, th.Name)
	}
	if m == nil {
		return Manifest{}, corrupt("the archive ends without its manifest")
	}
	if !sameHeader(m.Header, h) {
		return Manifest{}, corrupt("the manifest's header differs from the archive's")
	}
	if len(m.Entries) != len(order) {
		return Manifest{}, corrupt("the manifest lists %d files, the archive holds %d", len(m.Entries), len(order))
	}
	for i, want := range m.Entries {
		if got := seen[want.Name]; got != want || order[i] != want.Name {
			return Manifest{}, corrupt("archive entry %q does not match the manifest (size or SHA-256 differ)", want.Name)
		}
	}
	switch h.Dialect {
	case DialectSQLite:
		if _, ok := seen[sqliteName]; !ok || len(m.Tables) > 0 {
			return Manifest{}, corrupt("a SQLite backup must hold %s and no tables", sqliteName)
		}
	case DialectPostgres:
		if _, ok := seen[sqliteName]; ok {
			return Manifest{}, corrupt("a PostgreSQL backup holds %s", sqliteName)
		}
		tables := map[string]bool{}
		for _, t := range m.Tables {
			name := tablesDir + t.Name + ".copy"
			if _, ok := seen[name]; !ok || tables[t.Name] || checkEntryName(name) != nil || len(t.Columns) == 0 {
				return Manifest{}, corrupt("table %q of the manifest has no data in the archive", t.Name)
			}
			tables[t.Name] = true
		}
		for name := range seen {
			if strings.HasPrefix(name, tablesDir) && !tables[strings.TrimSuffix(strings.TrimPrefix(name, tablesDir), ".copy")] {
				return Manifest{}, corrupt("archive entry %q is no table of the manifest", name)
			}
		}
	}
	return *m, nil
}

// checkVersions refuses what this binary cannot restore faithfully.
func checkVersions(h Header) error {
	if h.Format < 1 || h.Format > FormatVersion {
		return &Error{Msg: fmt.Sprintf("the backup uses archive format %d; this Millrace reads up to %d", h.Format, FormatVersion), Hint: "restore with the Millrace version that made it (" + h.ServerVersion + ") or newer", Err: ErrNewerSchema}
	}
	if h.Dialect != DialectSQLite && h.Dialect != DialectPostgres {
		return corrupt("the backup names an unknown database kind %q", h.Dialect)
	}
	all, err := migrations.For(h.Dialect)
	if err != nil {
		return err
	}
	if h.SchemaVersion < 1 || h.SchemaVersion > len(all) {
		if h.SchemaVersion > len(all) {
			return &Error{Msg: fmt.Sprintf("the backup is of schema version %d, made by Millrace %s; this Millrace knows schema versions up to %d", h.SchemaVersion, h.ServerVersion, len(all)),
				Hint: "restore with Millrace " + h.ServerVersion + " or newer", Err: ErrNewerSchema}
		}
		return corrupt("the backup names schema version %d", h.SchemaVersion)
	}
	return nil
}

// unpackFile writes one entry under dir, hashing it, with the archive's
// permission bits limited to the owner's.
func unpackFile(tr *tar.Reader, th *tar.Header, dir string) (Entry, error) {
	p := filepath.Join(dir, filepath.FromSlash(th.Name))
	// checkEntryName already refused "..": this is a second lock.
	if rel, err := filepath.Rel(dir, p); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return Entry{}, corrupt("archive entry %q escapes the restore folder", th.Name)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return Entry{}, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(th.Mode)&0o700|0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Entry{}, corrupt("archive entry %q collides with another", th.Name)
		}
		return Entry{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), tr)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Entry{}, err
	}
	return Entry{Name: th.Name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// checkSQLite opens the unpacked snapshot and checks that it is a sound
// SQLite database at the schema version the manifest names.
func checkSQLite(ctx context.Context, path string, version int) error {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&result); err != nil || result != "ok" {
		return corrupt("the database snapshot fails SQLite's integrity check (%v%s)", err, result)
	}
	var got int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&got); err != nil || got != version {
		return corrupt("the database snapshot is at schema version %d, the manifest says %d", got, version)
	}
	return nil
}

func sameHeader(a, b Header) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
