package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func uploadDataset(t *testing.T, token, url, filename, data string) (int, map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("file", filename)
	io.WriteString(w, data)
	require.NoError(t, mw.Close())
	req, err := http.NewRequest(http.MethodPost, url, &buf)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	return res.StatusCode, body
}

// Datasets are kept in the data directory and survive a restart; what a
// crash left mid-import is swept at start, and its version number is then
// taken by the next upload.
func TestDatasetsSurviveRestartAndCrashLeftoversGo(t *testing.T) {
	dir := t.TempDir()
	base, out, stop := start(t, dir)
	token := regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`).FindString(out)
	require.NotEmpty(t, token)

	csv := "text,label\n" + strings.Repeat("a fairly long sentence about lunch plans and meetings,ham\nwin a prize now,spam\n", 20_000)
	status, v := uploadDataset(t, token, base+"/v1/datasets?name=mail", "mail.csv", csv)
	require.Equal(t, http.StatusCreated, status, v)
	id := v["id"].(string)
	versionDir := filepath.Join(dir, "datasets", id, "1")
	require.FileExists(t, filepath.Join(versionDir, "train.jsonl"))
	stop()

	// A crash after the rename and before the insert, and one mid-write.
	orphan := filepath.Join(dir, "datasets", id, "2")
	require.NoError(t, os.CopyFS(orphan, os.DirFS(versionDir)))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "datasets", ".import-42"), 0o700))

	t.Run("restart", func(t *testing.T) {
		base, _, _ := start(t, dir)
		require.NoDirExists(t, orphan)
		require.NoDirExists(t, filepath.Join(dir, "datasets", ".import-42"))
		status, body := call(t, token, http.MethodGet, base+"/v1/datasets/"+id+"/versions/1", nil)
		require.Equal(t, http.StatusOK, status, body)
		require.EqualValues(t, 40_000, body["rows"])
		status, body = uploadDataset(t, token, base+"/v1/datasets/"+id+"/versions", "more.txt", "spam\tbuy now\nham\tsee you\n")
		require.Equal(t, http.StatusCreated, status, body)
		require.EqualValues(t, 2, body["version"])
	})
}
