// Command sdxl-tiny writes a tiny Stable Diffusion XL model folder in
// Hugging Face Optimum's layout (package onnxbuild/sdxl), to try the
// stable_diffusion_xl module without real weights:
//
//	go run ./accel/cmd/sdxl-tiny -o models/sdxl-tiny [-variant fp32|fp16] [-heavy] [-turbo]
//
// The images it makes are noise-like patterns, not pictures: the models
// have the real inputs and outputs but tiny made-up weights.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/millrace/millrace/accel/onnxbuild/sdxl"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sdxl-tiny:", err)
		os.Exit(2)
	}
}

func run(_ context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("sdxl-tiny", flag.ContinueOnError)
	out := fs.String("o", "", "folder to write (created if missing)")
	variant := fs.String("variant", "fp32", "exporter variant: fp32 (int32 ids, rank-0 float timestep, latent_sample) or fp16 (fp16 UNet and text encoders, int64 ids and timestep, latent_parameters)")
	heavy := fs.Bool("heavy", false, fmt.Sprintf("make each UNet call slow (%d 1024×1024 matrix products), for overhead benchmarks", sdxl.DefaultHeavyMatMuls))
	turbo := fs.Bool("turbo", false, "write SDXL-Turbo's scheduler configuration (Euler ancestral, trailing spacing)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("-o DIR is required")
	}
	opts := sdxl.Options{Variant: sdxl.Variant(*variant), Turbo: *turbo}
	if *heavy {
		opts.HeavyMatMuls = sdxl.DefaultHeavyMatMuls
	}
	if err := sdxl.Write(*out, opts); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote a tiny SDXL folder (%s) to %s\n", opts.Variant, *out)
	return nil
}
