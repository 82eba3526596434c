package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/millrace/millrace/accel/client"
	"github.com/millrace/millrace/accel/oip"
	"github.com/millrace/millrace/accel/trainjob"
	"github.com/millrace/millrace/server"
	"github.com/millrace/millrace/server/accel"
	"github.com/millrace/millrace/server/datasets"
	"github.com/millrace/millrace/server/datasets/naivebayes"
	"github.com/millrace/millrace/server/datasets/spamcorpus"
	"github.com/millrace/millrace/server/internal/acceltest"
)

// New e-mails, not in the corpus, for the trained model to label.
const (
	newSpam = "Subject: URGENT: claim your FREE prize now\n\nCongratulations! You have been selected to receive a $1,000,000 cash prize. " +
		"Click here to claim your reward before it expires. Limited time offer, act now! Unsubscribe below."
	newHam = "Subject: Re: patch for the build script\n\nThanks, I merged your patch into the release branch. " +
		"The tests pass on my machine now; can you check the nightly build tomorrow and update the notes?"
)

// The whole training story through a real server, its millrace-accel
// child and ONNX Runtime, on the real SpamAssassin corpus: upload the
// corpus as a dataset, train a spam classifier while watching its epochs
// over SSE, kill the accelerator child mid-job (the job resumes from its
// checkpoint on the next child), check held-out accuracy against
// multinomial naive Bayes on the same split, find the model's lineage in
// /v1/models, label new e-mails with a workflow of the text_classify
// module, and check that the module's featurisation (in WebAssembly)
// gives the model the same tensors as the native featuriser.
func TestTrainSpamClassifierEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Config{DataDir: dataDir, Listener: ln, Out: out, Ready: func(addr string) { ready <- addr },
			Accel: accel.Config{Mode: accel.ModeOn, Binary: acceltest.Binary(t), Library: acceltest.Library(t)}})
	}()
	var p *process
	select {
	case addr := <-ready:
		p = &process{base: "http://" + addr}
	case err := <-done:
		t.Fatalf("server stopped: %v\n%s", err, out.String())
	}
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	tok := regexp.MustCompile(`mr_[A-Za-z0-9_-]{43}`).FindString(out.String())
	accelStatus := waitAccel(t, p, tok, 0)

	// Upload the corpus as a JSONL dataset.
	dir, err := spamcorpus.Dir()
	require.NoError(t, err)
	msgs, err := spamcorpus.Load(dir)
	require.NoError(t, err)
	var corpus bytes.Buffer
	require.NoError(t, spamcorpus.WriteJSONL(&corpus, msgs))
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "spamassassin.jsonl")
	fw.Write(corpus.Bytes())
	mw.Close()
	ds := p.call(t, tok, http.MethodPost, "/v1/datasets?seed=7", &multipartBody{&body, mw.FormDataContentType()})
	dsID := ds["id"].(string)
	version := int(ds["version"].(float64))

	// The baseline, on the same split.
	vdir := filepath.Join(dataDir, "datasets", dsID, strconv.Itoa(version))
	nb, err := naivebayes.Evaluate(datasets.Version{TrainPath: filepath.Join(vdir, datasets.TrainFile), ValidationPath: filepath.Join(vdir, datasets.ValidationFile)})
	require.NoError(t, err)

	// Bad hyperparameters are a 422 that names the field.
	status, problem := call(t, tok, http.MethodPost, p.base+"/v1/training-jobs", map[string]any{
		"dataset_id": dsID, "dataset_version": version, "model_name": "spam_classifier", "hyperparameters": map[string]any{"learning_rate": -1}})
	require.Equal(t, http.StatusUnprocessableEntity, status)
	require.Contains(t, problem["errors"].([]any)[0].(map[string]any)["location"], "body.hyperparameters.learning_rate")

	job := p.call(t, tok, http.MethodPost, "/v1/training-jobs", map[string]any{
		"task": "text_classification", "dataset_id": dsID, "dataset_version": version, "model_name": "spam_classifier",
		"hyperparameters": map[string]any{"epochs": 3, "patience": -1}})
	jobID := job["id"].(string)

	// Watch the epochs live; kill the child after the first.
	var epochs []trainjob.Epoch
	var finished map[string]any
	killed := false
	var firstEpochTime time.Time
	streamSSE(t, p.base+"/v1/training-jobs/"+jobID+"/events", tok, func(data map[string]any) bool {
		switch data["type"] {
		case "epoch":
			var ev trainjob.Epoch
			raw, _ := json.Marshal(data["epoch"])
			require.NoError(t, json.Unmarshal(raw, &ev))
			t.Logf("epoch %d: loss %.4f, validation accuracy %.4f, %.0f examples/s", ev.Epoch, ev.TrainLoss, ev.ValidationAccuracy, ev.ExamplesPerSecond)
			epochs = append(epochs, ev)
			if !killed {
				killed, firstEpochTime = true, ev.Time
				require.NoError(t, syscall.Kill(accelStatus.PID, syscall.SIGKILL))
			}
		case "finished":
			finished = data
			return false
		}
		return true
	})
	require.NotNil(t, finished)
	require.Equal(t, "succeeded", finished["state"], finished["error"])
	require.True(t, killed)
	after := waitAccel(t, p, tok, 1)
	require.NotEqual(t, accelStatus.PID, after.PID, "the child was restarted")
	job = p.call(t, tok, http.MethodGet, "/v1/training-jobs/"+jobID, nil)
	var stored []trainjob.Epoch
	raw, _ := json.Marshal(job["epochs"])
	require.NoError(t, json.Unmarshal(raw, &stored))
	require.Len(t, stored, 3)
	for i, ev := range stored {
		require.Equal(t, i+1, ev.Epoch)
	}
	require.True(t, firstEpochTime.Equal(stored[0].Time), "epoch 1 was not trained again after the kill: the job resumed from its checkpoint")

	var res trainjob.JobResult
	raw, _ = json.Marshal(job["result"])
	require.NoError(t, json.Unmarshal(raw, &res))
	t.Logf("held-out accuracy: trained %.4f (best epoch %d), naive Bayes %.4f, on %d validation messages", res.ValidationAccuracy, res.BestEpoch, nb.Accuracy, res.ValidationExamples)
	require.Equal(t, nb.ValidationRows, res.ValidationExamples, "the same split")
	require.GreaterOrEqual(t, res.ValidationAccuracy, 0.95)
	require.GreaterOrEqual(t, res.ValidationAccuracy, nb.Accuracy)

	// The registry shows the model with its lineage.
	model := p.call(t, tok, http.MethodGet, "/v1/models/spam_classifier", nil)
	lineage := model["training"].(map[string]any)
	require.Equal(t, jobID, lineage["job_id"])
	require.Equal(t, dsID, lineage["dataset_id"])
	require.EqualValues(t, version, lineage["dataset_version"])
	require.EqualValues(t, 3, lineage["hyperparameters"].(map[string]any)["epochs"])
	require.InDelta(t, res.ValidationAccuracy, lineage["metrics"].(map[string]any)["validation_accuracy"], 1e-12)
	require.Len(t, model["inputs"], 2, model)

	// A workflow labels new e-mails.
	p.call(t, tok, http.MethodPut, "/v1/workflows/triage", map[string]any{
		"name": "triage",
		"nodes": []any{map[string]any{"id": "classify", "module": "text_classify@1.1.0", "config": map[string]any{"model": "spam_classifier"},
			"input": map[string]any{"expression": "{'text': input.email}"}}},
	})
	p.call(t, tok, http.MethodPost, "/v1/workflows/triage/publish", nil)
	for email, want := range map[string]string{newSpam: "spam", newHam: "ham"} {
		runID := p.call(t, tok, http.MethodPost, "/v1/workflows/triage/runs", map[string]any{"input": map[string]any{"email": email}})["id"].(string)
		var run map[string]any
		require.Eventually(t, func() bool {
			run = p.call(t, tok, http.MethodGet, "/v1/runs/"+runID, nil)
			return run["status"] == "succeeded" || run["status"] == "failed"
		}, 2*time.Minute, 50*time.Millisecond)
		require.Equal(t, "succeeded", run["status"], run["error"])
		got := run["output"].(map[string]any)["classify"].(map[string]any)
		require.Equal(t, want, got["label"], got)
	}

	// The module's featurisation under wazero against the native one, on
	// the same texts through the same model: equal probabilities.
	texts := []string{newSpam, newHam, msgs[0].Text, msgs[len(msgs)-1].Text, "", "Ünïcödé and emoji 📧 text"}
	inv := p.call(t, tok, http.MethodPost, "/v1/modules/text_classify/versions/latest/invoke", map[string]any{
		"input": map[string]any{"texts": texts}, "config": map[string]any{"model": "spam_classifier"}})
	preds := inv["output"].(map[string]any)["predictions"].([]any)
	require.Len(t, preds, len(texts))
	cl := nativeAccel(t, filepath.Join(dataDir, "training", jobID))
	batch, err := res.Hyperparameters.Features().NewBatch(texts)
	require.NoError(t, err)
	shape := []int64{int64(batch.Rows), int64(batch.Width)}
	resp, err := cl.Infer(context.Background(), "spam_classifier", []oip.Tensor{
		oip.NewTensor("ids", shape, batch.IDs), oip.NewTensor("weights", shape, batch.Weights)}, client.Outputs("probabilities"))
	require.NoError(t, err)
	native, err := oip.Values[float32](resp.Outputs[0])
	require.NoError(t, err)
	for i := range texts {
		probs := preds[i].(map[string]any)["probabilities"].(map[string]any)
		for k, label := range res.Labels {
			require.InDelta(t, native[i*len(res.Labels)+k], probs[label], 1e-6, "text %d label %s", i, label)
		}
	}
}

