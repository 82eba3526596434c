package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/millrace/millrace/server/audit"
)

// Schedule says when and where the server backs itself up. The zero value
// (no Dir or no Interval) makes no scheduled backups.
type Schedule struct {
	Interval   time.Duration
	Dir        string          // the folder the backups go to
	Recipients []age.Recipient // who can open them (a passphrase alone, or public keys)
	Keep       int             // how many scheduled backups to keep; default 7
}

// Enabled reports whether the schedule makes backups.
func (s Schedule) Enabled() bool { return s.Interval > 0 && s.Dir != "" }

// Stored is a scheduled backup in the schedule's folder.
type Stored struct {
	Name      string
	Size      int64
	CreatedAt time.Time
}

// storedName is how scheduled backups are named; it sorts by time.
var storedName = regexp.MustCompile(`^millrace-\d{8}T\d{6}(\.\d{3})?Z\.age$`)

// Service makes backups of a running server: on request (the API) and on
// a schedule.
type Service struct {
	src   Source
	sched Schedule
	// Audit, if set, records scheduled backups.
	Audit *audit.Log

	mu     sync.Mutex // one backup at a time: each snapshot costs disk and I/O
	cancel context.CancelFunc
	done   chan struct{}
}

// NewService returns a service backing up src. A schedule folder inside
// the data directory is left out of the backups.
func NewService(src Source, sched Schedule) *Service {
	if sched.Keep <= 0 {
		sched.Keep = 7
	}
	if sched.Enabled() {
		if rel, err := filepath.Rel(src.DataDir, sched.Dir); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
			src.Skip = append(slices.Clone(src.Skip), filepath.ToSlash(rel))
		}
	}
	return &Service{src: src, sched: sched}
}

// Write streams a backup for the given recipients to w.
func (s *Service) Write(ctx context.Context, w io.Writer, recipients ...age.Recipient) (Manifest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Create(ctx, w, s.src, recipients...)
}

// Start begins the scheduled backups, if any; Stop ends them.
func (s *Service) Start(ctx context.Context) error {
	if !s.sched.Enabled() {
		return nil
	}
	if len(s.sched.Recipients) == 0 {
		return &Error{Msg: "scheduled backups need recipients", Hint: "set MILLRACE_BACKUP_RECIPIENTS_FILE or MILLRACE_BACKUP_PASSPHRASE_FILE"}
	}
	if err := os.MkdirAll(s.sched.Dir, 0o700); err != nil {
		return fmt.Errorf("creating the backup folder: %w", err)
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.sched.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if name, err := s.RunScheduled(ctx); err != nil {
					slog.Error("scheduled backup failed", "err", err)
				} else {
					slog.Info("scheduled backup written", "file", name)
				}
			}
		}
	}()
	return nil
}

// Stop ends the schedule; it is safe twice and before Start.
func (s *Service) Stop() {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
}

// RunScheduled writes one backup into the schedule's folder now, then
// removes the oldest beyond Keep. It returns the new file's name.
func (s *Service) RunScheduled(ctx context.Context) (string, error) {
	name, err := s.runScheduled(ctx)
	// Backups through the API are audited with their request; scheduled
	// ones are the server's own doing, recorded here.
	e := audit.Event{Action: "backup-scheduled", Target: name}
	if err != nil {
		e.Outcome, e.Detail = audit.Failure, err.Error()
	}
	s.Audit.Record(ctx, e)
	return name, err
}

func (s *Service) runScheduled(ctx context.Context) (string, error) {
	if !s.sched.Enabled() {
		return "", &Error{Msg: "no backup schedule is configured", Hint: "set MILLRACE_BACKUP_DIR and MILLRACE_BACKUP_INTERVAL"}
	}
	if err := os.MkdirAll(s.sched.Dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the backup folder: %w", err)
	}
	name := "millrace-" + time.Now().UTC().Format("20060102T150405.000Z") + ".age"
	final := filepath.Join(s.sched.Dir, name)
	tmp := final + ".partial"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, err = s.Write(ctx, f, s.sched.Recipients...)
	if err == nil {
		err = f.Sync()
	}
	if err := errors.Join(err, f.Close()); err != nil {
		os.Remove(tmp)
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", err
	}
	list, err := s.List()
	if err != nil {
		return name, err
	}
	for i := s.sched.Keep; i < len(list); i++ {
		if err := os.Remove(filepath.Join(s.sched.Dir, list[i].Name)); err != nil {
			return name, err
		}
	}
	return name, nil
}

// List returns the scheduled backups, newest first.
func (s *Service) List() ([]Stored, error) {
	if !s.sched.Enabled() {
		return []Stored{}, nil
	}
	entries, err := os.ReadDir(s.sched.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return []Stored{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := []Stored{}
	for _, e := range entries {
		if !storedName.MatchString(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, Stored{Name: e.Name(), Size: fi.Size(), CreatedAt: fi.ModTime().UTC()})
	}
	slices.SortFunc(out, func(a, b Stored) int { return strings.Compare(b.Name, a.Name) })
	return out, nil
}

// Open opens a scheduled backup by name; fs.ErrNotExist for a name that
// is not one (only names List returns are accepted, so no path reaches
// outside the folder).
func (s *Service) Open(name string) (*os.File, error) {
	if !s.sched.Enabled() || !storedName.MatchString(name) {
		return nil, fs.ErrNotExist
	}
	return os.Open(filepath.Join(s.sched.Dir, name))
}
