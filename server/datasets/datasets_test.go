package datasets_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/millrace/millrace/server/datasets"
	"github.com/millrace/millrace/server/internal/pgtest"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/postgres"
	"github.com/millrace/millrace/server/store/sqlite"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func setup(t *testing.T) (*datasets.Datasets, string) {
	t.Helper()
	return setupOn(t, "sqlite")
}

// setupOn makes a datasets service over a fresh store of the given
// backend: sqlite, or postgres (a throwaway cluster, or DATABASE_URL).
func setupOn(t *testing.T, backend string) (*datasets.Datasets, string) {
	t.Helper()
	dir := t.TempDir()
	var s store.Store
	switch backend {
	case "sqlite":
		db, err := sqlite.Open(context.Background(), filepath.Join(dir, "millrace.db"))
		require.NoError(t, err)
		s = db
	case "postgres":
		db, err := postgres.Open(context.Background(), pgtest.URL(t))
		require.NoError(t, err)
		s = db
	}
	t.Cleanup(func() { s.Close() })
	root := filepath.Join(dir, "datasets")
	return datasets.New(s, datasets.Config{Dir: root}), root
}

var backends = []string{"sqlite", "postgres"}

func importBytes(t *testing.T, d *datasets.Datasets, name string, data []byte, opt datasets.ImportOptions) (datasets.Version, error) {
	t.Helper()
	opt.Filename = name
	return d.Import(context.Background(), bytes.NewReader(data), int64(len(data)), opt)
}

// spamCSV makes a small two-class CSV with n rows of each class.
func spamCSV(n int) []byte {
	var b strings.Builder
	b.WriteString("id,subject,Message,Category\n")
	for i := range n {
		fmt.Fprintf(&b, "%d,hello,\"win money now, offer %d\",spam\n", 2*i, i)
		fmt.Fprintf(&b, "%d,meeting,\"lunch on tuesday? \"\"agenda\"\" %d\",ham\n", 2*i+1, i)
	}
	return []byte(b.String())
}

func TestImportCSVDetectsColumnsAndWritesTheContract(t *testing.T) {
	t.Parallel()
	d, root := setup(t)
	v, err := importBytes(t, d, "mail.csv", spamCSV(100), datasets.ImportOptions{Seed: 7})
	require.NoError(t, err)
	require.Regexp(t, `^ds_[0-9a-f]{12}$`, v.ID)
	require.Equal(t, "mail", v.Name)
	require.Equal(t, 1, v.Version)
	require.Equal(t, "Message", v.TextColumn, "detected by name, case aside")
	require.Equal(t, "Category", v.LabelColumn)
	require.Equal(t, []string{"ham", "spam"}, v.Labels)
	require.Equal(t, 200, v.Rows)
	require.Equal(t, v.Rows, v.TrainRows+v.ValidationRows)
	require.InDelta(t, 40, v.ValidationRows, 20, "about 20%% held out")
	require.Equal(t, map[string]int{"ham": 100, "spam": 100}, v.Stats.ClassBalance)
	require.Equal(t, 0, v.Stats.Duplicates)
	require.Equal(t, "csv", v.Format)
	require.Equal(t, []string{}, v.Redacted)

	require.Equal(t, filepath.Join(root, v.ID, "1"), v.Dir)
	for _, f := range []string{datasets.TrainFile, datasets.ValidationFile} {
		data, err := os.ReadFile(filepath.Join(v.Dir, f))
		require.NoError(t, err)
		sum := sha256.Sum256(data)
		require.Equal(t, hex.EncodeToString(sum[:]), v.SHA256[f])
	}
	train, err := datasets.ReadExamples(v.TrainPath)
	require.NoError(t, err)
	require.Len(t, train, v.TrainRows)
	require.Contains(t, []string{"ham", "spam"}, train[0].Label)

	// meta.json carries exactly the training contract's fields (and more).
	raw, err := os.ReadFile(v.MetaPath)
	require.NoError(t, err)
	var meta map[string]any
	require.NoError(t, json.Unmarshal(raw, &meta))
	for _, k := range []string{"id", "name", "version", "text_column", "label_column", "labels", "rows", "train_rows", "validation_rows", "seed", "validation_fraction", "redacted", "sha256", "created_at"} {
		require.Contains(t, meta, k)
	}

	got, err := d.Version(context.Background(), v.ID, 1)
	require.NoError(t, err)
	require.Equal(t, v.TrainPath, got.TrainPath)
	require.Equal(t, v.SHA256, got.SHA256)

	rows, total, err := d.Rows(context.Background(), v.ID, 1, "validation", 1, 5)
	require.NoError(t, err)
	require.Equal(t, v.ValidationRows, total)
	require.Len(t, rows, 5)
	val, err := datasets.ReadExamples(v.ValidationPath)
	require.NoError(t, err)
	require.Equal(t, val[1:6], rows)
}