// nativeAccel starts a millrace-accel of the test's own (the server's
// child takes a token the test does not know) serving the job folder's
// model.onnx as spam_classifier, and returns its client.
func nativeAccel(t *testing.T, jobDir string) *client.Client {
	t.Helper()
	models := t.TempDir()
	require.NoError(t, os.Symlink(jobDir, filepath.Join(models, "spam_classifier")))
	sock := filepath.Join(t.TempDir(), "native.sock")
	cmd := exec.Command(acceltest.Binary(t), "-models", models, "-listen", "unix:"+sock, "-ort-lib", acceltest.Library(t), "-intra-op-threads", "1")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	cl, err := client.New("unix:" + sock)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return cl.Ready(context.Background()) == nil }, time.Minute, 20*time.Millisecond)
	return cl
}

// waitAccel waits until the accelerator is ready after at least restarts
// restarts (a guard, not a timing assertion).
func waitAccel(t *testing.T, p *process, tok string, restarts int) accel.Status {
	t.Helper()
	var st accel.Status
	require.Eventually(t, func() bool {
		raw, _ := json.Marshal(p.call(t, tok, http.MethodGet, "/v1/accel", nil))
		st = accel.Status{}
		json.Unmarshal(raw, &st)
		return st.State == accel.StateReady && st.Restarts >= restarts
	}, 2*time.Minute, 20*time.Millisecond)
	return st
}

// streamSSE reads a Server-Sent Events stream and hands each message's
// data to fn until fn returns false or the stream ends.
func streamSSE(t *testing.T, url, tok string, fn func(map[string]any) bool) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<22)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(data), &m))
		if !fn(m) {
			return
		}
	}
}
