// Command guests builds the benchmark's guest modules into a folder, for
// `make bench` (which then points the benchmark at it with
// ENGINES_GUESTS_DIR). Running it again rewrites only what changed.
//
//	go run ./cmd/guests -o ../../build/bench-engines/guests
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/millrace/millrace/bench/engines"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "guests:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("guests", flag.ContinueOnError)
	out := fs.String("o", "", "folder to write the guests into (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("-o is required")
	}
	_, err := engines.BuildGuests(ctx, *out)
	return err
}