func TestImportFormats(t *testing.T) {
	t.Parallel()
	d, _ := setup(t)
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for _, f := range []struct{ name, body string }{
		{"corpus/spam/a.txt", "win money\ncheap pills\n\n"},
		{"corpus/ham/b.txt", "see you at lunch\r\nthe report is attached\n"},
		{"__MACOSX/corpus/._a.txt", "junk"},
		{"corpus/.DS_Store", "junk"},
		{"extra.csv", "text,label\nfree prize,spam\n"},
	} {
		w, err := zw.Create(f.name)
		require.NoError(t, err)
		w.Write([]byte(f.body))
	}
	require.NoError(t, zw.Close())

	cases := []struct {
		name, file, data string
		opt              datasets.ImportOptions
		rows             int
		balance          map[string]int
		text, label      string
	}{
		{name: "jsonl", file: "x.jsonl", data: "{\"body\":\"a b\",\"target\":1,\"n\":2.5}\n\n{\"body\":\"c\",\"target\":0,\"extra\":null}\r\n",
			rows: 2, balance: map[string]int{"0": 1, "1": 1}, text: "body", label: "target"},
		{name: "text with tabs", file: "x.txt", data: "spam\twin money\nham\tsee you\tsoon\n",
			rows: 2, balance: map[string]int{"spam": 1, "ham": 1}, text: "text", label: "label"},
		{name: "tsv", file: "x.tsv", data: "review\tsentiment\ngreat\tpos\nawful\tneg\n",
			rows: 2, balance: map[string]int{"pos": 1, "neg": 1}, text: "review", label: "sentiment"},
		{name: "zip", file: "x.zip", data: zbuf.String(),
			rows: 5, balance: map[string]int{"spam": 3, "ham": 2}, text: "text", label: "label"},
		{name: "sniffed jsonl", file: "upload", data: `{"a":"long text here","b":"x"}` + "\n" + `{"a":"more long text","b":"y"}`,
			rows: 2, balance: map[string]int{"x": 1, "y": 1}, text: "a", label: "b"},
		{name: "chosen columns", file: "x.csv", data: "q,r,s\nlong words here,x,1\nmore words,y,2\n",
			opt: datasets.ImportOptions{TextColumn: "q", LabelColumn: "s"}, rows: 2, balance: map[string]int{"1": 1, "2": 1}, text: "q", label: "s"},
		{name: "fallback heuristics", file: "x.csv", data: "q,r,s\nlong words here,x,a\nmore words,y,a\nand more,x,b\n",
			rows: 3, balance: map[string]int{"x": 2, "y": 1}, text: "q", label: "r"},
	}
	for _, c := range cases {
		v, err := importBytes(t, d, c.file, []byte(c.data), c.opt)
		require.NoError(t, err, c.name)
		require.Equal(t, c.rows, v.Rows, c.name)
		require.Equal(t, c.balance, v.Stats.ClassBalance, c.name)
		require.Equal(t, c.text, v.TextColumn, c.name)
		require.Equal(t, c.label, v.LabelColumn, c.name)
	}
}

