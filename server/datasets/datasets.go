// Package datasets imports labelled text datasets (CSV, TSV, JSONL, plain
// text, or a zip of them), keeps each upload as an immutable version on the
// server's disk, and serves them to training.
//
// An imported version lives at <dir>/<dataset_id>/<version>/ (dir is
// <data dir>/datasets) and holds train.jsonl and validation.jsonl, one
// {"text": "...", "label": "..."} object per line (UTF-8, after redaction),
// and meta.json (Meta). Training reads them through (*Datasets).Version.
package datasets

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/millrace/millrace/server/store"
)

// File names inside a version's folder.
const (
	TrainFile      = "train.jsonl"
	ValidationFile = "validation.jsonl"
	MetaFile       = "meta.json"
)

// Splits a version has.
const (
	SplitTrain      = "train"
	SplitValidation = "validation"
)

// Meta is a version's meta.json.
type Meta struct {
	ID                 string            `json:"id" doc:"The dataset's id."`
	Name               string            `json:"name"`
	Version            int               `json:"version"`
	TextColumn         string            `json:"text_column" doc:"The column the texts came from."`
	LabelColumn        string            `json:"label_column" doc:"The column the labels came from."`
	Labels             []string          `json:"labels" doc:"The distinct labels, sorted."`
	Rows               int               `json:"rows"`
	TrainRows          int               `json:"train_rows"`
	ValidationRows     int               `json:"validation_rows"`
	Seed               int64             `json:"seed"`
	ValidationFraction float64           `json:"validation_fraction"`
	Redacted           []string          `json:"redacted" doc:"What was redacted at import: email, phone, ip."`
	SHA256             map[string]string `json:"sha256" doc:"Hex SHA-256 of train.jsonl and validation.jsonl."`
	CreatedAt          time.Time         `json:"created_at"`
	// Beyond the training contract: where the data came from, and stats.
	Source string   `json:"source" doc:"The uploaded file's name."`
	Format string   `json:"format" doc:"The uploaded file's format: csv, tsv, jsonl, txt or zip."`
	Stats  Stats    `json:"stats"`
	Files  []string `json:"files,omitempty" doc:"The files read from a zip, in archive order."`
}

// Version is an imported version: its meta and where its files are.
type Version struct {
	Meta
	Dir            string // the version's folder
	TrainPath      string // Dir/train.jsonl
	ValidationPath string // Dir/validation.jsonl
	MetaPath       string // Dir/meta.json
}

// Config sets where datasets live and the limits of an import.
type Config struct {
	// Dir holds the datasets: <data dir>/datasets.
	Dir string
	// MaxUploadBytes caps an uploaded file; default 256 MiB.
	MaxUploadBytes int64
	// MaxExtractedBytes caps what a zip decompresses to; default 1 GiB.
	MaxExtractedBytes int64
	// MaxZipEntries caps the entries of a zip; default 10000.
	MaxZipEntries int
	// MaxRows caps the rows of a version; default 5,000,000.
	MaxRows int
}

func (c Config) withDefaults() Config {
	if c.MaxUploadBytes <= 0 {
		c.MaxUploadBytes = 256 << 20
	}
	if c.MaxExtractedBytes <= 0 {
		c.MaxExtractedBytes = 1 << 30
	}
	if c.MaxZipEntries <= 0 {
		c.MaxZipEntries = 10_000
	}
	if c.MaxRows <= 0 {
		c.MaxRows = 5_000_000
	}
	return c
}

// Datasets imports, lists and deletes datasets.
type Datasets struct {
	store store.Store
	cfg   Config
	// mu serialises imports in this process, so that two uploads to one
	// dataset take consecutive version numbers instead of colliding; the
	// store's primary key settles collisions between processes.
	mu sync.Mutex
	// InUse, when set, says whether something (a training job) references
	// a version; such a version, and its dataset, cannot be deleted.
	InUse func(ctx context.Context, id string, version int) (bool, error)
}

// New returns the datasets service over a store; cfg.Dir must be set.
func New(s store.Store, cfg Config) *Datasets {
	return &Datasets{store: s, cfg: cfg.withDefaults()}
}

// Config returns the effective configuration.
func (d *Datasets) Config() Config { return d.cfg }

// ImportOptions say how to read an upload.
type ImportOptions struct {
	// DatasetID, when set, adds a version to that dataset; empty creates
	// a dataset.
	DatasetID string
	// Name names a new dataset; default: the file name without extension.
	Name string
	// Filename is the uploaded file's name; its extension gives the format
	// unless Format is set.
	Filename string
	Format   string
	// TextColumn and LabelColumn choose the columns; empty means detect.
	TextColumn, LabelColumn string
	// Seed and ValidationFraction decide the split (InValidation). The
	// fraction must be in (0, 0.5]; 0 means the default, 0.2.
	Seed               int64
	ValidationFraction float64
	// Redact lists what to redact: RedactEmail, RedactPhone, RedactIP.
	Redact []string
}

