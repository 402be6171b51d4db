package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/demomodel"
	"github.com/mycel-network/mycel/internal/engine"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/peercheck"
	"github.com/mycel-network/mycel/internal/provider/backend"
	"github.com/mycel-network/mycel/internal/verifier"
)

// The stress tests run on the demo models, generated once per test binary.
// MYCEL_DETSTRESS=N runs N scenarios per model instead of the short default.

var (
	demoOnce sync.Once
	demoDir  string
	demoOut  map[string]string // name -> path
	demoErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if demoDir != "" {
		os.RemoveAll(demoDir)
	}
	os.Exit(code)
}

func demoModel(t *testing.T, name string) *engine.Model {
	t.Helper()
	demoOnce.Do(func() {
		demoDir, demoErr = os.MkdirTemp("", "detstress")
		if demoErr != nil {
			return
		}
		var gen []demomodel.Generated
		gen, demoErr = demomodel.Generate(context.Background(), filepath.Join(demoDir, "m"), nil)
		demoOut = map[string]string{}
		for _, g := range gen {
			demoOut[g.Name] = g.Path
		}
	})
	if demoErr != nil {
		t.Fatalf("demomodel.Generate: %v", demoErr)
	}
	path, ok := demoOut[name]
	if !ok {
		t.Fatalf("no demo model %q", name)
	}
	m, err := engine.Load(path, engine.LoadOptions{})
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// runEngine runs e until the test ends.
func runEngine(t *testing.T, e *engine.Engine) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// bitTok is a generated token with its logprob as bits, so that cmp
// compares bit patterns (and NaN payloads) exactly.
type bitTok struct {
	ID   int32
	Bits uint32
	Top  []bitTop
}

type bitTop struct {
	ID   int32
	Bits uint32
}

func bitTokens(toks []engine.Token) []bitTok {
	var out []bitTok
	for _, tk := range toks {
		if tk.ID < 0 {
			continue
		}
		b := bitTok{ID: tk.ID, Bits: math.Float32bits(tk.Logprob)}
		for _, tp := range tk.Top {
			b.Top = append(b.Top, bitTop{tp.ID, math.Float32bits(tp.Logprob)})
		}
		out = append(out, b)
	}
	return out
}

func bitScores(sc []engine.TokenScore) []bitTok {
	var out []bitTok
	for _, s := range sc {
		b := bitTok{ID: s.ID, Bits: math.Float32bits(s.Logprob)}
		for _, tp := range s.Top {
			b.Top = append(b.Top, bitTop{tp.ID, math.Float32bits(tp.Logprob)})
		}
		out = append(out, b)
	}
	return out
}

// stressSeq is one sequence of a scenario.
type stressSeq struct {
	Req engine.Request
	// After >= 0: start once sequence After has streamed AfterN tokens (or
	// finished); -1 starts at once.
	After, AfterN int
	// CancelAt > 0 cancels the sequence after it streamed that many tokens.
	CancelAt int
}

type stressScenario struct {
	Cfg  engine.Config
	Seqs []stressSeq
}

func (s stressScenario) String() string {
	str := fmt.Sprintf("threads=%d maxbatch=%d chunk=%d kvbudget=%d", s.Cfg.Threads, s.Cfg.MaxBatch, s.Cfg.PrefillChunk, s.Cfg.KVBudgetBytes)
	for i, q := range s.Seqs {
		str += fmt.Sprintf("\n  seq %d: prompt %d max %d sampling %+v top %d after %d/%d cancel %d stop %q",
			i, len(q.Req.Prompt), q.Req.MaxTokens, q.Req.Sampling, q.Req.TopLogprobs, q.After, q.AfterN, q.CancelAt, q.Req.Stop)
	}
	return str
}

func randScenario(r *rand.Rand, vocab int, kvPerToken int64) stressScenario {
	sc := stressScenario{Cfg: engine.Config{
		Threads:      1 + r.IntN(4),
		MaxBatch:     []int{0, 1, 2, 3, 4, 5, 8, 16}[r.IntN(8)],
		PrefillChunk: []int{0, 1, 3, 4, 5, 8, 13, 64}[r.IntN(8)],
	}}
	n := 1 + r.IntN(8)
	for i := 0; i < n; i++ {
		plen := 1 + r.IntN(48)
		switch r.IntN(8) {
		case 0, 1:
			plen = 1 + r.IntN(4)
		case 2:
			plen = 100 + r.IntN(300) // attention over many positions
		}
		prompt := make([]int32, plen)
		for j := range prompt {
			prompt[j] = int32(r.IntN(vocab - 3)) // no control tokens
		}
		var sp engine.Sampling
		if r.IntN(4) != 0 {
			sp.Temperature = 0.7 + 0.5*r.Float32()
			if r.IntN(2) == 0 {
				sp.TopP = []float32{0.5, 0.8, 0.9, 0.95, 1}[r.IntN(5)]
			}
			if r.IntN(2) == 0 {
				sp.TopK = []int{1, 5, 40, 200}[r.IntN(4)]
			}
			sp.Seed = r.Uint64()
		}
		q := stressSeq{
			Req: engine.Request{Prompt: prompt, MaxTokens: 1 + r.IntN(16), Sampling: sp,
				TopLogprobs: []int{0, 0, 1, 5}[r.IntN(4)], IgnoreEOG: r.IntN(2) == 0},
			After: -1,
		}
		if i > 0 && r.IntN(2) == 0 {
			q.After, q.AfterN = r.IntN(i), r.IntN(6)
		}
		if r.IntN(6) == 0 {
			q.CancelAt = 1 + r.IntN(4)
		}
		if r.IntN(6) == 0 {
			q.Req.Stop = [][]string{{"\n"}, {" the", "."}, {"e"}}[r.IntN(3)]
		}
		sc.Seqs = append(sc.Seqs, q)
	}
	if r.IntN(4) == 0 {
		// A KV budget that holds the largest sequence but not all at once:
		// sequences wait for each other's memory.
		need := len(sc.Seqs[0].Req.Prompt) + 12 // the concurrent Score call
		for _, q := range sc.Seqs {
			need = max(need, len(q.Req.Prompt)+q.Req.MaxTokens)
		}
		sc.Cfg.KVBudgetBytes = int64(need+r.IntN(need)) * kvPerToken
	}
	return sc
}

type seqOut struct {
	toks      []engine.Token
	finish    string
	err       error
	cancelled bool
}

// runScenario runs the scenario's sequences concurrently on e.
func runScenario(e *engine.Engine, sc stressScenario) []seqOut {
	n := len(sc.Seqs)
	out := make([]seqOut, n)
	// gates[i] closes once sequence i streamed the token count a dependant
	// waits for, or finished.
	type gate struct {
		at   int
		ch   chan struct{}
		once sync.Once
	}
	gates := make([][]*gate, n)
	for i, q := range sc.Seqs {
		if q.After >= 0 {
			gates[q.After] = append(gates[q.After], &gate{at: q.AfterN, ch: make(chan struct{})})
			_ = i
		}
	}
	waitFor := make([]*gate, n)
	{
		next := make([]int, n)
		for i, q := range sc.Seqs {
			if q.After >= 0 {
				waitFor[i] = gates[q.After][next[q.After]]
				next[q.After]++
			}
		}
	}
	var wg sync.WaitGroup
	for i, q := range sc.Seqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			openAll := func(count int, final bool) {
				for _, g := range gates[i] {
					if final || count >= g.at {
						g.once.Do(func() { close(g.ch) })
					}
				}
			}
			defer openAll(0, true)
			if g := waitFor[i]; g != nil {
				<-g.ch
			}
			openAll(0, false)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			count := 0
			res, err := e.Generate(ctx, q.Req, func(tk engine.Token) error {
				if tk.ID >= 0 {
					count++
				}
				openAll(count, false)
				if q.CancelAt > 0 && count >= q.CancelAt {
					out[i].cancelled = true
					cancel()
				}
				return nil
			})
			out[i].toks, out[i].finish, out[i].err = res.Tokens, res.FinishReason, err
		}()
	}
	wg.Wait()
	return out
}

