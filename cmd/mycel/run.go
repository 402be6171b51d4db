package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"time"

	"github.com/mycel-network/mycel/internal/chat"
	"github.com/mycel-network/mycel/internal/engine"
	"github.com/mycel-network/mycel/internal/tokenizer"
)

// runJSON is the machine-readable output of `mycel run --output json`; the
// llama.cpp peer (bin/llamapeer generate) prints the same shape.
type runJSON struct {
	Model        string         `json:"model"`
	PromptTokens []int32        `json:"prompt_tokens"`
	Tokens       []runJSONToken `json:"tokens"`
	FinishReason string         `json:"finish_reason"`
}

type runJSONToken struct {
	ID      int32               `json:"id"`
	Text    string              `json:"text"`
	Logprob float32             `json:"logprob"`
	Top     []engine.TopLogprob `json:"top"`
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", "GGUF model file (required)")
	prompt := fs.String("prompt", "", "prompt text (default: read stdin)")
	chatMode := fs.Bool("chat", false, "apply the model's chat template to the prompt as a user message")
	system := fs.String("system", "", "system message with --chat")
	raw := fs.Bool("raw", false, "tokenize the prompt without special tokens (no BOS)")
	maxTokens := fs.Int("max-tokens", 256, "most tokens to generate")
	temperature := fs.Float64("temperature", 0.8, "sampling temperature; 0 is greedy")
	topK := fs.Int("top-k", 40, "top-k sampling; 0 disables")
	topP := fs.Float64("top-p", 0.95, "top-p sampling; 1 disables")
	minP := fs.Float64("min-p", 0.05, "min-p sampling; 0 disables")
	repeat := fs.Float64("repeat-penalty", 1.0, "repetition penalty over the last 64 tokens; 1 disables")
	seed := fs.Int64("seed", -1, "sampler seed; -1 picks one at random")
	threads := fs.Int("threads", runtime.NumCPU(), "threads of the forward pass")
	ctxSize := fs.Int("ctx-size", 4096, "context length (capped at the model's); bounds the KV cache")
	logprobs := fs.Int("logprobs", 0, "report the top K log-probabilities per token (json output)")
	output := fs.String("output", "text", "text (stream to the terminal) or json")
	var stops stringList
	fs.Var(&stops, "stop", "stop sequence (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model == "" {
		return errors.New("run: --model is required")
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("run: --output %q: want text or json", *output)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("run: unexpected argument %q", fs.Arg(0))
	}
	if *prompt == "" {
		if f, ok := os.Stdin.Stat(); ok == nil && f.Mode()&os.ModeCharDevice == 0 {
			b, err := io.ReadAll(os.Stdin)
			if err != nil {
				return fmt.Errorf("run: read prompt: %w", err)
			}
			*prompt = string(b)
		}
	}

	m, err := loadModelWithProgress(*model, *ctxSize, stderr)
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	defer m.Close()
	tok := m.Tokenizer()
	if tok == nil {
		return fmt.Errorf("run: %s has no tokenizer", *model)
	}
	text := *prompt
	addSpecial := !*raw
	if *chatMode {
		rendered, err := renderChat(m, *system, *prompt)
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		text, addSpecial = rendered, false
	}
	ids, err := tok.Encode(text, tokenizer.EncodeOptions{AddSpecial: addSpecial, ParseSpecial: *chatMode || !*raw})
	if err != nil {
		return fmt.Errorf("run: tokenize prompt: %w", err)
	}
	if *chatMode && tok.AddBOS() && tok.BOS() >= 0 && (len(ids) == 0 || ids[0] != tok.BOS()) {
		// Templates that do not write BOS themselves rely on the tokenizer.
		ids = append([]int32{tok.BOS()}, ids...)
	}
	if len(ids) == 0 {
		return errors.New("run: empty prompt (give --prompt, pipe text in, or drop --raw)")
	}
	s := *seed
	if s < 0 {
		s = int64(rand.Uint64() >> 1)
	}
	info := m.Info()
	kvBudget := int64(min(info.ContextLength, len(ids)+*maxTokens)+1) * m.KVBytesPerToken()
	e := engine.New(m, engine.Config{Threads: *threads, KVBudgetBytes: kvBudget, MaxBatch: 1})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	defer func() { stop(); <-done }()

	req := engine.Request{
		Prompt:    ids,
		MaxTokens: *maxTokens,
		Sampling: engine.Sampling{
			Temperature: float32(*temperature), TopK: *topK, TopP: float32(*topP), MinP: float32(*minP),
			RepeatPenalty: float32(*repeat), Seed: uint64(s),
		},
		Stop:        stops,
		TopLogprobs: *logprobs,
	}
	if *output == "json" {
		out := runJSON{Model: *model, PromptTokens: ids, Tokens: []runJSONToken{}}
		res, err := e.Generate(ctx, req, func(engine.Token) error { return nil })
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		for _, t := range res.Tokens {
			top := t.Top
			if top == nil {
				top = []engine.TopLogprob{}
			}
			out.Tokens = append(out.Tokens, runJSONToken{ID: t.ID, Text: t.Text, Logprob: t.Logprob, Top: top})
		}
		out.FinishReason = res.FinishReason
		enc := json.NewEncoder(stdout)
		return enc.Encode(out)
	}
	res, err := e.Generate(ctx, req, func(t engine.Token) error {
		_, err := io.WriteString(stdout, t.Text)
		return err
	})
	fmt.Fprintln(stdout)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("run: %w", err)
	}
	if isTerminal(stderr) {
		dec := res.Decode.Seconds()
		var tps float64
		if dec > 0 && res.CompletionTokens > 1 {
			tps = float64(res.CompletionTokens-1) / dec
		}
		fmt.Fprintf(stderr, "\n[%d prompt tokens in %v, %d tokens at %.1f tok/s, finish: %s, seed %d]\n",
			res.PromptTokens, res.Prefill.Round(time.Millisecond), res.CompletionTokens, tps, res.FinishReason, s)
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint([]string(*s)) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// loadModelWithProgress loads a model, drawing a progress bar on stderr when
// it is a terminal or when loading takes more than a second.
func loadModelWithProgress(path string, ctxSize int, stderr io.Writer) (*engine.Model, error) {
	start := time.Now()
	tty := isTerminal(stderr)
	drawn := false
	var last time.Time
	progress := func(done, total int64) {
		now := time.Now()
		if !tty && now.Sub(start) < time.Second {
			return
		}
		if done < total && now.Sub(last) < 100*time.Millisecond {
			return
		}
		last = now
		const width = 30
		filled := 0
		if total > 0 {
			filled = int(done * width / total)
		}
		bar := make([]byte, width)
		for i := range bar {
			bar[i] = ' '
			if i < filled {
				bar[i] = '='
			}
		}
		fmt.Fprintf(stderr, "\rloading %s [%s] %d/%d MiB", path, bar, done>>20, total>>20)
		drawn = true
	}
	m, err := engine.Load(path, engine.LoadOptions{Progress: progress, ContextLength: ctxSize})
	if drawn {
		fmt.Fprintln(stderr)
	}
	return m, err
}

// renderChat applies the model's chat template to one user message (after
// an optional system message), ending with the assistant header.
func renderChat(m *engine.Model, system, user string) (string, error) {
	f, err := m.ChatFormat()
	if err != nil {
		return "", err
	}
	var msgs []chat.Message
	if system != "" {
		msgs = append(msgs, chat.Message{Role: "system", Content: system})
	}
	msgs = append(msgs, chat.Message{Role: "user", Content: user})
	return f.Render(msgs, true)
}
