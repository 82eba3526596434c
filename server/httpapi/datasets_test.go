package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/millrace/millrace/server/auth"
	"github.com/millrace/millrace/server/datasets"
	"github.com/millrace/millrace/server/datasets/naivebayes"
	"github.com/millrace/millrace/server/datasets/spamcorpus"
	"github.com/millrace/millrace/server/httpapi"
	"github.com/stretchr/testify/require"
)

func setupDatasets(t *testing.T, cfg datasets.Config) (*fixture, *datasets.Datasets) {
	t.Helper()
	var sets *datasets.Datasets
	cfg.Dir = filepath.Join(t.TempDir(), "datasets")
	f := setupWith(t, func(d *httpapi.Deps) {
		sets = datasets.New(d.Store, cfg)
		d.Datasets = sets
	})
	return f, sets
}

func (f *fixture) uploadDataset(t *testing.T, token, path, filename string, data []byte) response {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("file", filename)
	w.Write(data)
	require.NoError(t, mw.Close())
	return f.do(t, token, http.MethodPost, path, &buf, mw.FormDataContentType())
}

func errorLocation(t *testing.T, r response) string {
	t.Helper()
	errs, _ := r.json(t)["errors"].([]any)
	require.NotEmpty(t, errs, string(r.body))
	return errs[0].(map[string]any)["location"].(string)
}

// A dataset's life over HTTP: upload, look, preview, add a version, fail
// precisely, delete.
func TestDatasetEndpoints(t *testing.T) {
	t.Parallel()
	f, _ := setupDatasets(t, datasets.Config{MaxUploadBytes: 64 << 10})
	var csv strings.Builder
	csv.WriteString("subject,body,label\n")
	for i := range 50 {
		fmt.Fprintf(&csv, "offer,\"win cash %d, write to winner%d@prize.example.com\",spam\n", i, i)
		fmt.Fprintf(&csv, "lunch,\"meet at noon %d? my laptop is 192.168.0.%d\",ham\n", i, i+1)
	}
	r := f.uploadDataset(t, f.admin, "/v1/datasets?name=Mail&seed=3&redact=email,ip", "mail.csv", []byte(csv.String()))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	v := r.json(t)
	id := v["id"].(string)
	require.Equal(t, "Mail", v["name"])
	require.EqualValues(t, 1, v["version"])
	require.Equal(t, "body", v["text_column"])
	require.Equal(t, "label", v["label_column"])
	require.EqualValues(t, 100, v["rows"])
	require.EqualValues(t, 0.2, v["validation_fraction"])
	require.Equal(t, []any{"email", "ip"}, v["redacted"])
	stats := v["stats"].(map[string]any)
	require.Equal(t, map[string]any{"spam": 50.0, "ham": 50.0}, stats["class_balance"])
	require.Equal(t, map[string]any{"email": 50.0, "ip": 50.0}, stats["redactions"])

	r = f.doJSON(t, http.MethodGet, "/v1/datasets/"+id+"/versions/1/rows?limit=100", nil)
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	rows := r.json(t)
	require.EqualValues(t, v["train_rows"], rows["total"])
	body := string(r.body)
	require.Contains(t, body, "write to [email]")
	require.Contains(t, body, "my laptop is [ip]")
	require.NotContains(t, body, "@prize.example.com")
	require.NotContains(t, body, "192.168.")

	r = f.doJSON(t, http.MethodGet, "/v1/datasets/"+id+"/versions/1/rows?split=validation&offset=2&limit=3", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, r.json(t)["rows"], 3)

	// The next upload is version 2; a bad one is refused precisely.
	r = f.uploadDataset(t, f.admin, "/v1/datasets/"+id+"/versions", "more.txt", []byte("spam\tbuy now\nham\tsee you\n"))
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	require.EqualValues(t, 2, r.json(t)["version"])
	require.Equal(t, "Mail", r.json(t)["name"])

	r = f.uploadDataset(t, f.admin, "/v1/datasets/"+id+"/versions", "bad.csv", []byte("text,label\nok,spam\n\"fine\" there,ham\n"))
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Contains(t, r.json(t)["detail"], "line 3, column 6: a quoted field goes on after its closing quote")
	require.Equal(t, "body.file", errorLocation(t, r))

	r = f.uploadDataset(t, f.admin, "/v1/datasets?label_column=kind", "x.csv", []byte("text,label\nok,spam\n"))
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Equal(t, "query.label_column", errorLocation(t, r))

	r = f.uploadDataset(t, f.admin, "/v1/datasets?validation_fraction=0.9", "x.csv", []byte("text,label\nok,spam\n"))
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "huma checks the bounds")

	r = f.uploadDataset(t, f.admin, "/v1/datasets", "big.csv", append([]byte("text,label\n"), bytes.Repeat([]byte("some words,spam\n"), 5000)...))
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status, string(r.body))

	r = f.doJSON(t, http.MethodGet, "/v1/datasets/"+id, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, r.json(t)["versions"], 2, "failed uploads made no version")
	r = f.doJSON(t, http.MethodGet, "/v1/datasets", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, r.json(t)["datasets"], 1)

	// Viewers read; only editors upload and delete.
	_, viewer, err := f.tokens.Issue(context.Background(), "viewer", []string{auth.ScopeDatasetsRead})
	require.NoError(t, err)
	r = f.do(t, viewer, http.MethodGet, "/v1/datasets/"+id+"/versions/2", nil, "")
	require.Equal(t, http.StatusOK, r.status)
	r = f.uploadDataset(t, viewer, "/v1/datasets", "x.csv", []byte("text,label\na,b\n"))
	require.Equal(t, http.StatusForbidden, r.status)
	r = f.do(t, viewer, http.MethodDelete, "/v1/datasets/"+id, nil, "")
	require.Equal(t, http.StatusForbidden, r.status)

	r = f.doJSON(t, http.MethodDelete, "/v1/datasets/"+id+"/versions/2", nil)
	require.Equal(t, http.StatusNoContent, r.status)
	r = f.doJSON(t, http.MethodGet, "/v1/datasets/"+id+"/versions/2", nil)
	require.Equal(t, http.StatusNotFound, r.status)
	r = f.doJSON(t, http.MethodDelete, "/v1/datasets/"+id, nil)
	require.Equal(t, http.StatusNoContent, r.status)
	r = f.doJSON(t, http.MethodGet, "/v1/datasets/"+id, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	r = f.doJSON(t, http.MethodGet, "/v1/datasets/ds_../versions/1", nil)
	require.Equal(t, http.StatusUnprocessableEntity, r.status, "ids are checked before any path is made")
}