// DefaultValidationFraction is the share of rows held out by default.
const DefaultValidationFraction = 0.2

var idPattern = regexp.MustCompile(`^ds_[0-9a-f]{12}$`)

// ValidID reports whether id has the form of a dataset id (ds_ and 12 hex
// digits); only such ids are ever joined into a path.
func ValidID(id string) bool { return idPattern.MatchString(id) }

func notFound(id string, version int) error {
	if version > 0 {
		return &Error{Kind: KindNotFound, Msg: fmt.Sprintf("dataset %s has no version %d", id, version)}
	}
	return &Error{Kind: KindNotFound, Msg: fmt.Sprintf("no dataset %s", id)}
}

// Import reads an upload of size bytes and stores it as a new version.
// Nothing of a failed import remains: the files are written into a
// temporary folder, synced, and renamed into place, and the version's row
// is inserted right after; a crash in between leaves a folder without a
// row, which Sweep removes.
func (d *Datasets) Import(ctx context.Context, src io.ReaderAt, size int64, opt ImportOptions) (Version, error) {
	if size > d.cfg.MaxUploadBytes {
		return Version{}, &Error{Kind: KindTooLarge, Field: "body.file", Msg: fmt.Sprintf("the file is %d bytes; the limit is %d", size, d.cfg.MaxUploadBytes)}
	}
	if opt.DatasetID != "" {
		if !ValidID(opt.DatasetID) {
			return Version{}, notFound(opt.DatasetID, 0)
		}
		if _, err := d.store.Dataset(ctx, opt.DatasetID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return Version{}, notFound(opt.DatasetID, 0)
			}
			return Version{}, err
		}
	}
	frac := opt.ValidationFraction
	if frac == 0 {
		frac = DefaultValidationFraction
	}
	if !(frac > 0 && frac <= 0.5) {
		return Version{}, invalid("query.validation_fraction", "validation_fraction must be above 0 and at most 0.5, not %v", opt.ValidationFraction)
	}
	red, err := newRedactor(opt.Redact)
	if err != nil {
		return Version{}, err
	}

	head := make([]byte, 512)
	n, _ := src.ReadAt(head, 0)
	format := strings.ToLower(opt.Format)
	if format == "" {
		if format, err = detectFormat(opt.Filename, head[:n]); err != nil {
			return Version{}, err
		}
	} else if !slices.Contains(Formats, format) {
		return Version{}, invalid("query.format", "unknown format %q; formats are %s", opt.Format, strings.Join(Formats, ", "))
	}
	lim := limits{maxRows: d.cfg.MaxRows, maxZipEntries: d.cfg.MaxZipEntries, maxExtractedBytes: d.cfg.MaxExtractedBytes}
	t := newTable()
	if format == FormatZip {
		err = parseZip(t, src, size, lim)
	} else {
		data, rerr := io.ReadAll(io.NewSectionReader(src, 0, size))
		if rerr != nil {
			return Version{}, rerr
		}
		err = parseFile(t, format, "", data, "", lim)
	}
	if err != nil {
		return Version{}, err
	}
	if len(t.records) == 0 {
		return Version{}, invalid("body.file", "the file holds no rows")
	}
	ti, li, err := chooseColumns(t, opt.TextColumn, opt.LabelColumn)
	if err != nil {
		return Version{}, err
	}

	var train, validation []Example
	all := make([]Example, 0, len(t.records))
	normalized := make([]string, 0, len(t.records))
	files := []string{}
	for _, r := range t.records {
		if r.file != "" && (len(files) == 0 || files[len(files)-1] != r.file) {
			files = append(files, r.file)
		}
		label := strings.TrimSpace(r.value(li))
		text := r.value(ti)
		where := &Error{Kind: KindInvalid, Field: "body.file", File: r.file, Line: r.line}
		switch {
		case label == "":
			where.Msg = fmt.Sprintf("the label (column %q) is empty", t.columns[li])
			return Version{}, where
		case utf8.RuneCountInString(label) > 200:
			where.Msg = fmt.Sprintf("the label (column %q) is longer than 200 characters: is it the label column? Choose it with label_column", t.columns[li])
			return Version{}, where
		case strings.TrimSpace(text) == "":
			where.Msg = fmt.Sprintf("the text (column %q) is empty", t.columns[ti])
			return Version{}, where
		}
		e := Example{Text: red.apply(text), Label: label}
		n := Normalize(e.Text)
		all, normalized = append(all, e), append(normalized, n)
		if inValidation(opt.Seed, frac, n) {
			validation = append(validation, e)
		} else {
			train = append(train, e)
		}
	}
	labels := labelsOf(all)
	if len(labels) < 2 {
		return Version{}, invalid("query.label_column", "the label column %q holds one label (%q); a classifier needs two or more", t.columns[li], labels[0])
	}
	if len(labels) > maxLabels {
		return Version{}, invalid("query.label_column", "the label column %q holds %d distinct labels, more than %d: is it the label column? Choose it with label_column", t.columns[li], len(labels), maxLabels)
	}
	stats := statsOf(all, normalized)
	if len(red.kinds) > 0 {
		stats.Redactions = red.counts
	}
	name := opt.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(opt.Filename), filepath.Ext(opt.Filename))
	}
	if name == "" || name == "." {
		name = "dataset"
	}
	meta := Meta{
		Name: name, TextColumn: t.columns[ti], LabelColumn: t.columns[li], Labels: labels,
		Rows: len(all), TrainRows: len(train), ValidationRows: len(validation),
		Seed: opt.Seed, ValidationFraction: frac, Redacted: red.kinds, SHA256: map[string]string{},
		CreatedAt: time.Now().UTC().Truncate(time.Millisecond), Source: filepath.Base(opt.Filename), Format: format, Stats: stats,
	}
	if meta.Redacted == nil {
		meta.Redacted = []string{}
	}
	if len(files) > 0 {
		meta.Files = files
	}
	return d.commit(ctx, opt.DatasetID, meta, train, validation)
}

