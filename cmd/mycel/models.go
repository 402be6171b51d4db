package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/mycel-network/mycel/internal/demomodel"
)

func cmdModels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "gen" {
		fmt.Fprintln(stderr, "usage: mycel models gen --out DIR [--bench|--peer] [--output text|json]")
		return errors.New("models: want subcommand gen")
	}
	fs := flag.NewFlagSet("models gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "models", "directory to write the GGUF files into")
	format := fs.String("output", "text", "output format: text or json")
	quiet := fs.Bool("quiet", false, "do not print progress")
	bench := fs.Bool("bench", false, "write the large memory-bound benchmark models (mycel-bench-f32/q8/q4k, ~0.8 GB) instead of the demo models")
	peer := fs.Bool("peer", false, "write the peer-check models (mycel-ref-f16/bf16/q4_0/qwen2) instead of the demo models")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("models gen: unexpected argument %q", fs.Arg(0))
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("models gen: unknown output format %q", *format)
	}
	progress := func(msg string) { fmt.Fprintln(stderr, msg) }
	if *quiet {
		progress = nil
	}
	if *bench && *peer {
		return errors.New("models gen: --bench and --peer exclude each other")
	}
	gen := demomodel.Generate
	switch {
	case *bench:
		gen = demomodel.GenerateBench
	case *peer:
		gen = demomodel.GeneratePeer
	}
	gs, err := gen(ctx, *out, progress)
	if err != nil {
		return fmt.Errorf("models gen: %w", err)
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(gs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSIZE\tSHA256\tPATH")
	for _, g := range gs {
		fmt.Fprintf(tw, "%s\t%.1f MB\t%s\t%s\n", g.Name, float64(g.Bytes)/1e6, g.SHA256, g.Path)
	}
	return tw.Flush()
}