func stressCount(t *testing.T, def int) int {
	if v := os.Getenv("MYCEL_DETSTRESS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("MYCEL_DETSTRESS=%q: want a positive count", v)
		}
		return n
	}
	if testing.Short() {
		return 1
	}
	return def
}

// TestDeterminismStress runs random batched scenarios (concurrent, staggered
// and cancelled sequences, seeded and greedy sampling, thread counts, prefill
// chunks, batch sizes) and checks every sequence against a solo regeneration
// and against Score, bit for bit.
func TestDeterminismStress(t *testing.T) {
	models := []struct {
		name     string
		scenario int
	}{
		{"mycel-ref", 3},
		{"mycel-ref-q8", 3},
		{"mycel-ref-q4km", 3},
	}
	for mi, mm := range models {
		t.Run(mm.name, func(t *testing.T) {
			m := demoModel(t, mm.name)
			vocab := m.Info().VocabSize
			// The reference: one sequence at a time, one thread, whole prompt.
			solo := engine.New(m, engine.Config{Threads: 1, MaxBatch: 1, PrefillChunk: 4096})
			runEngine(t, solo)
			scorer := engine.New(m, engine.Config{Threads: 2, PrefillChunk: 5})
			r := rand.New(rand.NewPCG(uint64(mi)+1, 0x5eed))
			for si := range stressCount(t, mm.scenario) {
				sc := randScenario(r, vocab, m.KVBytesPerToken())
				e := engine.New(m, sc.Cfg)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- e.Run(ctx) }()
				// A verifier scores on the engine that generates: Score
				// runs in its own goroutine beside the scheduler's passes.
				scorePrompt, scoreOut := sc.Seqs[0].Req.Prompt, make([]int32, 1+r.IntN(12))
				for j := range scoreOut {
					scoreOut[j] = int32(r.IntN(vocab))
				}
				scoreDone := make(chan []engine.TokenScore, 1)
				var scoreErr error
				go func() {
					got, err := e.Score(context.Background(), scorePrompt, scoreOut, 3)
					scoreErr = err
					scoreDone <- got
				}()
				outs := runScenario(e, sc)
				concurrentScores := <-scoreDone
				if scoreErr != nil {
					t.Fatalf("scenario %d: concurrent Score: %v", si, scoreErr)
				}
				if want, err := scorer.Score(context.Background(), scorePrompt, scoreOut, 3); err != nil {
					t.Fatalf("scenario %d: Score: %v", si, err)
				} else if diff := cmp.Diff(bitScores(want), bitScores(concurrentScores)); diff != "" {
					t.Errorf("scenario %d: Score beside generation differs (-alone +beside):\n%s\n%v", si, diff, sc)
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("Run: %v", err)
				}
				for i, o := range outs {
					q := sc.Seqs[i]
					if o.err != nil && !(o.cancelled && errors.Is(o.err, context.Canceled)) {
						t.Fatalf("scenario %d seq %d: Generate: %v\n%v", si, i, o.err, sc)
					}
					want, err := solo.Generate(context.Background(), q.Req, func(engine.Token) error { return nil })
					if err != nil {
						t.Fatalf("scenario %d seq %d: solo Generate: %v", si, i, err)
					}
					got, ref := bitTokens(o.toks), bitTokens(want.Tokens)
					if o.cancelled && len(got) < len(ref) {
						ref = ref[:len(got)]
					}
					if diff := cmp.Diff(ref, got); diff != "" {
						t.Errorf("scenario %d seq %d: batched generation differs from solo (-solo +batched):\n%s\n%v", si, i, diff, sc)
						continue
					}
					if !o.cancelled && o.finish != want.FinishReason {
						t.Errorf("scenario %d seq %d: finish %q, solo %q\n%v", si, i, o.finish, want.FinishReason, sc)
					}
					if len(got) == 0 {
						continue
					}
					outIDs := make([]int32, len(got))
					for j, b := range got {
						outIDs[j] = b.ID
					}
					scores, err := scorer.Score(context.Background(), q.Req.Prompt, outIDs, q.Req.TopLogprobs)
					if err != nil {
						t.Fatalf("scenario %d seq %d: Score: %v", si, i, err)
					}
					if diff := cmp.Diff(got, bitScores(scores)); diff != "" {
						t.Errorf("scenario %d seq %d: Score differs from Generate (-generated +scored):\n%s\n%v", si, i, diff, sc)
					}
				}
			}
		})
	}
}