// commit writes a version's files and records it.
func (d *Datasets) commit(ctx context.Context, id string, meta Meta, train, validation []Example) (Version, error) {
	if err := os.MkdirAll(d.cfg.Dir, 0o700); err != nil {
		return Version{}, err
	}
	tmp, err := os.MkdirTemp(d.cfg.Dir, ".import-")
	if err != nil {
		return Version{}, err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	for _, f := range []struct {
		name string
		rows []Example
	}{{TrainFile, train}, {ValidationFile, validation}} {
		sum, err := writeExamples(filepath.Join(tmp, f.name), f.rows)
		if err != nil {
			return Version{}, err
		}
		meta.SHA256[f.name] = sum
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if id == "" {
		if id, err = newID(); err != nil {
			return Version{}, err
		}
		meta.Version = 1
	} else {
		ds, err := d.store.Dataset(ctx, id)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return Version{}, notFound(id, 0)
			}
			return Version{}, err
		}
		meta.Name = ds.Name
		meta.Version = ds.NextVersion // never a deleted version's number
	}
	meta.ID = id
	metaJSON, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return Version{}, err
	}
	if err := writeFileSync(filepath.Join(tmp, MetaFile), metaJSON); err != nil {
		return Version{}, err
	}
	if err := syncDir(tmp); err != nil {
		return Version{}, err
	}
	datasetDir := filepath.Join(d.cfg.Dir, id)
	if err := os.MkdirAll(datasetDir, 0o700); err != nil {
		return Version{}, err
	}
	final := filepath.Join(datasetDir, strconv.Itoa(meta.Version))
	// Rename refuses to replace a folder with files in it: another
	// process importing into this dataset got this number first.
	if err := os.Rename(tmp, final); err != nil {
		if _, serr := os.Stat(final); serr == nil {
			return Version{}, &Error{Kind: KindConflict, Msg: fmt.Sprintf("another import into dataset %s took version %d; upload again", id, meta.Version)}
		}
		return Version{}, err
	}
	if err := syncDir(datasetDir); err != nil {
		os.RemoveAll(final)
		return Version{}, err
	}
	err = d.store.CreateDatasetVersion(ctx, store.Dataset{ID: id, Name: meta.Name},
		store.DatasetVersion{DatasetID: id, Version: meta.Version, Rows: int64(meta.Rows), Meta: metaJSON})
	if err != nil {
		os.RemoveAll(final)
		if errors.Is(err, store.ErrConflict) {
			return Version{}, &Error{Kind: KindConflict, Msg: fmt.Sprintf("another import into dataset %s took version %d; upload again", id, meta.Version)}
		}
		if errors.Is(err, store.ErrNotFound) {
			return Version{}, notFound(id, 0) // deleted while this imported
		}
		return Version{}, err
	}
	return d.version(meta), nil
}

func newID() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "ds_" + hex.EncodeToString(b), nil
}

