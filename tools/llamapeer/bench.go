package main

import (
	"fmt"
	"syscall"
	"time"
)

// benchResult is what `llamapeer bench` prints; `mycel bench engine --peer`
// reads it.
type benchResult struct {
	Model              string  `json:"model"`
	Threads            int     `json:"threads"`
	PromptTokens       int     `json:"prompt_tokens"`
	GenTokens          int     `json:"gen_tokens"`
	Parallel           int     `json:"parallel"`
	Reps               int     `json:"reps"`
	PrefillTokS        float64 `json:"prefill_tok_s"`
	DecodeTokS         float64 `json:"decode_tok_s"`
	DecodeTokSParallel float64 `json:"decode_tok_s_parallel"`
	PeakRSSBytes       int64   `json:"peak_rss_bytes"`
}

// benchText is tokenized and repeated to make the benchmark prompt; its
// content does not change the cost of a forward pass.
const benchText = "The quick brown fox jumps over the lazy dog. Packages are built from source, " +
	"tested on every commit and shipped to a network of machines that serve requests. "

// benchPrompt returns exactly n prompt tokens: BOS when the model wants it,
// then benchText repeated.
func (p *peer) benchPrompt(n int) ([]int, error) {
	body, err := p.tokenize(benchText, false, false)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return nil, fmt.Errorf("bench text tokenizes to nothing")
	}
	ids := []int{}
	if p.model.AddBOSToken() {
		withBOS, err := p.tokenize(benchText, true, false)
		if err != nil {
			return nil, err
		}
		if len(withBOS) > len(body) {
			ids = append(ids, withBOS[0])
		}
	}
	for len(ids) < n {
		ids = append(ids, body...)
	}
	return ids[:n], nil
}

// argmax is the cheapest greedy choice, used where logprobs are not needed.
func argmax(l []float32) int {
	best := 0
	for i, v := range l {
		if v > l[best] {
			best = i
		}
	}
	return best
}

// bench measures prefill of promptTokens tokens, single-stream decode of
// genTokens tokens, and decode of genTokens tokens in each of parallel
// sequences batched together. Each phase is timed on its own and repeated
// reps times from an empty KV cache; the best rate of each phase is
// reported, which filters out scheduler noise on a shared machine. A short
// warm-up runs first.
func (p *peer) bench(threads, promptTokens, genTokens, parallel, reps int) (benchResult, error) {
	r := benchResult{Model: p.path, Threads: threads, PromptTokens: promptTokens, GenTokens: genTokens, Parallel: parallel, Reps: reps}
	prompt, err := p.benchPrompt(promptTokens)
	if err != nil {
		return r, err
	}
	s, err := p.newSession(promptTokens+genTokens+1, max(parallel, 1), threads)
	if err != nil {
		return r, err
	}
	defer s.close()

	// Warm-up: touch the weights and let llama.cpp allocate its buffers.
	if err := s.prefill(0, prompt[:min(len(prompt), 16)], 0); err != nil {
		return r, err
	}
	s.ctx.KvCacheClear()

	for range reps {
		prefill, decode, err := s.benchSingle(prompt, genTokens)
		if err != nil {
			return r, err
		}
		r.PrefillTokS = max(r.PrefillTokS, prefill)
		r.DecodeTokS = max(r.DecodeTokS, decode)
		if parallel > 1 {
			par, err := s.benchParallel(prompt, genTokens, parallel)
			if err != nil {
				return r, err
			}
			r.DecodeTokSParallel = max(r.DecodeTokSParallel, par)
		}
	}
	r.PeakRSSBytes = peakRSS()
	return r, nil
}

// benchSingle times the prefill of prompt into sequence 0 of an empty cache
// and the greedy decode of genTokens tokens after it.
func (s *session) benchSingle(prompt []int, genTokens int) (prefill, decode float64, err error) {
	s.ctx.KvCacheClear()
	t0 := time.Now()
	if err := s.prefill(0, prompt, 0); err != nil {
		return 0, 0, err
	}
	l, err := s.logits(s.batch.NumTokens() - 1)
	if err != nil {
		return 0, 0, err
	}
	prefill = float64(len(prompt)) / time.Since(t0).Seconds()

	next := argmax(l)
	t0 = time.Now()
	for i := range genTokens {
		if err := s.step([]int{next}, []int{len(prompt) + i}); err != nil {
			return 0, 0, err
		}
		l, err := s.logits(0)
		if err != nil {
			return 0, 0, err
		}
		next = argmax(l)
	}
	decode = float64(genTokens) / time.Since(t0).Seconds()
	return prefill, decode, nil
}

// benchParallel prefills prompt into parallel sequences (untimed), then
// times genTokens decode steps that each carry one token of every sequence,
// and returns the aggregate tokens per second.
func (s *session) benchParallel(prompt []int, genTokens, parallel int) (float64, error) {
	s.ctx.KvCacheClear()
	tokens := make([]int, parallel)
	pos := make([]int, parallel)
	for q := range parallel {
		if err := s.prefill(q, prompt, 0); err != nil {
			return 0, err
		}
		l, err := s.logits(s.batch.NumTokens() - 1)
		if err != nil {
			return 0, err
		}
		tokens[q], pos[q] = argmax(l), len(prompt)
	}
	t0 := time.Now()
	for range genTokens {
		if err := s.step(tokens, pos); err != nil {
			return 0, err
		}
		for q := range parallel {
			l, err := s.logits(q)
			if err != nil {
				return 0, err
			}
			tokens[q] = argmax(l)
			pos[q]++
		}
	}
	return float64(parallel*genTokens) / time.Since(t0).Seconds(), nil
}

// peakRSS is the process's peak resident set size (ru_maxrss is in KiB on
// Linux).
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss) * 1024
}