func f64(v float64) *float64 { return &v }
func i64(v int64) *int64     { return &v }

// exactChecks are the verifier's findings that hold bit for bit for an
// honest built-in provider (the statistical ones may fail with probability
// alpha and are left out).
var exactChecks = map[string]bool{"model_hash": true, "output_hash": true, "finish_reason": true, "tokens_in": true,
	"tokens_out": true, "max_tokens": true, "text_tokens": true, "seeded_regen": true, "logprobs_band": true,
	"logprobs_commitment": true, "greedy_argmax": true, "finish_length": true}

// TestProviderVerifierSampling serves chat requests concurrently through the
// provider's built-in backend and re-checks every answer with the verifier
// (its prompt rendering, ShopperParams.Sampling defaults, EngineSampling and
// seeded regeneration): for the same OpenAI parameters no exact check may
// fail. It also checks the seeded regeneration directly, token for token.
func TestProviderVerifierSampling(t *testing.T) {
	const name = "mycel-ref-q8"
	m := demoModel(t, name)
	wt, err := peercheck.WeightType(demoOut[name])
	if err != nil {
		t.Fatal(err)
	}
	prov := engine.New(m, engine.Config{Threads: 2, MaxBatch: 8, PrefillChunk: 7})
	runEngine(t, prov)
	b, err := backend.NewBuiltin(prov, "")
	if err != nil {
		t.Fatal(err)
	}
	ref := engine.New(m, engine.Config{Threads: 1})
	runEngine(t, ref)
	format, err := m.ChatFormat()
	if err != nil {
		t.Fatal(err)
	}
	checker, err := verifier.NewChecker(ref, m.Tokenizer(), "sha", wt, verifier.DefaultBands())
	if err != nil {
		t.Fatal(err)
	}

	type params struct {
		Temp, TopP *float64
		Seed       *int64
		MaxTokens  int
		Stop       []string
	}
	var cases []params
	for _, temp := range []*float64{nil, f64(0), f64(0.7), f64(1.3)} {
		for _, topP := range []*float64{nil, f64(0.9)} {
			for _, mt := range []int{4, 12, 0} {
				for _, stop := range [][]string{nil, {"\n"}, {" the", "."}} {
					cases = append(cases, params{temp, topP, i64(int64(len(cases))*7919 - 40), mt, stop})
				}
			}
		}
	}
	cases = append(cases, params{f64(1), nil, i64(-1), 4, nil}, params{f64(0.7), f64(0.9), i64(math.MinInt64), 4, nil})
	users := []string{"What does the function return?", "Explain package sync.", "What is a slice?", "Write func main."}

	type answer struct {
		ids    []int32
		lps    []float32
		text   string
		finish string
		err    error
		prompt []int32
	}
	answers := make([]answer, len(cases))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8) // about MaxBatch requests in flight
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			a := &answers[i]
			req := &backend.Request{Chat: true, Messages: []openai.ChatMessage{{Role: "user", Content: users[i%len(users)]}},
				MaxTokens: c.MaxTokens, Temperature: c.Temp, TopP: c.TopP, Seed: c.Seed, Stop: c.Stop, Logprobs: true}
			if c.MaxTokens == 0 {
				req.MaxTokens = 24 // as a client would: keep the unlimited cases short
			}
			if a.err = b.Prepare(req); a.err != nil {
				return
			}
			a.prompt = req.PromptIDs
			var text strings.Builder
			res, err := b.Generate(context.Background(), req, func(ch backend.Chunk) error {
				text.WriteString(ch.Text)
				for _, tk := range ch.Tokens {
					a.ids = append(a.ids, tk.ID)
					a.lps = append(a.lps, tk.Logprob)
				}
				return nil
			})
			a.text, a.finish, a.err = text.String(), res.FinishReason, err
		}()
	}
	wg.Wait()

	for i, c := range cases {
		a := answers[i]
		name := fmt.Sprintf("case %d (temp %v top_p %v seed %d max %d stop %q)", i, ptrStr(c.Temp), ptrStr(c.TopP), *c.Seed, c.MaxTokens, c.Stop)
		if a.err != nil {
			t.Fatalf("%s: provider: %v", name, a.err)
		}
		maxTokens := c.MaxTokens
		if maxTokens == 0 {
			maxTokens = 24
		}
		s := verifier.ShopperParams{Temperature: c.Temp, TopP: c.TopP, Seed: c.Seed, MaxTokens: maxTokens}.Sampling()
		s.Stop = c.Stop
		prompt, err := verifier.Prompt(format, m.Tokenizer(), "", users[i%len(users)])
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a.prompt, prompt); diff != "" {
			t.Errorf("%s: verifier prompt differs from the provider's (-provider +verifier):\n%s", name, diff)
		}

		// The verifier's seeded regeneration, as Checker.regenerate builds it.
		if s.Seed != nil && s.Temperature > 0 {
			maxTok := len(a.ids) + 1
			if s.MaxTokens > 0 && maxTok > s.MaxTokens {
				maxTok = s.MaxTokens
			}
			res, err := ref.Generate(context.Background(), engine.Request{Prompt: prompt, MaxTokens: maxTok, Stop: s.Stop,
				Sampling: verifier.EngineSampling(s), TopLogprobs: 5}, func(engine.Token) error { return nil })
			if err != nil {
				t.Fatalf("%s: verifier regenerate: %v", name, err)
			}
			if diff := cmp.Diff(a.ids, bitIDs(res.Tokens)); diff != "" {
				t.Errorf("%s: verifier regeneration differs (-provider +verifier):\n%s", name, diff)
			}
		}

		// The whole re-check.
		lps := make([]float64, len(a.lps))
		for j, lp := range a.lps {
			lps[j] = float64(lp)
		}
		job := verifier.Job{Prompt: prompt, Sampling: s, ModelSHA256: "sha", Profile: verifier.ProfileBuiltin}
		ans := verifier.Answer{IDs: a.ids, Text: a.text, Logprobs: lps, FinishReason: a.finish}
		claim := verifier.Claim{ModelSHA256: "sha", OutputHash: verifier.HexSHA256([]byte(a.text)),
			TokensIn: uint64(len(prompt)), TokensOut: uint64(len(a.ids)), FinishReason: a.finish,
			LogprobsCommitment: channel.LogprobsCommitment(a.ids, a.lps)}
		rep, err := checker.Check(context.Background(), job, ans, claim)
		if err != nil {
			t.Fatalf("%s: Check: %v", name, err)
		}
		for _, f := range rep.Findings {
			if f.Failed && exactChecks[f.Check] {
				t.Errorf("%s: honest answer (%d tokens, %s) fails %s: %+v", name, len(a.ids), a.finish, f.Check, f)
			}
		}
	}
}

