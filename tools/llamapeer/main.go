// Command llamapeer runs llama.cpp (as embedded in ollama's Go module) on a
// GGUF file, so that Mycel's built-in engine can be checked and benchmarked
// against an engine the project did not write.
//
//	llamapeer generate --model FILE --prompt TEXT --max-tokens N --logprobs K [--threads T]
//	llamapeer tokenize --model FILE TEXT
//	llamapeer bench --model FILE --threads T --prompt-tokens P --gen-tokens G [--parallel 4] [--reps 3]
//
// Every command prints one JSON value on stdout. generate decodes greedily
// from the raw logits (no sampling chain) and reports log-softmax
// log-probabilities computed in float64, in the shape of
// `mycel run --temperature 0 --logprobs K --output json`.
//
// Build it with scripts/build-peer.sh, which supplies the headers the module
// zip lacks.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(os.Stderr, "llamapeer: %v\n", err)
		}
		os.Exit(1)
	}
}

const usage = `usage:
  llamapeer generate --model FILE --prompt TEXT --max-tokens N --logprobs K [--threads T]
  llamapeer tokenize --model FILE TEXT
  llamapeer bench --model FILE --threads T --prompt-tokens P --gen-tokens G [--parallel 4] [--reps 3]
`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "generate":
		return cmdGenerate(args[1:], stdout, stderr)
	case "tokenize":
		return cmdTokenize(args[1:], stdout, stderr)
	case "bench":
		return cmdBench(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stderr, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// common holds the flags every command takes.
type common struct {
	model   string
	verbose bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.model, "model", "", "GGUF model file (required)")
	fs.BoolVar(&c.verbose, "verbose", false, "show llama.cpp's log on stderr")
}

// setup validates the common flags, routes llama.cpp's log (which the llama
// package writes through slog's default logger) and loads the model.
func (c *common) setup(stderr io.Writer, vocabOnly bool) (*peer, error) {
	if c.model == "" {
		return nil, errors.New("--model is required")
	}
	level := slog.LevelError
	if c.verbose {
		level = slog.LevelDebug
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
	return loadPeer(c.model, vocabOnly)
}

func cmdGenerate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	prompt := fs.String("prompt", "", "prompt text, used as is (no chat template)")
	maxTokens := fs.Int("max-tokens", 16, "tokens to generate")
	topK := fs.Int("logprobs", 0, "top-k log-probabilities to report per token (0-20)")
	threads := fs.Int("threads", runtime.NumCPU(), "CPU threads")
	noSpecial := fs.Bool("no-parse-special", false, "treat special-token text in the prompt as plain text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("generate: unexpected argument %q", fs.Arg(0))
	case *maxTokens < 0:
		return errors.New("generate: --max-tokens must be >= 0")
	case *topK < 0 || *topK > 20:
		return errors.New("generate: --logprobs must be in 0..20")
	case *threads < 1:
		return errors.New("generate: --threads must be >= 1")
	}
	p, err := c.setup(stderr, false)
	if err != nil {
		return err
	}
	defer p.close()
	ids, err := p.tokenize(*prompt, true, !*noSpecial)
	if err != nil {
		return err
	}
	out, err := p.generate(ids, *maxTokens, *topK, *threads)
	if err != nil {
		return err
	}
	return writeJSON(stdout, out)
}

func cmdTokenize(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	noBOS := fs.Bool("no-bos", false, "do not add BOS even when the model's metadata asks for it")
	noSpecial := fs.Bool("no-parse-special", false, "treat special-token text as plain text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("tokenize: want exactly one TEXT argument (use -- before text starting with -)")
	}
	p, err := c.setup(stderr, true)
	if err != nil {
		return err
	}
	defer p.close()
	ids, err := p.tokenize(fs.Arg(0), !*noBOS, !*noSpecial)
	if err != nil {
		return err
	}
	return writeJSON(stdout, ids)
}

func cmdBench(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs)
	threads := fs.Int("threads", runtime.NumCPU(), "CPU threads")
	promptTokens := fs.Int("prompt-tokens", 128, "prompt length for the prefill measurement")
	genTokens := fs.Int("gen-tokens", 64, "tokens decoded per stream")
	parallel := fs.Int("parallel", 4, "concurrent streams for the batched decode measurement (1 skips it)")
	reps := fs.Int("reps", 3, "repetitions of each measurement; the best is reported")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	case *threads < 1:
		return errors.New("bench: --threads must be >= 1")
	case *promptTokens < 1:
		return errors.New("bench: --prompt-tokens must be >= 1")
	case *genTokens < 1:
		return errors.New("bench: --gen-tokens must be >= 1")
	case *parallel < 1 || *parallel > 64:
		return errors.New("bench: --parallel must be in 1..64")
	case *reps < 1:
		return errors.New("bench: --reps must be >= 1")
	}
	p, err := c.setup(stderr, false)
	if err != nil {
		return err
	}
	defer p.close()
	r, err := p.bench(*threads, *promptTokens, *genTokens, *parallel, *reps)
	if err != nil {
		return err
	}
	return writeJSON(stdout, r)
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}