// writeExamples writes one JSON object per line, syncs the file and
// returns its hex SHA-256.
func writeExamples(path string, rows []Example) (string, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<16)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // keep <, > and & readable in the files
	for _, r := range rows {
		if err := enc.Encode(r); err != nil {
			return "", err
		}
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	if err := f.Sync(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), f.Close()
}

func writeFileSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// syncDir makes a folder's entries (a rename into it) durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (d *Datasets) version(m Meta) Version {
	dir := filepath.Join(d.cfg.Dir, m.ID, strconv.Itoa(m.Version))
	return Version{Meta: m, Dir: dir, TrainPath: filepath.Join(dir, TrainFile), ValidationPath: filepath.Join(dir, ValidationFile), MetaPath: filepath.Join(dir, MetaFile)}
}

// Version returns an imported version with the paths of its files.
func (d *Datasets) Version(ctx context.Context, id string, version int) (Version, error) {
	if !ValidID(id) {
		return Version{}, notFound(id, version)
	}
	v, err := d.store.DatasetVersion(ctx, id, version)
	if errors.Is(err, store.ErrNotFound) {
		if _, derr := d.store.Dataset(ctx, id); errors.Is(derr, store.ErrNotFound) {
			return Version{}, notFound(id, 0)
		}
		return Version{}, notFound(id, version)
	}
	if err != nil {
		return Version{}, err
	}
	var m Meta
	if err := json.Unmarshal(v.Meta, &m); err != nil {
		return Version{}, fmt.Errorf("dataset %s version %d: stored meta: %w", id, version, err)
	}
	return d.version(m), nil
}

// Latest returns a dataset's newest version.
func (d *Datasets) Latest(ctx context.Context, id string) (Version, error) {
	if !ValidID(id) {
		return Version{}, notFound(id, 0)
	}
	ds, err := d.store.Dataset(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Version{}, notFound(id, 0)
	}
	if err != nil {
		return Version{}, err
	}
	if ds.LatestVersion == 0 {
		return Version{}, &Error{Kind: KindNotFound, Msg: fmt.Sprintf("dataset %s has no version left", id)}
	}
	return d.Version(ctx, id, ds.LatestVersion)
}

// Dataset is a dataset with the metas of its versions, oldest first.
type Dataset struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	LatestVersion int       `json:"latest_version" doc:"0 when every version was deleted."`
	CreatedAt     time.Time `json:"created_at"`
	Versions      []Meta    `json:"versions,omitempty"`
}

// Get returns a dataset with its versions.
func (d *Datasets) Get(ctx context.Context, id string) (Dataset, error) {
	if !ValidID(id) {
		return Dataset{}, notFound(id, 0)
	}
	ds, err := d.store.Dataset(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return Dataset{}, notFound(id, 0)
	}
	if err != nil {
		return Dataset{}, err
	}
	versions, err := d.store.ListDatasetVersions(ctx, id)
	if err != nil {
		return Dataset{}, err
	}
	out := Dataset{ID: ds.ID, Name: ds.Name, LatestVersion: ds.LatestVersion, CreatedAt: ds.CreatedAt, Versions: []Meta{}}
	for _, v := range versions {
		var m Meta
		if err := json.Unmarshal(v.Meta, &m); err != nil {
			return Dataset{}, fmt.Errorf("dataset %s version %d: stored meta: %w", id, v.Version, err)
		}
		out.Versions = append(out.Versions, m)
	}
	return out, nil
}

// List lists datasets by id, without their versions.
func (d *Datasets) List(ctx context.Context) ([]Dataset, error) {
	all, err := d.store.ListDatasets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Dataset, 0, len(all))
	for _, ds := range all {
		out = append(out, Dataset{ID: ds.ID, Name: ds.Name, LatestVersion: ds.LatestVersion, CreatedAt: ds.CreatedAt})
	}
	return out, nil
}

