package training_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/millrace/millrace/accel/trainjob"
	"github.com/millrace/millrace/server/datasets/naivebayes"
	"github.com/millrace/millrace/server/datasets/spamcorpus"
	"github.com/millrace/millrace/server/internal/testguests"
	"github.com/millrace/millrace/server/registry"
	"github.com/millrace/millrace/server/sandbox"
	"github.com/millrace/millrace/server/training"
)

// BenchmarkTrainSpam trains the spam classifier on the SpamAssassin
// corpus (6046 messages, 20% held out) with the default hyperparameters
// for 3 epochs, through the whole stack: job in the store, driver, accel
// child, GoMLX. It reports the training throughput the accelerator
// measured (examples/s, the median epoch), the time from creating the job
// to the first epoch at 95% held-out accuracy or better (s-to-95%,
// featurisation and queueing included), the final accuracy, and, measured
// in the same run on the same split, multinomial naive Bayes's accuracy
// and its training-and-evaluation throughput (nb-examples/s), the
// baseline.
func BenchmarkTrainSpam(b *testing.B) {
	s := setup(b)
	ctx := context.Background()
	dir, err := spamcorpus.Dir()
	if err != nil {
		b.Fatal(err)
	}
	msgs, err := spamcorpus.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	var corpus bytes.Buffer
	if err := spamcorpus.WriteJSONL(&corpus, msgs); err != nil {
		b.Fatal(err)
	}
	v := s.importJSONL(b, "spamassassin", corpus.Bytes())
	m := s.manager()
	defer m.Stop()

	nbStart := time.Now()
	nb, err := naivebayes.Evaluate(v)
	if err != nil {
		b.Fatal(err)
	}
	nbRate := float64(nb.TrainRows+nb.ValidationRows) / time.Since(nbStart).Seconds()

	var rates, toTarget, accuracy []float64
	for b.Loop() {
		start := time.Now()
		job, err := m.Create(ctx, training.TrainingJobRequest{DatasetID: v.ID, DatasetVersion: v.Version, ModelName: "spam_classifier",
			Hyperparameters: trainjob.Hyperparameters{Epochs: 3, Patience: -1}})
		if err != nil {
			b.Fatal(err)
		}
		j := waitJob(b, m, job.ID, finished)
		if j.State != trainjob.StateSucceeded {
			b.Fatalf("job %s: %s", j.State, j.Error)
		}
		reached := false
		for _, ev := range j.Epochs {
			rates = append(rates, ev.ExamplesPerSecond)
			if !reached && ev.ValidationAccuracy >= 0.95 {
				reached = true
				toTarget = append(toTarget, ev.Time.Sub(start).Seconds())
			}
		}
		accuracy = append(accuracy, j.Result.ValidationAccuracy)
	}
	b.ReportMetric(median(rates), "examples/s")
	if len(toTarget) > 0 {
		b.ReportMetric(median(toTarget), "s-to-95%")
	}
	b.ReportMetric(median(accuracy), "accuracy")
	b.ReportMetric(nb.Accuracy, "nb-accuracy")
	b.ReportMetric(nbRate, "nb-examples/s")
}

// BenchmarkClassifyNode is the latency of labelling one e-mail with a
// trained classifier as a workflow node does it (one invocation of the
// text_classify reactor: instance, featurisation in WebAssembly, two
// tensor ABI computes on the accel child), against the echo module on the
// same input in the same run: the fixed cost of any node.
func BenchmarkClassifyNode(b *testing.B) {
	s := setup(b)
	ctx := context.Background()
	v := s.importJSONL(b, "mail", synthetic(b, 400))
	m := s.manager()
	defer m.Stop()
	job, err := m.Create(ctx, training.TrainingJobRequest{DatasetID: v.ID, DatasetVersion: v.Version, ModelName: "text_classifier",
		Hyperparameters: trainjob.Hyperparameters{Epochs: 2}})
	if err != nil {
		b.Fatal(err)
	}
	if j := waitJob(b, m, job.ID, finished); j.State != trainjob.StateSucceeded {
		b.Fatalf("job %s: %s", j.State, j.Error)
	}
	versions := map[string]string{}
	for _, id := range []string{"text_classify", "echo"} {
		mv, _, err := s.reg.Upload(ctx, testguests.Reactor(b, id), testguests.Manifest(b, id))
		if err != nil {
			b.Fatal(err)
		}
		versions[id] = mv.Version
		if _, err := s.reg.SetGrant(ctx, id, mv.Version, sandbox.Grant{Capabilities: mv.Manifest.Capabilities}); err != nil {
			b.Fatal(err)
		}
	}
	in, _ := json.Marshal(map[string]string{"text": "Subject: URGENT: claim your FREE prize now\n\nCongratulations! You have been selected to receive a cash prize. Click here to claim it before it expires."})
	for _, id := range []string{"echo", "text_classify"} {
		b.Run(id, func(b *testing.B) {
			for b.Loop() {
				res, _, err := s.reg.Invoke(ctx, registry.InvokeRequest{ModuleID: id, Version: versions[id], Input: in})
				if err != nil {
					b.Fatal(err)
				}
				if res.Failure != nil {
					b.Fatal(res.Failure)
				}
			}
		})
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