func TestBadFilesArePreciseAndLeaveNothing(t *testing.T) {
	t.Parallel()
	zipOf := func(entries ...string) string {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		for i := 0; i < len(entries); i += 2 {
			w, _ := zw.Create(entries[i])
			w.Write([]byte(entries[i+1]))
		}
		zw.Close()
		return b.String()
	}
	var symlinkZip bytes.Buffer
	zw := zip.NewWriter(&symlinkZip)
	h := &zip.FileHeader{Name: "ham/link.txt"}
	h.SetMode(os.ModeSymlink | 0o777)
	w, _ := zw.CreateHeader(h)
	w.Write([]byte("/etc/passwd"))
	zw.Close()

	manyEntries := make([]string, 0, 40)
	for i := range 20 {
		manyEntries = append(manyEntries, fmt.Sprintf("ham/%d.txt", i), "x\n")
	}
	bomb := zipOf("spam/big.txt", strings.Repeat("a", 2<<20))

	cases := []struct {
		name, file, data string
		opt              datasets.ImportOptions
		want             string
		kind             datasets.Kind
	}{
		{"unterminated quote", "x.csv", "text,label\nok,spam\n\"never closed,ham\nmore,ham\n", datasets.ImportOptions{}, "line 3: unterminated quoted field", datasets.KindInvalid},
		{"bare quote", "x.csv", "text,label\nok,spam\nsay \"hi\",ham\n", datasets.ImportOptions{}, "line 3, column 5: a \" in an unquoted field", datasets.KindInvalid},
		{"stray quote in quoted field", "x.csv", "text,label\n\"say \"hi\" now\",ham\nok,spam\n", datasets.ImportOptions{}, "line 2, column 6: a quoted field goes on after its closing quote, or holds a stray \"", datasets.KindInvalid},
		{"field count", "x.csv", "text,label\nok,spam\nok,ham,extra\n", datasets.ImportOptions{}, "line 3: this row has a different number of fields than the header row", datasets.KindInvalid},
		{"invalid utf-8", "x.csv", "text,label\nok,spam\nnaïve \xff,ham\n", datasets.ImportOptions{}, "line 3, column 7: invalid UTF-8 (byte 0xff)", datasets.KindInvalid},
		{"json syntax", "x.jsonl", "{\"text\":\"a\",\"label\":\"x\"}\n{\"text\":\"é\" \"label\":\"y\"}\n", datasets.ImportOptions{}, "line 2, column 13: invalid JSON", datasets.KindInvalid},
		{"json unclosed", "x.jsonl", "{\"text\":\"a\",\n\"label\":\"x\"}\n", datasets.ImportOptions{}, "line 1, column 13: invalid JSON: the object is not closed", datasets.KindInvalid},
		{"json not object", "x.jsonl", "[1,2]\n", datasets.ImportOptions{}, "line 1, column 1: expected a JSON object", datasets.KindInvalid},
		{"json nested", "x.jsonl", "{\"text\":\"a\",\"label\":{\"x\":1}}\n", datasets.ImportOptions{}, "line 1: field \"label\" is an object", datasets.KindInvalid},
		{"json two values", "x.jsonl", "{\"text\":\"a\",\"label\":\"x\"} {}\n", datasets.ImportOptions{}, "line 1, column 26: more than one JSON value", datasets.KindInvalid},
		{"text without tab", "x.txt", "spam\twin\njust text\n", datasets.ImportOptions{}, "line 2: expected label<TAB>text", datasets.KindInvalid},
		{"empty label", "x.csv", "text,label\nok,spam\nfine,\n", datasets.ImportOptions{}, "line 3: the label (column \"label\") is empty", datasets.KindInvalid},
		{"one class", "x.csv", "text,label\nok,spam\nfine,spam\n", datasets.ImportOptions{}, "holds one label", datasets.KindInvalid},
		{"unknown column", "x.csv", "text,label\nok,spam\n", datasets.ImportOptions{TextColumn: "body"}, `no column named "body"; the columns are "text", "label"`, datasets.KindInvalid},
		{"one column", "x.csv", "text\nok\n", datasets.ImportOptions{}, "a dataset needs a text and a label column", datasets.KindInvalid},
		{"bad fraction", "x.csv", "text,label\nok,spam\n", datasets.ImportOptions{ValidationFraction: 0.9}, "validation_fraction must be above 0 and at most 0.5", datasets.KindInvalid},
		{"unknown format", "x.bin", "\x00\x01", datasets.ImportOptions{}, "cannot tell the format", datasets.KindInvalid},
		{"zip traversal", "x.zip", zipOf("../evil.txt", "spam\tx\n"), datasets.ImportOptions{}, "../evil.txt: refused entry name", datasets.KindInvalid},
		{"zip absolute", "x.zip", zipOf("/etc/x.txt", "spam\tx\n"), datasets.ImportOptions{}, "refused entry name: it is an absolute path", datasets.KindInvalid},
		{"zip backslash", "x.zip", zipOf("a\\..\\x.txt", "spam\tx\n"), datasets.ImportOptions{}, "it contains a backslash", datasets.KindInvalid},
		{"nested zip", "x.zip", zipOf("inner.zip", zipOf("a.txt", "x")), datasets.ImportOptions{}, "inner.zip: nested archives are refused", datasets.KindInvalid},
		{"nested zip disguised", "x.zip", zipOf("inner.txt", zipOf("a.txt", "x")), datasets.ImportOptions{}, "inner.txt: nested archives are refused", datasets.KindInvalid},
		{"zip symlink", "x.zip", symlinkZip.String(), datasets.ImportOptions{}, "ham/link.txt: not a regular file", datasets.KindInvalid},
		{"zip too many", "x.zip", zipOf(manyEntries...), datasets.ImportOptions{}, "the zip has 20 entries, more than the 10 allowed", datasets.KindTooLarge},
		{"zip bomb", "x.zip", bomb, datasets.ImportOptions{}, "spam/big.txt: the zip expands to more than 1048576 bytes", datasets.KindTooLarge},
		{"zip unknown file", "x.zip", zipOf("a.exe", "MZ"), datasets.ImportOptions{}, "a.exe: unknown file type", datasets.KindInvalid},
		{"zip error in file", "x.zip", zipOf("data/part.csv", "text,label\n\"x,y\n"), datasets.ImportOptions{}, "data/part.csv: line 2: unterminated quoted field", datasets.KindInvalid},
		{"not a zip", "x.zip", "PK\x03\x04garbage", datasets.ImportOptions{}, "not a readable zip archive", datasets.KindInvalid},
		{"empty", "x.csv", "", datasets.ImportOptions{}, "the file is empty", datasets.KindInvalid},
	}
	dir := t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, "millrace.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	root := filepath.Join(dir, "datasets")
	d := datasets.New(db, datasets.Config{Dir: root, MaxZipEntries: 10, MaxExtractedBytes: 1 << 20})
	for _, c := range cases {
		_, err := importBytes(t, d, c.file, []byte(c.data), c.opt)
		var e *datasets.Error
		require.ErrorAs(t, err, &e, c.name)
		require.Contains(t, err.Error(), c.want, c.name)
		require.Equal(t, c.kind, e.Kind, c.name)
		require.NotEmpty(t, e.Field, c.name)
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		require.Failf(t, "a failed import left something behind", "%s", e.Name())
	}
	list, err := d.List(context.Background())
	require.NoError(t, err)
	require.Empty(t, list)
}

