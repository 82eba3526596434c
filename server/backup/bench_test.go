package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"filippo.io/age"
	"github.com/millrace/millrace/server/store"
	"github.com/millrace/millrace/server/store/sqlite"
)

// BenchmarkBackupSQLite backs up a SQLite server holding 32 MiB of
// artifacts (random, so incompressible) and 8 MiB of data-directory files.
// The baseline is the snapshot alone (VACUUM INTO), measured in the same
// run: the difference is what tar, SHA-256 and age cost.
func BenchmarkBackupSQLite(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "millrace.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.PutWorkflowDraft(ctx, "w", json.RawMessage(`{}`)); err != nil {
		b.Fatal(err)
	}
	if _, err := db.PublishWorkflow(ctx, "w", json.RawMessage(`{}`)); err != nil {
		b.Fatal(err)
	}
	if err := db.CreateRun(ctx, store.Run{ID: "r", WorkflowID: "w", Version: 1, Status: "succeeded", Input: json.RawMessage(`{}`)}); err != nil {
		b.Fatal(err)
	}
	for i := range 32 {
		data := make([]byte, 1<<20)
		rand.Read(data)
		sum := sha256.Sum256(data)
		if err := db.PutArtifact(ctx, store.Artifact{ID: fmt.Sprintf("art_%d", i), RunID: "r", NodeID: fmt.Sprint(i), Name: "output", ContentType: "application/octet-stream", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Data: data}); err != nil {
			b.Fatal(err)
		}
	}
	files := make([]byte, 8<<20)
	rand.Read(files)
	os.MkdirAll(filepath.Join(dir, "datasets"), 0o700)
	os.WriteFile(filepath.Join(dir, "datasets", "d.bin"), files, 0o600)
	id, _ := age.GenerateX25519Identity()
	const size = 40 << 20

	b.Run("baseline=vacuum-into", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			staging, _ := os.MkdirTemp(dir, tempPrefix)
			if _, _, err := snapshotSQLite(ctx, db.SQL(), staging); err != nil {
				b.Fatal(err)
			}
			os.RemoveAll(staging)
		}
	})
	b.Run("create", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := Create(ctx, io.Discard, Source{DataDir: dir, DB: db}, id.Recipient()); err != nil {
				b.Fatal(err)
			}
		}
	})
	var archive bytes.Buffer
	if _, err := Create(ctx, &archive, Source{DataDir: dir, DB: db}, id.Recipient()); err != nil {
		b.Fatal(err)
	}
	b.Run("restore", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			target := filepath.Join(b.TempDir(), "data")
			if _, err := Restore(ctx, bytes.NewReader(archive.Bytes()), Target{DataDir: target}, id); err != nil {
				b.Fatal(err)
			}
		}
	})
}
