package demomodel

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"unicode"

	"github.com/mycel-network/mycel/internal/chat"
	"github.com/mycel-network/mycel/internal/engine"
	"github.com/mycel-network/mycel/internal/gguf"
	"github.com/mycel-network/mycel/internal/tokenizer"
)

// TestTokenizerAgrees checks that internal/tokenizer, reading the
// vocabulary and merges from the generated file, splits the corpus exactly
// as the statistics were taken, and that internal/chat finds the template.
func TestTokenizerAgrees(t *testing.T) {
	gs := generated(t)
	raw, err := os.ReadFile(gs["mycel-ref"].Path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	text, err := Corpus()
	if err != nil {
		t.Fatal(err)
	}
	st, err := newStats(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int{0, 300000, 800000} {
		sample := text[off : off+20000]
		want, err := st.tok.encode(sample, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tok.Encode(sample, tokenizer.EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("offset %d: %d tokens, want %d", off, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("offset %d: token %d is %d, want %d", off, i, got[i], want[i])
			}
		}
	}
	ids, err := tok.Encode("<|im_start|>user\nhi<|im_end|>", tokenizer.EncodeOptions{ParseSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	if ids[0] != st.tok.imStart || ids[len(ids)-1] != st.tok.imEnd {
		t.Errorf("special tokens not recognised: %v", ids)
	}
	if !tok.IsEOG(st.tok.imEnd) || !tok.IsEOG(st.tok.eot) {
		t.Errorf("<|im_end|> and <|endoftext|> should end generation")
	}

	// internal/chat recognises the template as Qwen2's ChatML.
	format, err := chat.FromGGUF(f)
	if err != nil {
		t.Fatalf("chat format: %v", err)
	}
	if format != chat.Qwen2 {
		t.Errorf("chat format %v, want %v", format, chat.Qwen2)
	}
	got, err := format.Render([]chat.Message{{Role: "user", Content: "hi"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
	if got != want {
		t.Errorf("rendered chat %q, want %q", got, want)
	}
}

func startEngine(t *testing.T, path string) *engine.Engine {
	t.Helper()
	m, err := engine.Load(path, engine.LoadOptions{})
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	t.Cleanup(func() { m.Close() })
	e := engine.New(m, engine.Config{Threads: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine Run: %v", err)
		}
	})
	return e
}

type tolerance struct{ max, mean float64 }

// TestEngineScoreMatchesNaive compares internal/engine's teacher-forced
// logprobs with the naive float64 forward pass of this package's tests.
func TestEngineScoreMatchesNaive(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: naive forward pass")
	}
	gs := generated(t)
	w := corpusWindows(t, 64)[1]
	for _, name := range []string{"mycel-ref", "mycel-ref-q4km", "mycel-sub", "mycel-ref-f16", "mycel-ref-bf16", "mycel-ref-q4_0", "mycel-ref-qwen2"} {
		e := startEngine(t, gs[name].Path)
		scores, err := e.Score(context.Background(), w[:1], w[1:], 0)
		if err != nil {
			t.Fatalf("%s: score: %v", name, err)
		}
		lp := loadNaive(t, gs[name].Path).logProbs(w)
		maxDiff, sum := 0.0, 0.0
		for i, s := range scores {
			d := math.Abs(float64(s.Logprob) - lp[i][w[i+1]])
			maxDiff = math.Max(maxDiff, d)
			sum += d
		}
		mean := sum / float64(len(scores))
		t.Logf("%s: |engine - naive| logprob: max %.2g, mean %.2g nats", name, maxDiff, mean)
		// Quantised files differ more: the engine, like llama.cpp, rounds
		// activations to 8 bits for K-quant dot products.
		tol := tolerance{max: 2e-3, mean: 1e-3}
		if strings.Contains(name, "q4") {
			tol = tolerance{max: 0.6, mean: 0.1}
		}
		if maxDiff > tol.max || mean > tol.mean {
			t.Errorf("%s: engine and naive forward pass differ: max %.3g, mean %.3g nats; want <= %+v", name, maxDiff, mean, tol)
		}
	}
}

// TestEngineGeneratesCorpusLikeText decodes with the real engine and checks
// that most words it writes are words of the corpus.
func TestEngineGeneratesCorpusLikeText(t *testing.T) {
	gs := generated(t)
	text, err := Corpus()
	if err != nil {
		t.Fatal(err)
	}
	vocab := map[string]bool{}
	for _, w := range words(text) {
		vocab[w] = true
	}
	chatPrompt := "<|im_start|>user\nWhat does the append function do?<|im_end|>\n<|im_start|>assistant\n"
	plain := "The built-in function append"
	tests := []struct {
		model    string
		prompt   string
		sampling engine.Sampling
		minKnown float64
	}{
		{"mycel-ref", chatPrompt, engine.Sampling{}, 0.9},
		{"mycel-ref", plain, engine.Sampling{}, 0.9},
		{"mycel-ref", plain, engine.Sampling{Temperature: 0.7, Seed: 1}, 0.8},
		{"mycel-ref", plain, engine.Sampling{Temperature: 1, TopP: 0.9, Seed: 2}, 0.7},
		{"mycel-ref-q4km", plain, engine.Sampling{Temperature: 0.7, Seed: 3}, 0.8},
		{"mycel-sub", plain, engine.Sampling{}, 0.9},
		{"mycel-sub", plain, engine.Sampling{Temperature: 0.7, Seed: 1}, 0.7},
	}
	engines := map[string]*engine.Engine{}
	for _, tc := range tests {
		if engines[tc.model] == nil {
			engines[tc.model] = startEngine(t, gs[tc.model].Path)
		}
	}
	for _, tc := range tests {
		name := fmt.Sprintf("%s/T=%g/%.20q", tc.model, tc.sampling.Temperature, tc.prompt)
		t.Run(name, func(t *testing.T) {
			e := engines[tc.model]
			prompt, err := e.Model().Tokenizer().Encode(tc.prompt, tokenizer.EncodeOptions{ParseSpecial: true})
			if err != nil {
				t.Fatal(err)
			}
			// Sampled runs pool several seeds: one may end its turn early.
			runs, minWords := 1, 3
			if tc.sampling.Temperature > 0 {
				runs, minWords = 4, 15
			}
			var ws []string
			for r := 0; r < runs; r++ {
				req := engine.Request{Prompt: prompt, MaxTokens: 100, Sampling: tc.sampling}
				req.Sampling.Seed += uint64(r)
				res, err := e.Generate(context.Background(), req, func(engine.Token) error { return nil })
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("finish %s: %q", res.FinishReason, res.Text)
				text := res.Text
				for _, sp := range []string{tokIMStart, tokIMEnd, tokEndOfText} {
					text = strings.ReplaceAll(text, sp, " ")
				}
				ws = append(ws, words(text)...)
			}
			known := 0
			for _, w := range ws {
				if vocab[w] {
					known++
				}
			}
			t.Logf("%d/%d words occur in the corpus", known, len(ws))
			if len(ws) < minWords {
				t.Fatalf("only %d words generated", len(ws))
			}
			if frac := float64(known) / float64(len(ws)); frac < tc.minKnown {
				t.Errorf("%.0f%% of generated words occur in the corpus, want >= %.0f%%", 100*frac, 100*tc.minKnown)
			}
		})
	}
}

// words splits text into runs of letters.
func words(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) })
}