func TestSplitIsDeterministicAndIgnoresOrder(t *testing.T) {
	t.Parallel()
	d, _ := setup(t)
	data := spamCSV(200)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	reversed := slices.Clone(lines[1:])
	slices.Reverse(reversed)
	shuffled := []byte(lines[0] + "\n" + strings.Join(reversed, "\n") + "\n")

	valSet := func(v datasets.Version) []string {
		ex, err := datasets.ReadExamples(v.ValidationPath)
		require.NoError(t, err)
		var out []string
		for _, e := range ex {
			out = append(out, e.Text)
		}
		slices.Sort(out)
		return out
	}
	a, err := importBytes(t, d, "a.csv", data, datasets.ImportOptions{Seed: 42})
	require.NoError(t, err)
	b, err := importBytes(t, d, "b.csv", shuffled, datasets.ImportOptions{Seed: 42})
	require.NoError(t, err)
	c, err := importBytes(t, d, "c.csv", data, datasets.ImportOptions{Seed: 43})
	require.NoError(t, err)
	require.Equal(t, valSet(a), valSet(b), "same rows, same seed: same split, whatever the order")
	require.NotEqual(t, valSet(a), valSet(c), "another seed, another split")

	// Duplicates (after normalisation) fall on one side.
	dup := []byte("text,label\n" + strings.Repeat("Same  TEXT,spam\nsame text,ham\n", 30) + "other,ham\n")
	v, err := importBytes(t, d, "dup.csv", dup, datasets.ImportOptions{Seed: 1, ValidationFraction: 0.5})
	require.NoError(t, err)
	require.Equal(t, 59, v.Stats.Duplicates)
	require.Equal(t, 30, v.Stats.ConflictingDuplicates)
	require.True(t, v.TrainRows == 60 || v.TrainRows == 1 || v.TrainRows == 61 || v.TrainRows == 0, "the 60 duplicates stay together: %d train rows", v.TrainRows)
}