// The SpamAssassin corpus (scripts/fetch-spam-corpus.sh), uploaded as a new
// user would, with every redaction on: the row count matches the corpus,
// the classes are the corpus's, and the naive Bayes baseline learns it.
func TestSpamCorpusThroughTheAPI(t *testing.T) {
	t.Parallel()
	dir, err := spamcorpus.Dir()
	require.NoError(t, err)
	msgs, err := spamcorpus.Load(dir)
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, spamcorpus.WriteJSONL(&buf, msgs))

	f, sets := setupDatasets(t, datasets.Config{})
	r := f.uploadDataset(t, f.admin, "/v1/datasets?name=spamassassin&seed=1&redact=email,phone,ip", "spamassassin.jsonl", buf.Bytes())
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	v := r.json(t)
	require.EqualValues(t, spamcorpus.Messages, v["rows"])
	require.Equal(t, []any{"ham", "spam"}, v["labels"])
	stats := v["stats"].(map[string]any)
	require.Equal(t, map[string]any{"spam": 1896.0, "ham": 4150.0}, stats["class_balance"])
	train, validation := v["train_rows"].(float64), v["validation_rows"].(float64)
	require.EqualValues(t, spamcorpus.Messages, train+validation)
	require.InDelta(t, 0.2, validation/spamcorpus.Messages, 0.02, "about a fifth held out")
	redactions := stats["redactions"].(map[string]any)
	require.Greater(t, redactions["email"], 1000.0, "the corpus is full of addresses")
	require.Greater(t, stats["average_length"], 500.0)
	t.Logf("spam corpus: %v rows (%v train, %v validation), %v duplicates (%v with another label), average %.0f characters, redactions %v",
		v["rows"], train, validation, stats["duplicates"], stats["conflicting_duplicates"], stats["average_length"], redactions)

	// Training reads the version through the Go API.
	version, err := sets.Version(context.Background(), v["id"].(string), 1)
	require.NoError(t, err)
	res, err := naivebayes.Evaluate(version)
	require.NoError(t, err)
	t.Logf("naive Bayes baseline on the redacted split: accuracy %.4f on %d validation rows", res.Accuracy, res.ValidationRows)
	require.Greater(t, res.Accuracy, 0.95)
}

// Dataset uploads have their own body limit, above the one for
// everything else.
func TestDatasetUploadsHaveTheirOwnBodyLimit(t *testing.T) {
	t.Parallel()
	var deps *httpapi.Deps
	f := setupWith(t, func(d *httpapi.Deps) {
		d.Datasets = datasets.New(d.Store, datasets.Config{Dir: filepath.Join(t.TempDir(), "datasets"), MaxUploadBytes: 4 << 20})
		deps = d
	})
	small := httptest.NewServer(httpapi.Handler(deps, 64<<10))
	t.Cleanup(small.Close)
	f.srv = small

	data := append([]byte("text,label\n"), bytes.Repeat([]byte("a sentence of some length,spam\nanother sentence,ham\n"), 4000)...)
	require.Greater(t, len(data), 64<<10)
	r := f.uploadDataset(t, f.admin, "/v1/datasets", "big.csv", data)
	require.Equal(t, http.StatusCreated, r.status, string(r.body))
	r = f.do(t, f.admin, http.MethodPost, "/v1/workflows", bytes.NewReader(data), "application/json")
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status, "other operations keep the general limit")
	r = f.uploadDataset(t, f.admin, "/v1/datasets", "huge.csv", bytes.Repeat(data, 30))
	require.Equal(t, http.StatusRequestEntityTooLarge, r.status, "over the dataset limit")
}
