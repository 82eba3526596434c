package datasets_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/millrace/millrace/server/datasets"
	"github.com/millrace/millrace/server/datasets/spamcorpus"
	"github.com/millrace/millrace/server/store/sqlite"
)

// BenchmarkImportSpamCorpus imports the SpamAssassin corpus as JSONL (about
// 12 MB, 6046 rows). "decode" is the baseline: only decoding the JSONL
// lines, which every import does; "import" adds column choice, the split,
// statistics and the synced files; "import+redact" redacts e-mail, phone
// and IP addresses too.
func BenchmarkImportSpamCorpus(b *testing.B) {
	dir, err := spamcorpus.Dir()
	if err != nil {
		b.Fatal(err)
	}
	msgs, err := spamcorpus.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := spamcorpus.WriteJSONL(&buf, msgs); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	tmp := b.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(tmp, "millrace.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	d := datasets.New(db, datasets.Config{Dir: filepath.Join(tmp, "datasets")})

	b.Run("decode", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := datasets.ReadExamplesFrom(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(msgs)*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	for _, c := range []struct {
		name   string
		redact []string
	}{{"import", nil}, {"import+redact", datasets.RedactKinds}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := d.Import(context.Background(), bytes.NewReader(data), int64(len(data)), datasets.ImportOptions{Filename: "spam.jsonl", Redact: c.redact}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(msgs)*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