func TestVersionsAreImmutableAndNumberedOnce(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testVersionsAreImmutableAndNumberedOnce(t, backend)
		})
	}
}

func testVersionsAreImmutableAndNumberedOnce(t *testing.T, backend string) {
	ctx := context.Background()
	d, root := setupOn(t, backend)
	v1, err := importBytes(t, d, "mail.csv", spamCSV(10), datasets.ImportOptions{Name: "Mail"})
	require.NoError(t, err)
	before, err := os.ReadFile(v1.TrainPath)
	require.NoError(t, err)

	v2, err := importBytes(t, d, "more.csv", spamCSV(20), datasets.ImportOptions{DatasetID: v1.ID, Name: "ignored"})
	require.NoError(t, err)
	require.Equal(t, 2, v2.Version)
	require.Equal(t, "Mail", v2.Name, "a dataset keeps its name")
	after, err := os.ReadFile(v1.TrainPath)
	require.NoError(t, err)
	require.Equal(t, before, after, "version 1 is untouched")

	require.NoError(t, d.DeleteVersion(ctx, v1.ID, 2))
	require.NoDirExists(t, v2.Dir)
	var e *datasets.Error
	require.ErrorAs(t, d.DeleteVersion(ctx, v1.ID, 2), &e)
	require.Equal(t, datasets.KindNotFound, e.Kind)
	v3, err := importBytes(t, d, "again.csv", spamCSV(5), datasets.ImportOptions{DatasetID: v1.ID})
	require.NoError(t, err)
	require.Equal(t, 3, v3.Version, "a deleted version's number is not reused")

	latest, err := d.Latest(ctx, v1.ID)
	require.NoError(t, err)
	require.Equal(t, 3, latest.Version)

	ds, err := d.Get(ctx, v1.ID)
	require.NoError(t, err)
	require.Equal(t, 3, ds.LatestVersion)
	require.Len(t, ds.Versions, 2)

	_, err = importBytes(t, d, "x.csv", spamCSV(5), datasets.ImportOptions{DatasetID: "ds_000000000000"})
	require.ErrorAs(t, err, &e)
	require.Equal(t, datasets.KindNotFound, e.Kind)
	_, err = d.Version(ctx, "../../etc", 1)
	require.ErrorAs(t, err, &e)
	require.Equal(t, datasets.KindNotFound, e.Kind)

	// A training job's version cannot be deleted.
	d.InUse = func(_ context.Context, id string, version int) (bool, error) { return version == 3, nil }
	require.ErrorAs(t, d.DeleteVersion(ctx, v1.ID, 3), &e)
	require.Equal(t, datasets.KindConflict, e.Kind)
	require.ErrorAs(t, d.Delete(ctx, v1.ID), &e)
	require.Equal(t, datasets.KindConflict, e.Kind)
	d.InUse = nil
	require.NoError(t, d.Delete(ctx, v1.ID))
	require.NoDirExists(t, filepath.Join(root, v1.ID))
	_, err = d.Get(ctx, v1.ID)
	require.ErrorAs(t, err, &e)
	require.Equal(t, datasets.KindNotFound, e.Kind)
}

func TestSweepRemovesWhatACrashLeft(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testSweepRemovesWhatACrashLeft(t, backend)
		})
	}
}

