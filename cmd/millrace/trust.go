package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	osuser "os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/millrace/millrace/server"
	"github.com/millrace/millrace/server/audit"
	"github.com/millrace/millrace/server/backup"
	"github.com/millrace/millrace/server/secrets"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/postgres"
	"github.com/millrace/millrace/server/store/sqlite"
)

const backupUsage = `usage:
  millrace backup create -data DIR [-database-url URL] -o FILE (-passphrase-file F | -recipient age1… | -recipients-file F)
      write an end-to-end-encrypted backup of a server (safe while it runs); -o - writes to stdout
  millrace backup restore -data NEWDIR [-database-url URL] -i FILE (-passphrase-file F | -identity F)
      restore a backup into a new, empty data directory (and, for PostgreSQL, an empty database)
`

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func backupCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, backupUsage)
		return errors.New("backup needs create or restore")
	}
	switch args[0] {
	case "create":
		return backupCreate(ctx, args[1:], stdout, stderr)
	case "restore":
		return backupRestore(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, backupUsage)
	return fmt.Errorf("unknown backup command %q", args[0])
}

func backupCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", envOr("MILLRACE_DATA", "data"), "the server's data directory")
	databaseURL := fs.String("database-url", "", "the server's PostgreSQL URL (default $DATABASE_URL; empty: SQLite in the data directory)")
	out := fs.String("o", "", "the backup file to write (- for stdout)")
	passFile := fs.String("passphrase-file", "", "encrypt to the passphrase on this file's first line")
	var recipients listFlag
	fs.Var(&recipients, "recipient", "encrypt to this age public key (age1…); repeatable")
	recipientsFile := fs.String("recipients-file", "", "encrypt to the age public keys in this file, one per line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("backup create needs -o FILE")
	}
	if *databaseURL == "" {
		*databaseURL = os.Getenv("DATABASE_URL")
	}
	rs, err := backup.Recipients(*passFile, recipients, *recipientsFile)
	if err != nil {
		return err
	}
	src := backup.Source{DataDir: *data, ServerVersion: server.Version}
	if *databaseURL != "" {
		db, err := postgres.Open(ctx, *databaseURL)
		if err != nil {
			return err
		}
		defer db.Close()
		src.DB = db
	} else {
		path := filepath.Join(*data, "millrace.db")
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("no database at %s: %w (pass the server's -data directory, or -database-url for PostgreSQL)", path, err)
		}
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			return err
		}
		defer db.Close()
		src.DB = db
	}
	st := src.DB.(store.Store)
	if *out == "-" {
		_, err := backup.Create(ctx, stdout, src, rs...)
		recordCLI(ctx, st, "backup-create", "stdout", err)
		return err
	}
	// Written beside its final name and renamed when complete, so that a
	// file named like a backup is always a whole one.
	tmp := *out + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	m, err := backup.Create(ctx, f, src, rs...)
	if err == nil {
		err = f.Sync()
	}
	if err := errors.Join(err, f.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	recordCLI(ctx, st, "backup-create", *out, nil)
	fmt.Fprintf(stderr, "wrote %s: %s database at schema version %d, %d files\n", *out, m.Dialect, m.SchemaVersion, len(m.Entries))
	if !m.SecretKeyIncluded {
		fmt.Fprintln(stderr, "note: the secret key is not in the data directory (MILLRACE_SECRET_KEY?); keep it: secrets cannot be opened after a restore without it")
	}
	return nil
}

func backupRestore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("backup restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "the new data directory (must not exist or be empty)")
	databaseURL := fs.String("database-url", "", "for a PostgreSQL backup: the empty database to restore into (default $DATABASE_URL)")
	in := fs.String("i", "", "the backup file (- for stdin)")
	passFile := fs.String("passphrase-file", "", "the backup's passphrase, on this file's first line")
	var identities listFlag
	fs.Var(&identities, "identity", "an age identity file (AGE-SECRET-KEY-1…); repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" || *in == "" {
		return errors.New("backup restore needs -data NEWDIR and -i FILE")
	}
	if *databaseURL == "" {
		*databaseURL = os.Getenv("DATABASE_URL")
	}
	ids, err := backup.Identities(*passFile, identities)
	if err != nil {
		return err
	}
	var r io.Reader = os.Stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no backup file %s", *in)
		}
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	m, err := backup.Restore(ctx, r, backup.Target{DataDir: *data, DatabaseURL: *databaseURL}, ids...)
	if err != nil {
		return err
	}
	if err := recordRestore(ctx, *data, *databaseURL, *in); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored a %s backup made by Millrace %s at %s (schema version %d) into %s\n", m.Dialect, m.ServerVersion, m.CreatedAt.Format("2006-01-02 15:04:05Z"), m.SchemaVersion, *data)
	if !m.SecretKeyIncluded {
		fmt.Fprintln(stdout, "the backup holds no secret key: start the server with the MILLRACE_SECRET_KEY it used")
	}
	return nil
}

