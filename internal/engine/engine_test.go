package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mycel-network/mycel/internal/gguf"
)

// startEngine runs an engine until the test ends.
func startEngine(t *testing.T, m *Model, cfg Config) *Engine {
	t.Helper()
	e := New(m, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return e
}

func generate(t *testing.T, e *Engine, req Request) Result {
	t.Helper()
	res, err := e.Generate(context.Background(), req, func(Token) error { return nil })
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return res
}

func scoresOf(res Result) []TokenScore {
	var out []TokenScore
	for _, tk := range res.Tokens {
		out = append(out, TokenScore{ID: tk.ID, Logprob: tk.Logprob, Top: tk.Top})
	}
	return out
}

func ids(res Result) []int32 {
	var out []int32
	for _, tk := range res.Tokens {
		out = append(out, tk.ID)
	}
	return out
}

// TestDeterminism checks the bit-reproducibility guarantee: generation with
// 1 and 3 threads, alone and batched with other sequences, prefilled in one
// chunk or token by token, and scoring all give identical tokens and
// logprobs.
func TestDeterminism(t *testing.T) {
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeQ4_K, gguf.TypeQ8_0} {
		t.Run(typ.String(), func(t *testing.T) {
			m, _ := defaultSpec("qwen2", typ).load(t)
			prompt := testPrompt(20, 5)
			req := Request{Prompt: prompt, MaxTokens: 24, TopLogprobs: 3,
				Sampling: Sampling{Temperature: 0.9, TopP: 0.95, Seed: 11}}

			base := generate(t, startEngine(t, m, Config{Threads: 1, PrefillChunk: 1}), req)
			if len(base.Tokens) == 0 {
				t.Fatal("no tokens generated")
			}

			// Three threads, one-shot prefill, batched with other requests.
			e := startEngine(t, m, Config{Threads: 3, PrefillChunk: 64, MaxBatch: 8})
			var wg sync.WaitGroup
			results := make([]Result, 4)
			errs := make([]error, 4)
			for i := range results {
				r := req
				if i > 0 {
					r = Request{Prompt: testPrompt(5+7*i, uint64(i)), MaxTokens: 30, Sampling: Sampling{Temperature: 1, Seed: uint64(i)}}
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					results[i], errs[i] = e.Generate(context.Background(), r, func(Token) error { return nil })
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
			}
			if diff := cmp.Diff(scoresOf(base), scoresOf(results[0])); diff != "" {
				t.Errorf("batched generation differs from alone (-alone +batched):\n%s", diff)
			}

			scores, err := e.Score(context.Background(), prompt, ids(base), 3)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(scoresOf(base), scores); diff != "" {
				t.Errorf("Score differs from Generate (-generate +score):\n%s", diff)
			}
		})
	}
}

func TestGreedyIsArgmax(t *testing.T) {
	m, _ := defaultSpec("llama", gguf.TypeQ8_0).load(t)
	e := startEngine(t, m, Config{Threads: 2})
	prompt := testPrompt(8, 9)
	res := generate(t, e, Request{Prompt: prompt, MaxTokens: 16, TopLogprobs: 1})
	if res.FinishReason != FinishLength || len(res.Tokens) != 16 {
		t.Fatalf("finish %q after %d tokens, want length after 16", res.FinishReason, len(res.Tokens))
	}
	for i, tk := range res.Tokens {
		if tk.Top[0].ID != tk.ID || tk.Top[0].Logprob != tk.Logprob {
			t.Errorf("token %d: greedy chose %d (%v), most likely is %d (%v)", i, tk.ID, tk.Logprob, tk.Top[0].ID, tk.Top[0].Logprob)
		}
	}
}

func TestSeedReproducible(t *testing.T) {
	m, _ := defaultSpec("llama", gguf.TypeF32).load(t)
	e := startEngine(t, m, Config{Threads: 2})
	prompt := testPrompt(6, 1)
	sp := Sampling{Temperature: 1.5, Seed: 42}
	a := generate(t, e, Request{Prompt: prompt, MaxTokens: 20, Sampling: sp})
	b := generate(t, e, Request{Prompt: prompt, MaxTokens: 20, Sampling: sp})
	if diff := cmp.Diff(ids(a), ids(b)); diff != "" {
		t.Errorf("same seed, different tokens (-first +second):\n%s", diff)
	}
	differ := false
	for seed := uint64(43); seed < 48 && !differ; seed++ {
		sp.Seed = seed
		c := generate(t, e, Request{Prompt: prompt, MaxTokens: 20, Sampling: sp})
		differ = !cmp.Equal(ids(a), ids(c))
	}
	if !differ {
		t.Error("five other seeds all produced the same tokens as seed 42")
	}
}

func TestSamplerCutoffs(t *testing.T) {
	// Probabilities at temperature 1 are proportional to 8, 4, 2, 1, 1.
	logits := []float32{0, 0, 0, 0, 0, 0}
	for i, p := range []float64{8, 4, 2, 1, 1} {
		logits[i+1] = float32(logf(p))
	}
	logits[0] = -100
	tests := []struct {
		name string
		sp   Sampling
		want []int32 // the set of tokens that may be drawn
	}{
		{"top_k 2", Sampling{Temperature: 1, TopK: 2}, []int32{1, 2}},
		{"top_p 0.7", Sampling{Temperature: 1, TopP: 0.7}, []int32{1, 2}},
		{"top_p 0.5", Sampling{Temperature: 1, TopP: 0.5}, []int32{1}},
		{"min_p 0.2", Sampling{Temperature: 1, MinP: 0.2}, []int32{1, 2, 3}},
		{"top_k 1", Sampling{Temperature: 3, TopK: 1}, []int32{1}},
		{"greedy", Sampling{}, []int32{1}},
		{"repeat penalty", Sampling{RepeatPenalty: 100}, []int32{2}},
		{"all", Sampling{Temperature: 1}, []int32{1, 2, 3, 4, 5}},
		{"high temperature reaches the -100 logit", Sampling{Temperature: 30}, []int32{0, 1, 2, 3, 4, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s sampler
			seen := map[int32]bool{}
			for n := uint64(0); n < 2000; n++ {
				tc.sp.Seed = n / 20
				in := append([]float32(nil), logits...)
				id := s.sample(in, tc.sp, []int32{1}, n)
				if diff := cmp.Diff(logits, in); diff != "" {
					t.Fatalf("sample modified its input:\n%s", diff)
				}
				seen[id] = true
			}
			var got []int32
			for id := int32(0); id < int32(len(logits)); id++ {
				if seen[id] {
					got = append(got, id)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("drawn tokens (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStopper(t *testing.T) {
	tests := []struct {
		name     string
		stops    []string
		tokens   []string
		want     []string // text released per token
		wantHit  bool
		wantRest string
	}{
		{"no stops", nil, []string{"ab", "c"}, []string{"ab", "c"}, false, ""},
		{"stop inside token", []string{"END"}, []string{"abENDx"}, []string{"ab"}, true, ""},
		{"stop across tokens", []string{"END"}, []string{"xE", "N", "Dy"}, []string{"x", "", ""}, true, ""},
		{"false alarm released", []string{"END"}, []string{"xE", "Nz"}, []string{"x", "ENz"}, false, ""},
		{"held at end", []string{"END"}, []string{"aEN"}, []string{"a"}, false, "EN"},
		{"earliest of two", []string{"yy", "x"}, []string{"ayyx"}, []string{"a"}, true, ""},
		{"utf8 split", nil, []string{"a\xe2\x82", "\xac"}, []string{"a", "€"}, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := stopper{stops: tc.stops}
			var got []string
			hit := false
			for _, tok := range tc.tokens {
				out, h := s.push([]byte(tok))
				got = append(got, out)
				if h {
					hit = true
					break
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("released text (-want +got):\n%s", diff)
			}
			if hit != tc.wantHit {
				t.Errorf("hit = %v, want %v", hit, tc.wantHit)
			}
			if rest := s.flush(); rest != tc.wantRest {
				t.Errorf("flush = %q, want %q", rest, tc.wantRest)
			}
		})
	}
}

func TestGenerateStopSequence(t *testing.T) {
	m, _ := defaultSpec("llama", gguf.TypeF32).load(t)
	e := startEngine(t, m, Config{Threads: 2})
	prompt := testPrompt(6, 2)
	full := generate(t, e, Request{Prompt: prompt, MaxTokens: 12})
	if len(full.Text) < 6 {
		t.Fatalf("text %q too short for the test", full.Text)
	}
	stop := full.Text[3:5]
	res := generate(t, e, Request{Prompt: prompt, MaxTokens: 12, Stop: []string{stop}})
	want := full.Text[:3]
	if i := indexOf(full.Text, stop); i < 3 {
		want = full.Text[:i]
	}
	if res.Text != want || res.FinishReason != FinishStop {
		t.Errorf("text %q finish %q, want %q finish stop", res.Text, res.FinishReason, want)
	}
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestCancellation(t *testing.T) {
	m, _ := defaultSpec("llama", gguf.TypeF32).load(t)
	e := startEngine(t, m, Config{Threads: 2})
	prompt := testPrompt(4, 2)

	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	res, err := e.Generate(ctx, Request{Prompt: prompt, MaxTokens: 50}, func(Token) error {
		n++
		if n == 3 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || res.FinishReason != FinishCancel {
		t.Fatalf("err %v finish %q, want context.Canceled and cancel", err, res.FinishReason)
	}
	if len(res.Tokens) > 4 {
		t.Errorf("%d tokens after cancelling at the third, want at most 4", len(res.Tokens))
	}

	boom := errors.New("client gone")
	res, err = e.Generate(context.Background(), Request{Prompt: prompt, MaxTokens: 50}, func(Token) error { return boom })
	if !errors.Is(err, boom) || len(res.Tokens) != 1 {
		t.Errorf("callback error: err %v after %d tokens, want %v after 1", err, len(res.Tokens), boom)
	}
	// The engine keeps serving after cancellations.
	if res := generate(t, e, Request{Prompt: prompt, MaxTokens: 3}); len(res.Tokens) != 3 {
		t.Errorf("after cancellations: %d tokens, want 3", len(res.Tokens))
	}
}

func TestKVBudget(t *testing.T) {
	m, _ := defaultSpec("llama", gguf.TypeF32).load(t)
	per := m.kvBytesPerToken()
	// Room for one 40-token sequence at a time.
	e := startEngine(t, m, Config{Threads: 2, KVBudgetBytes: 50 * per})
	_, err := e.Generate(context.Background(), Request{Prompt: testPrompt(30, 1), MaxTokens: 30}, func(Token) error { return nil })
	if !errors.Is(err, ErrKVBudget) {
		t.Fatalf("oversized request: err %v, want ErrKVBudget", err)
	}
	if _, err := e.Score(context.Background(), testPrompt(30, 1), testPrompt(30, 2), 0); !errors.Is(err, ErrKVBudget) {
		t.Fatalf("oversized score: err %v, want ErrKVBudget", err)
	}
	// Two requests that fit only one at a time both complete: the second
	// waits for admission.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.Generate(context.Background(), Request{Prompt: testPrompt(20, uint64(i)), MaxTokens: 20}, func(Token) error { return nil })
			if err == nil && len(res.Tokens) != 20 {
				err = fmt.Errorf("%d tokens, want 20", len(res.Tokens))
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
}

func TestRequestValidation(t *testing.T) {
	m, _ := defaultSpec("llama", gguf.TypeF32).load(t)
	e := startEngine(t, m, Config{Threads: 1})
	tests := []struct {
		name string
		req  Request
	}{
		{"empty prompt", Request{MaxTokens: 1}},
		{"token out of range", Request{Prompt: []int32{1, 999}, MaxTokens: 1}},
		{"prompt longer than context", Request{Prompt: testPrompt(200, 1), MaxTokens: 1}},
		{"negative max tokens", Request{Prompt: []int32{1}, MaxTokens: -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.Generate(context.Background(), tc.req, func(Token) error { return nil }); err == nil {
				t.Error("want error")
			}
		})
	}
	if _, err := e.Score(context.Background(), []int32{1}, []int32{-5}, 0); err == nil {
		t.Error("Score with a negative token id: want error")
	}
}

func TestMaxTokensFromBudget(t *testing.T) {
	m, _ := defaultSpec("llama", gguf.TypeF32).load(t)
	e := startEngine(t, m, Config{Threads: 2, KVBudgetBytes: 30 * m.KVBytesPerToken()})
	res, err := e.Generate(context.Background(), Request{Prompt: testPrompt(10, 4), IgnoreEOG: true}, func(Token) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if res.FinishReason != FinishLength || len(res.Tokens) != 20 {
		t.Errorf("finish %q after %d tokens, want length after 20 (30-token budget, 10-token prompt)", res.FinishReason, len(res.Tokens))
	}
}

func TestSampleNaN(t *testing.T) {
	var s sampler
	nan := float32(math.NaN())
	if id := s.sample([]float32{nan, nan, nan}, Sampling{Temperature: 1, TopP: 0.9}, nil, 0); id < 0 || id > 2 {
		t.Errorf("sample of NaN logits = %d, want an id in range", id)
	}
}

// TestScoreChunking: how scoring splits positions into passes (prefill
// chunk, logit-row cap) does not change a bit.
func TestScoreChunking(t *testing.T) {
	m, _ := defaultSpec("qwen2", gguf.TypeQ6_K).load(t)
	prompt, output := testPrompt(7, 3), testPrompt(85, 4)
	var results [][]TokenScore
	for _, cfg := range []Config{{Threads: 1, PrefillChunk: 128}, {Threads: 3, PrefillChunk: 5}, {Threads: 2, PrefillChunk: 90}} {
		got, err := New(m, cfg).Score(context.Background(), prompt, output, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(output) {
			t.Fatalf("%d scores for %d tokens", len(got), len(output))
		}
		results = append(results, got)
	}
	for i := 1; i < len(results); i++ {
		if diff := cmp.Diff(results[0], results[i]); diff != "" {
			t.Errorf("config %d differs from config 0 (-0 +%d):\n%s", i, i, diff)
		}
	}
}

// TestReplay: Replay of a seeded Generate's own tokens finds no difference and gives Score's
// values, for several samplings, weight types and chunkings; a changed token is found at its
// position; an answer generated with another seed differs early.
func TestReplay(t *testing.T) {
	for _, wt := range []gguf.Type{gguf.TypeF32, gguf.TypeQ6_K} {
		m, _ := defaultSpec("qwen2", wt).load(t)
		e := startEngine(t, m, Config{Threads: 2, PrefillChunk: 7})
		for i, sp := range []Sampling{
			{Temperature: 1, Seed: 3},
			{Temperature: 0.7, TopP: 0.9, Seed: 99},
			{Temperature: 1.3, Seed: 1 << 40},
			{}, // greedy
		} {
			prompt := testPrompt(5+3*i, uint64(i))
			res := generate(t, e, Request{Prompt: prompt, MaxTokens: 24, Sampling: sp})
			out := ids(res)
			got, first, err := e.Replay(context.Background(), prompt, out, 3, sp)
			if err != nil {
				t.Fatal(err)
			}
			if first != -1 {
				t.Errorf("%v sampling %+v: Replay of Generate's own tokens differs at %d", wt, sp, first)
			}
			want, err := e.Score(context.Background(), prompt, out, 3)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%v sampling %+v: Replay's values differ from Score's:\n%s", wt, sp, diff)
			}
			// One token changed at k: found at k.
			k := len(out) / 2
			bad := append([]int32(nil), out...)
			bad[k] = (bad[k] + 1) % int32(m.hp.nVocab)
			if _, first, _ := e.Replay(context.Background(), prompt, bad, 0, sp); first != k {
				t.Errorf("%v sampling %+v: token %d changed, Replay says first difference at %d", wt, sp, k, first)
			}
			if sp.Temperature > 0 {
				// The same tokens under another seed: some draw differs.
				other := sp
				other.Seed++
				if _, first, _ := e.Replay(context.Background(), prompt, out, 0, other); first < 0 {
					t.Errorf("%v sampling %+v: Replay under seed %d finds no difference", wt, sp, other.Seed)
				}
			}
		}
	}
}