func testSweepRemovesWhatACrashLeft(t *testing.T, backend string) {
	ctx := context.Background()
	d, root := setupOn(t, backend)
	v, err := importBytes(t, d, "mail.csv", spamCSV(10), datasets.ImportOptions{})
	require.NoError(t, err)
	// A crash between the rename and the insert, a crash while writing,
	// and a crash while deleting.
	orphan := filepath.Join(root, v.ID, "2")
	require.NoError(t, os.CopyFS(orphan, os.DirFS(v.Dir)))
	require.NoError(t, os.MkdirAll(filepath.Join(root, ".import-123", "x"), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(root, ".trash-1-ds_aaaaaaaaaaaa"), 0o700))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "ds_bbbbbbbbbbbb", "1"), 0o700))

	removed, err := d.Sweep(ctx, -1)
	require.NoError(t, err)
	require.Len(t, removed, 5, "%v", removed)
	require.NoDirExists(t, orphan)
	require.DirExists(t, v.Dir, "a recorded version stays")
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, entries, 1)

	// The grace period spares what may be an import in flight.
	require.NoError(t, os.MkdirAll(filepath.Join(root, ".import-456"), 0o700))
	removed, err = d.Sweep(ctx, 1<<62)
	require.NoError(t, err)
	require.Empty(t, removed)

	// The next import after a crash takes the orphan's number safely.
	v2, err := importBytes(t, d, "more.csv", spamCSV(10), datasets.ImportOptions{DatasetID: v.ID})
	require.NoError(t, err)
	require.Equal(t, 2, v2.Version)
}

// Two servers (two services on one database and one folder) importing
// into one dataset at once: every import either gets its own version or a
// conflict to retry, and nothing is left that the database does not know.
func TestConcurrentImportsAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := postgres.Open(ctx, pgtest.URL(t))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	root := filepath.Join(dir, "datasets")
	a := datasets.New(db, datasets.Config{Dir: root})
	b := datasets.New(db, datasets.Config{Dir: root})
	data := spamCSV(20)
	first, err := a.Import(ctx, bytes.NewReader(data), int64(len(data)), datasets.ImportOptions{Filename: "x.csv"})
	require.NoError(t, err)

	type result struct {
		version int
		err     error
	}
	results := make(chan result, 8)
	var wg sync.WaitGroup
	for i := range 8 {
		svc := a
		if i%2 == 1 {
			svc = b
		}
		wg.Go(func() {
			v, err := svc.Import(ctx, bytes.NewReader(data), int64(len(data)), datasets.ImportOptions{Filename: "x.csv", DatasetID: first.ID})
			results <- result{v.Version, err}
		})
	}
	wg.Wait()
	close(results)
	seen := map[int]bool{1: true}
	for r := range results {
		if r.err != nil {
			var e *datasets.Error
			require.ErrorAs(t, r.err, &e)
			require.Equal(t, datasets.KindConflict, e.Kind, r.err.Error())
			continue
		}
		require.False(t, seen[r.version], "version %d given twice", r.version)
		seen[r.version] = true
	}
	ds, err := a.Get(ctx, first.ID)
	require.NoError(t, err)
	require.Len(t, ds.Versions, len(seen))
	entries, err := os.ReadDir(filepath.Join(root, first.ID))
	require.NoError(t, err)
	require.Len(t, entries, len(seen), "a folder for each recorded version, and nothing else")
	top, err := os.ReadDir(root)
	require.NoError(t, err)
	require.Len(t, top, 1, "no temporary folder left")
}

// Deleting a dataset while versions are being imported into it: each
// import either lands before the deletion (and goes with it) or is told
// the dataset does not exist. None brings the deleted dataset back, with
// a version whose folder the deletion removed.
func TestDeleteWhileImporting(t *testing.T) {
	t.Parallel()
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			d, root := setupOn(t, backend)
			data := spamCSV(20)
			first, err := importBytes(t, d, "x.csv", data, datasets.ImportOptions{})
			require.NoError(t, err)

			errs := make(chan error, 8)
			var deleted error
			var wg sync.WaitGroup
			for range cap(errs) - 1 {
				wg.Go(func() {
					_, err := d.Import(ctx, bytes.NewReader(data), int64(len(data)), datasets.ImportOptions{Filename: "x.csv", DatasetID: first.ID})
					errs <- err
				})
			}
			wg.Go(func() { deleted = d.Delete(ctx, first.ID) })
			wg.Wait()
			close(errs)
			require.NoError(t, deleted)
			for err := range errs {
				if err != nil {
					var e *datasets.Error
					require.ErrorAs(t, err, &e)
					require.Equal(t, datasets.KindNotFound, e.Kind, err.Error())
				}
			}
			ds, err := d.Get(ctx, first.ID)
			require.Error(t, err, "the deleted dataset came back with %d versions", len(ds.Versions))
			require.NoDirExists(t, filepath.Join(root, first.ID, "2"))
		})
	}
}