// backupSchedule turns the backup keys into the server's schedule,
// reading the recipients or passphrase file now, so that a missing or
// malformed one fails the start with the key that names it.
func backupSchedule(b BackupConfig, src configSource) (backup.Schedule, error) {
	if b.Dir == "" {
		return backup.Schedule{}, nil // validate refuses a half schedule
	}
	rs, err := backup.Recipients(b.PassphraseFile, nil, b.RecipientsFile)
	if err != nil {
		key := "backup.recipients_file"
		if b.PassphraseFile != "" {
			key = "backup.passphrase_file"
		}
		return backup.Schedule{}, &FieldError{src.of(key), key, err.Error()}
	}
	return backup.Schedule{Interval: time.Duration(b.Interval), Dir: b.Dir, Recipients: rs, Keep: b.Keep}, nil
}

// secretsCmd is `millrace secrets rotate-key`: the offline rotation, for a
// stopped server (or all the servers of one PostgreSQL database, stopped,
// which then get the new key file). A running server rotates through
// POST /v1/secrets/rotate-key instead, because it keeps its key in memory.
func secretsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate-key" {
		fmt.Fprint(stderr, "usage:\n  millrace secrets rotate-key -data DIR [-database-url URL]\n      re-encrypt every secret under a new key file (stop the server first; a running one: POST /v1/secrets/rotate-key)\n")
		return errors.New("secrets needs rotate-key")
	}
	fs := flag.NewFlagSet("secrets rotate-key", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", envOr("MILLRACE_DATA", "data"), "the server's data directory (holds secret.key)")
	databaseURL := fs.String("database-url", "", "the server's PostgreSQL URL (default $DATABASE_URL; empty: SQLite in the data directory)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if os.Getenv("MILLRACE_SECRET_KEY") != "" {
		return errors.New("MILLRACE_SECRET_KEY is set: rotation rewrites the key file DATA/secret.key; write the current key there (mode 0600), unset the variable, rotate, then set the variable to the new file's content if you keep it in the environment")
	}
	if *databaseURL == "" {
		*databaseURL = os.Getenv("DATABASE_URL")
	}
	keyPath := filepath.Join(*data, "secret.key")
	if _, err := os.Stat(keyPath); err != nil {
		return fmt.Errorf("no secret key at %s: %w (pass the server's -data directory)", keyPath, err)
	}
	var db interface {
		Close() error
	}
	var st store.Store
	if *databaseURL != "" {
		pg, err := postgres.Open(ctx, *databaseURL)
		if err != nil {
			return err
		}
		db, st = pg, pg
	} else {
		lite, err := sqlite.Open(ctx, filepath.Join(*data, "millrace.db"))
		if err != nil {
			return err
		}
		db, st = lite, lite
	}
	defer db.Close()
	key, err := secrets.LoadOrCreateKey(keyPath, "")
	if err != nil {
		return err
	}
	vault, err := secrets.New(key, st)
	if err != nil {
		return err
	}
	if resumed, n, err := secrets.ResumeRotation(ctx, vault, keyPath); err != nil {
		return err
	} else if resumed {
		fmt.Fprintf(stdout, "finished an interrupted rotation (%d values)\n", n)
		return nil
	}
	n, err := secrets.RotateKeyFile(ctx, vault, keyPath)
	recordCLI(ctx, st, "rotate-secret-key", keyPath, err)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "re-encrypted %d secrets under a new key in %s (the previous key is in %s.old)\n", n, keyPath, keyPath)
	return nil
}

// recordCLI appends an audit entry for a command run on the server's own
// machine, naming the operating-system user who ran it.
func recordCLI(ctx context.Context, st store.Store, action, target string, err error) {
	name := "cli"
	if u, uerr := osuser.Current(); uerr == nil {
		name = "cli:" + u.Username
	}
	e := audit.Event{Action: action, Target: target}
	if err != nil {
		e.Outcome, e.Detail = audit.Failure, err.Error()
	}
	audit.New(st).Record(audit.WithActor(ctx, audit.Actor{Name: name}), e)
}

// recordRestore opens the restored store to record the restore in its
// own audit log, the log the restored server will show.
func recordRestore(ctx context.Context, data, databaseURL, from string) error {
	var st interface {
		store.Store
		Close() error
	}
	var err error
	if databaseURL != "" {
		st, err = postgres.Open(ctx, databaseURL)
	} else {
		st, err = sqlite.Open(ctx, filepath.Join(data, "millrace.db"))
	}
	if err != nil {
		return fmt.Errorf("the backup was restored, but opening it to record that failed: %w", err)
	}
	defer st.Close()
	recordCLI(ctx, st, "backup-restore", from, nil)
	return nil
}
