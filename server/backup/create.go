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
	"slices"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Derived lists the data directory's entries (relative, slash-separated)
// that a backup leaves out because the server rebuilds them or because
// the database snapshot already holds them: the live SQLite files, the
// compiled-code cache (native code for this machine only) and the
// accelerator's model links (written from the store at start). Everything
// else in the data directory is data and goes into the archive, so a
// folder another part of the server adds (datasets, trained models) is
// backed up without being registered; a part that adds a derived folder
// appends it here.
var Derived = []string{"millrace.db", "millrace.db-wal", "millrace.db-shm", "millrace.db-journal", "cache", "accel"}

// tempPrefix names the staging folders that backup and restore make
// beside the data; a backup never includes them.
const tempPrefix = ".millrace-backup-"

// SQLiteDB is what a SQLite store offers for a snapshot.
type SQLiteDB interface{ SQL() *sql.DB }

// PostgresDB is what a PostgreSQL store offers for a snapshot.
type PostgresDB interface{ Pool() *pgxpool.Pool }

// Source is what a backup is made of.
type Source struct {
	// DataDir is the server's data directory.
	DataDir string
	// DB is the open store: a SQLiteDB or a PostgresDB.
	DB any
	// ServerVersion is recorded in the header.
	ServerVersion string
	// Skip lists more data-directory entries to leave out (such as a
	// scheduled-backup folder inside it), relative and slash-separated.
	Skip []string
}

// Create writes an encrypted backup of src to w, for the given age
// recipients (a passphrase's scrypt recipient alone, or public keys). The
// database snapshot is consistent; files are read after it.
func Create(ctx context.Context, w io.Writer, src Source, recipients ...age.Recipient) (Manifest, error) {
	if len(recipients) == 0 {
		return Manifest{}, &Error{Msg: "a backup needs a passphrase or at least one recipient", Hint: "pass -passphrase-file, -recipient or -recipients-file"}
	}
	staging, err := os.MkdirTemp(src.DataDir, tempPrefix)
	if err != nil {
		return Manifest{}, fmt.Errorf("staging the backup in %s: %w", src.DataDir, err)
	}
	defer os.RemoveAll(staging)

	m := Manifest{Header: Header{Kind: kind, Format: FormatVersion, ServerVersion: src.ServerVersion, CreatedAt: time.Now().UTC().Truncate(time.Second)}}
	var dbFiles []stagedFile
	switch db := src.DB.(type) {
	case SQLiteDB:
		m.Dialect = DialectSQLite
		dbFiles, m.SchemaVersion, err = snapshotSQLite(ctx, db.SQL(), staging)
	case PostgresDB:
		m.Dialect = DialectPostgres
		dbFiles, err = snapshotPostgres(ctx, db.Pool(), staging, &m)
	default:
		err = fmt.Errorf("backup: unsupported store %T", src.DB)
	}
	if err != nil {
		return Manifest{}, err
	}
	files, err := dataFiles(src.DataDir, src.Skip)
	if err != nil {
		return Manifest{}, err
	}
	m.SecretKeyIncluded = slices.ContainsFunc(files, func(f stagedFile) bool { return f.name == dataDir+"secret.key" })

	aw, err := age.Encrypt(w, recipients...)
	if err != nil {
		return Manifest{}, fmt.Errorf("encrypting the backup: %w", err)
	}
	tw := tar.NewWriter(aw)
	header, err := json.Marshal(m.Header)
	if err != nil {
		return Manifest{}, err
	}
	if err := writeBytes(tw, headerName, header); err != nil {
		return Manifest{}, err
	}
	for _, f := range append(dbFiles, files...) {
		if err := ctx.Err(); err != nil {
			return Manifest{}, err
		}
		e, err := writeFile(tw, f)
		if err != nil {
			return Manifest{}, err
		}
		m.Entries = append(m.Entries, e)
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, err
	}
	if err := writeBytes(tw, manifestName, manifest); err != nil {
		return Manifest{}, err
	}
	if err := tw.Close(); err != nil {
		return Manifest{}, err
	}
	if err := aw.Close(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

// stagedFile is a file to put in the archive under name.
type stagedFile struct {
	name string // archive name
	path string // on disk
	mode fs.FileMode
}

func writeBytes(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

func writeFile(tw *tar.Writer, f stagedFile) (Entry, error) {
	in, err := os.Open(f.path)
	if err != nil {
		return Entry{}, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return Entry{}, err
	}
	// The size is fixed in the tar header: a file that changes while it
	// is read is cut or fails, never silently mixed.
	if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: int64(f.mode.Perm()), Size: fi.Size(), ModTime: fi.ModTime().UTC(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return Entry{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(in, fi.Size()))
	if err != nil {
		return Entry{}, fmt.Errorf("archiving %s: %w", f.path, err)
	}
	if n != fi.Size() {
		return Entry{}, fmt.Errorf("archiving %s: the file shrank while it was read", f.path)
	}
	return Entry{Name: f.name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// dataFiles lists the data directory's regular files that are data, in a
// stable order. Symbolic links are left out: what they point to lies
// outside the data directory, and restoring a link could point anywhere.
func dataFiles(root string, skip []string) ([]stagedFile, error) {
	skipped := map[string]bool{}
	for _, s := range append(slices.Clone(Derived), skip...) {
		skipped[s] = true
	}
	var out []stagedFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skipped[rel] || strings.HasPrefix(d.Name(), tempPrefix) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, stagedFile{name: dataDir + rel, path: p, mode: fi.Mode()})
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{Msg: "the data directory " + root + " does not exist", Hint: "pass the server's -data directory"}
	}
	return out, err
}

// snapshotSQLite copies the live database with VACUUM INTO: one read
// transaction, so the copy is consistent while the server writes.
func snapshotSQLite(ctx context.Context, db *sql.DB, staging string) ([]stagedFile, int, error) {
	var version int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return nil, 0, fmt.Errorf("reading the schema version: %w", err)
	}
	dst := filepath.Join(staging, "millrace.db")
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		return nil, 0, fmt.Errorf("snapshotting the SQLite database: %w", err)
	}
	// VACUUM INTO ran in its own transaction, so the version read above
	// may have moved: read it from the copy, which is what is archived.
	snap, err := sql.Open("sqlite", "file:"+dst+"?mode=ro")
	if err != nil {
		return nil, 0, err
	}
	defer snap.Close()
	if err := snap.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return nil, 0, fmt.Errorf("reading the snapshot's schema version: %w", err)
	}
	return []stagedFile{{name: sqliteName, path: dst, mode: 0o600}}, version, nil
}
