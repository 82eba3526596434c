// Package backup writes and reads Millrace's end-to-end-encrypted backups:
// one age-encrypted tar stream holding a consistent snapshot of the
// database and every file of the data directory that is not derived from
// it.
//
// The archive, inside age, is a tar stream of:
//
//	header.json        format, dialect, schema versions, server version
//	db/millrace.db     SQLite: the snapshot made with VACUUM INTO
//	db/tables/T.copy   PostgreSQL: each table in COPY text format, all read
//	                   in one REPEATABLE READ transaction
//	data/…             the data directory's files (secret key, datasets,
//	                   trained models…), minus the derived ones (Skip)
//	manifest.json      the header again, plus every entry's size and SHA-256
//
// The manifest comes last so that the archive streams (to an HTTP client)
// without a second pass; the header comes first so that a backup from a
// newer schema is refused before anything is unpacked.
package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// FormatVersion is the archive layout version this package writes and the
// newest it reads.
const FormatVersion = 1

// Dialects of the database snapshot.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Names of the fixed entries.
const (
	headerName   = "header.json"
	manifestName = "manifest.json"
	sqliteName   = "db/millrace.db"
	tablesDir    = "db/tables/"
	dataDir      = "data/"
)

// Header describes a backup; it opens the archive and is repeated in the
// manifest.
type Header struct {
	Kind          string    `json:"kind"` // always "millrace-backup"
	Format        int       `json:"format"`
	Dialect       string    `json:"dialect"`
	SchemaVersion int       `json:"schema_version"`          // Millrace's migrations applied
	RiverVersion  int       `json:"river_version,omitempty"` // River's migrations (PostgreSQL)
	ServerVersion string    `json:"server_version"`
	CreatedAt     time.Time `json:"created_at"`
	// SecretKeyIncluded says whether data/secret.key is in the archive;
	// false when the server took its key from MILLRACE_SECRET_KEY, which
	// the operator must then supply again after restoring.
	SecretKeyIncluded bool `json:"secret_key_included"`
}

const kind = "millrace-backup"

// Entry is one file of the archive, as the manifest lists it.
type Entry struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Table is one PostgreSQL table of the snapshot.
type Table struct {
	Name    string   `json:"name"`
	Columns []string `json:"columns"`
	Rows    int64    `json:"rows"`
}

// Sequence is one PostgreSQL sequence's position.
type Sequence struct {
	Name      string `json:"name"`
	LastValue int64  `json:"last_value"`
	IsCalled  bool   `json:"is_called"`
}

// Manifest closes the archive: the header, then every entry before it.
type Manifest struct {
	Header
	Entries []Entry `json:"entries"`
	// Tables and Sequences are the PostgreSQL snapshot, in the order the
	// tables must be loaded (foreign keys first).
	Tables    []Table    `json:"tables,omitempty"`
	Sequences []Sequence `json:"sequences,omitempty"`
}

// Error is a backup or restore failure with a hint for the operator.
type Error struct {
	Msg  string
	Hint string
	Err  error
}

func (e *Error) Error() string {
	s := e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Failure classes a restore reports, for errors.Is.
var (
	ErrDecrypt      = errors.New("the archive cannot be decrypted")
	ErrCorrupt      = errors.New("the archive is truncated or was modified")
	ErrNewerSchema  = errors.New("the backup is from a newer Millrace")
	ErrNotEmpty     = errors.New("the restore target is not empty")
	ErrWrongDialect = errors.New("the backup is of another database kind")
)

func corrupt(format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...), Hint: "the backup file is damaged, cut short or was altered; use another copy", Err: ErrCorrupt}
}

// checkEntryName accepts only the archive's own clean, relative names, so
// that a crafted archive cannot write outside the restore directory
// (zip-slip): no "..", no absolute paths, no backslashes, no empty parts.
func checkEntryName(name string) error {
	if name == "" || strings.ContainsAny(name, "\\\x00") || path.IsAbs(name) || path.Clean(name) != name || name == "." ||
		name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "/../") {
		return corrupt("archive entry %q is not a clean relative path", name)
	}
	switch {
	case name == headerName, name == manifestName, name == sqliteName:
	case strings.HasPrefix(name, tablesDir) && strings.HasSuffix(name, ".copy") && !strings.Contains(name[len(tablesDir):], "/"):
	case strings.HasPrefix(name, dataDir) && len(name) > len(dataDir):
	default:
		return corrupt("archive entry %q is not part of a Millrace backup", name)
	}
	return nil
}

func decodeHeader(b []byte) (Header, error) {
	var h Header
	if err := json.Unmarshal(b, &h); err != nil || h.Kind != kind {
		return h, corrupt("%s is not a Millrace backup header", headerName)
	}
	return h, nil
}
