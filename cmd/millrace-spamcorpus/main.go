// Command millrace-spamcorpus writes the SpamAssassin public mail corpus
// (fetched by scripts/fetch-spam-corpus.sh, which make accel-deps runs) as
// a JSONL file ready to upload as a dataset: one {"text", "label"} per
// message, label spam or ham (server/datasets/spamcorpus says which
// groups and what text).
//
//	millrace-spamcorpus [-corpus build/cache/spam-assassin/0.2.3] [-o spamassassin.jsonl]
//
// make spam-dataset writes build/spamassassin.jsonl with it.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/millrace/millrace/server/datasets/spamcorpus"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "millrace-spamcorpus:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("millrace-spamcorpus", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("corpus", "", "the unpacked corpus (default: build/cache/spam-assassin/"+spamcorpus.Version+" of this repository)")
	outPath := fs.String("o", "-", "the JSONL file to write; - for standard output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		d, err := spamcorpus.Dir()
		if err != nil {
			return err
		}
		*dir = d
	}
	msgs, err := spamcorpus.Load(*dir)
	if err != nil {
		return err
	}
	if *outPath == "-" {
		return spamcorpus.WriteJSONL(stdout, msgs)
	}
	// Written aside and renamed, so an interrupted run leaves no half file.
	tmp := *outPath + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := spamcorpus.WriteJSONL(f, msgs); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, *outPath); err != nil {
		return err
	}
	counts := map[string]int{}
	for _, m := range msgs {
		counts[m.Label]++
	}
	fmt.Fprintf(stderr, "wrote %s: %d messages (%d spam, %d ham)\n", *outPath, len(msgs), counts["spam"], counts["ham"])
	return nil
}