// Rows returns up to limit examples of a split from offset, and how many
// the split has.
func (d *Datasets) Rows(ctx context.Context, id string, version int, split string, offset, limit int) ([]Example, int, error) {
	v, err := d.Version(ctx, id, version)
	if err != nil {
		return nil, 0, err
	}
	path, total := v.TrainPath, v.TrainRows
	switch split {
	case SplitTrain, "":
	case SplitValidation:
		path, total = v.ValidationPath, v.ValidationRows
	default:
		return nil, 0, invalid("query.split", "split must be train or validation, not %q", split)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	out := []Example{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<30)
	for i := 0; sc.Scan() && len(out) < limit; i++ {
		if i < offset {
			continue
		}
		var e Example
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, 0, fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		out = append(out, e)
	}
	return out, total, sc.Err()
}

// ReadExamples reads a train.jsonl or validation.jsonl file.
func ReadExamples(path string) ([]Example, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out, err := ReadExamplesFrom(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}

// ReadExamplesFrom reads examples, one JSON object per line.
func ReadExamplesFrom(r io.Reader) ([]Example, error) {
	var out []Example
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<30)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var e Example
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

func (d *Datasets) checkNotInUse(ctx context.Context, id string, version int) error {
	if d.InUse == nil {
		return nil
	}
	used, err := d.InUse(ctx, id, version)
	if err != nil {
		return err
	}
	if used {
		return &Error{Kind: KindConflict, Msg: fmt.Sprintf("dataset %s version %d is used by a training job; delete the job first", id, version)}
	}
	return nil
}

// DeleteVersion deletes one version: its row, then its folder.
func (d *Datasets) DeleteVersion(ctx context.Context, id string, version int) error {
	if !ValidID(id) {
		return notFound(id, version)
	}
	if err := d.checkNotInUse(ctx, id, version); err != nil {
		return err
	}
	if err := d.store.DeleteDatasetVersion(ctx, id, version); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound(id, version)
		}
		if errors.Is(err, store.ErrConflict) { // a job created since checkNotInUse
			return &Error{Kind: KindConflict, Msg: fmt.Sprintf("dataset %s version %d is used by a training job; delete the job first", id, version)}
		}
		return err
	}
	return d.removeDir(filepath.Join(d.cfg.Dir, id, strconv.Itoa(version)))
}

// Delete deletes a dataset with all its versions.
func (d *Datasets) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return notFound(id, 0)
	}
	versions, err := d.store.ListDatasetVersions(ctx, id)
	if err != nil {
		return err
	}
	for _, v := range versions {
		if err := d.checkNotInUse(ctx, id, v.Version); err != nil {
			return err
		}
	}
	if err := d.store.DeleteDataset(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound(id, 0)
		}
		if errors.Is(err, store.ErrConflict) { // a job created since checkNotInUse
			return &Error{Kind: KindConflict, Msg: fmt.Sprintf("dataset %s is used by a training job; delete the job first", id)}
		}
		return err
	}
	return d.removeDir(filepath.Join(d.cfg.Dir, id))
}

// removeDir renames a folder aside before deleting it, so that a crash
// midway leaves no half-deleted version where a version is expected.
func (d *Datasets) removeDir(dir string) error {
	trash := filepath.Join(d.cfg.Dir, fmt.Sprintf(".trash-%d-%s", time.Now().UnixNano(), filepath.Base(dir)))
	if err := os.Rename(dir, trash); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	return os.RemoveAll(trash)
}

// Sweep removes what crashed imports and deletions left on disk:
// temporary folders, folders being deleted, and version folders with no
// row in the store, when they were last changed more than grace ago (a
// grace period spares imports in flight in other processes that share
// the folder). It returns the folders it removed.
func (d *Datasets) Sweep(ctx context.Context, grace time.Duration) ([]string, error) {
	entries, err := os.ReadDir(d.cfg.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cutoff := time.Now().Add(-grace)
	old := func(path string) bool {
		fi, err := os.Stat(path)
		return err == nil && fi.ModTime().Before(cutoff)
	}
	var removed []string
	remove := func(path string) error {
		if !old(path) {
			return nil
		}
		if err := os.RemoveAll(path); err != nil {
			return err
		}
		removed = append(removed, path)
		return nil
	}
	for _, e := range entries {
		path := filepath.Join(d.cfg.Dir, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), ".import-") || strings.HasPrefix(e.Name(), ".trash-"):
			if err := remove(path); err != nil {
				return removed, err
			}
		case e.IsDir() && ValidID(e.Name()):
			// Judged before its versions are swept, which touches it.
			datasetOld := old(path)
			versions, err := os.ReadDir(path)
			if err != nil {
				return removed, err
			}
			for _, v := range versions {
				n, err := strconv.Atoi(v.Name())
				if err != nil {
					continue
				}
				_, err = d.store.DatasetVersion(ctx, e.Name(), n)
				if errors.Is(err, store.ErrNotFound) {
					if err := remove(filepath.Join(path, v.Name())); err != nil {
						return removed, err
					}
				} else if err != nil {
					return removed, err
				}
			}
			if _, err := d.store.Dataset(ctx, e.Name()); errors.Is(err, store.ErrNotFound) {
				if rest, _ := os.ReadDir(path); len(rest) == 0 && datasetOld {
					if err := os.Remove(path); err != nil {
						return removed, err
					}
					removed = append(removed, path)
				}
			}
		}
	}
	return removed, nil
}