func bitIDs(toks []engine.Token) []int32 {
	var out []int32
	for _, tk := range toks {
		if tk.ID >= 0 {
			out = append(out, tk.ID)
		}
	}
	return out
}

func ptrStr(p *float64) string {
	if p == nil {
		return "unset"
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

// TestVerifierTruncatedSeeded re-checks honest seeded answers that end with
// "length" before max_tokens: one cut by the provider's KV budget (max_tokens
// unset), one cut when the channel's credit ran out (Job.CreditLimited). The
// regeneration must not run past the answer's end and call it a mismatch.
func TestVerifierTruncatedSeeded(t *testing.T) {
	const name = "mycel-ref-q8"
	m := demoModel(t, name)
	wt, err := peercheck.WeightType(demoOut[name])
	if err != nil {
		t.Fatal(err)
	}
	ref := engine.New(m, engine.Config{Threads: 1})
	runEngine(t, ref)
	checker, err := verifier.NewChecker(ref, m.Tokenizer(), "sha", wt, verifier.DefaultBands())
	if err != nil {
		t.Fatal(err)
	}
	format, err := m.ChatFormat()
	if err != nil {
		t.Fatal(err)
	}
	const user = "Explain package sync."
	prompt, err := verifier.Prompt(format, m.Tokenizer(), "", user)
	if err != nil {
		t.Fatal(err)
	}
	const fit = 5 // output tokens the small provider's KV budget holds
	small := engine.New(m, engine.Config{Threads: 2, KVBudgetBytes: int64(len(prompt)+fit) * m.KVBytesPerToken()})
	runEngine(t, small)
	bs, err := backend.NewBuiltin(small, "")
	if err != nil {
		t.Fatal(err)
	}

	check := func(t *testing.T, s verifier.Sampling, creditLimited bool, ids []int32, lps []float32, text, finish string) {
		t.Helper()
		lp64 := make([]float64, len(lps))
		for j, lp := range lps {
			lp64[j] = float64(lp)
		}
		job := verifier.Job{Prompt: prompt, Sampling: s, ModelSHA256: "sha", Profile: verifier.ProfileBuiltin, CreditLimited: creditLimited}
		ans := verifier.Answer{IDs: ids, Text: text, Logprobs: lp64, FinishReason: finish}
		claim := verifier.Claim{ModelSHA256: "sha", OutputHash: verifier.HexSHA256([]byte(text)),
			TokensIn: uint64(len(prompt)), TokensOut: uint64(len(ids)), FinishReason: finish,
			LogprobsCommitment: channel.LogprobsCommitment(ids, lps)}
		rep, err := checker.Check(context.Background(), job, ans, claim)
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		for _, f := range rep.Findings {
			if f.Failed && exactChecks[f.Check] {
				t.Errorf("honest answer (%d tokens, %s) fails %s: %+v", len(ids), finish, f.Check, f)
			}
		}
	}

	t.Run("kv_budget", func(t *testing.T) {
		for seed := int64(1); seed <= 20; seed++ {
			req := &backend.Request{Chat: true, Messages: []openai.ChatMessage{{Role: "user", Content: user}},
				Temperature: f64(1), Seed: i64(seed), Logprobs: true}
			if err := bs.Prepare(req); err != nil {
				t.Fatal(err)
			}
			var ids []int32
			var lps []float32
			var text strings.Builder
			res, err := bs.Generate(context.Background(), req, func(ch backend.Chunk) error {
				text.WriteString(ch.Text)
				for _, tk := range ch.Tokens {
					ids, lps = append(ids, tk.ID), append(lps, tk.Logprob)
				}
				return nil
			})
			if err != nil {
				t.Fatalf("provider: %v", err)
			}
			if res.FinishReason != openai.FinishLength {
				continue // stopped on its own: try another seed
			}
			if len(ids) != fit {
				t.Fatalf("provider generated %d tokens, its budget holds %d", len(ids), fit)
			}
			s := verifier.ShopperParams{Temperature: f64(1), Seed: i64(seed)}.Sampling()
			check(t, s, false, ids, lps, text.String(), res.FinishReason)
			return
		}
		t.Fatal("no seed of 20 ran into the KV budget")
	})

	t.Run("credit", func(t *testing.T) {
		seed := int64(77)
		s := verifier.ShopperParams{Temperature: f64(0.8), Seed: &seed, MaxTokens: 16}.Sampling()
		res, err := ref.Generate(context.Background(), engine.Request{Prompt: prompt, MaxTokens: 16, Sampling: verifier.EngineSampling(s),
			IgnoreEOG: true}, func(engine.Token) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		// The credit ran out after four tokens.
		const cut = 4
		ids := bitIDs(res.Tokens)[:cut]
		var lps []float32
		for _, tk := range res.Tokens[:cut] {
			lps = append(lps, tk.Logprob)
		}
		text, err := m.Tokenizer().Decode(ids)
		if err != nil {
			t.Fatal(err)
		}
		check(t, s, true, ids, lps, text, openai.FinishLength)
	})
}
