package engine

import (
	"context"
	"fmt"
)

// logitBufferBytes bounds the logits buffer of one scoring pass (rows ×
// vocabulary float32s); at least minLogitRows positions compute logits per
// pass whatever the vocabulary. Fewer, larger passes read the weights from
// memory fewer times.
const (
	logitBufferBytes = 16 << 20
	minLogitRows     = 64
)

// Score teacher-forces output after prompt and returns, for every output
// token, its log-probability and the topK most likely tokens at its
// position, from batched prefill passes (matrix-matrix products). The values
// are bit-identical to the ones Generate reports when it produces the same
// tokens. Score runs in the caller's goroutine and shares the KV budget with
// generation, waiting while it is full.
func (e *Engine) Score(ctx context.Context, prompt, output []int32, topK int) ([]TokenScore, error) {
	out, _, err := e.score(ctx, prompt, output, topK, nil)
	return out, err
}

// Replay teacher-forces output after prompt as Score does and, at every position, runs the
// sampler Generate would run there (same logits, sampling, history and draw index) to check
// that a seeded Generate of prompt produces output: it returns Score's values and the first
// position whose sampled token differs from output's (-1: none). An end-of-generation token in
// output matches any end-of-generation token sampled there, as both end a Generate; output
// that ends without one is a Generate cut at its length. It costs a prefill instead of a
// decode of every token. Stop strings are not modelled: a request with them needs Generate.
func (e *Engine) Replay(ctx context.Context, prompt, output []int32, topK int, sp Sampling) ([]TokenScore, int, error) {
	return e.score(ctx, prompt, output, topK, &sp)
}

// score is Score, and Replay's check when replay is set: first is then the first position
// whose sampled token differs from output's (-1: none).
func (e *Engine) score(ctx context.Context, prompt, output []int32, topK int, replay *Sampling) (_ []TokenScore, first int, _ error) {
	first = -1
	if err := e.validate(prompt); err != nil {
		return nil, first, fmt.Errorf("score: %w", err)
	}
	for i, id := range output {
		if id < 0 || int(id) >= e.m.hp.nVocab {
			return nil, first, fmt.Errorf("score: output token %d: id %d outside vocabulary of %d", i, id, e.m.hp.nVocab)
		}
	}
	if topK < 0 || topK > 100 {
		return nil, first, fmt.Errorf("score: top k %d out of range [0, 100]", topK)
	}
	if len(output) == 0 {
		return nil, first, nil
	}
	total := len(prompt) + len(output)
	if total > e.m.hp.nCtx {
		return nil, first, fmt.Errorf("score: %d tokens do not fit the context of %d", total, e.m.hp.nCtx)
	}
	// The last output token is never fed: its logprob comes from the
	// position before it.
	positions := total - 1
	kvBytes := int64(positions) * e.m.kvBytesPerToken()
	if kvBytes > e.budget.total {
		return nil, first, fmt.Errorf("score: %d tokens need %d bytes of KV cache, budget is %d: %w", positions, kvBytes, e.budget.total, ErrKVBudget)
	}
	if err := e.budget.acquire(ctx, kvBytes); err != nil {
		return nil, first, fmt.Errorf("score: %w", err)
	}
	defer e.budget.release(kvBytes)
	kv := newKVCache(e.m, positions)
	all := append(append(make([]int32, 0, total), prompt...), output...)
	out := make([]TokenScore, 0, len(output))
	var sc scratch
	var toks []fwdToken
	var top []TopLogprob
	var smp sampler
	vocab := e.m.hp.nVocab
	logitRows := max(minLogitRows, logitBufferBytes/(4*vocab))
	for start, end := 0, 0; start < positions; start = end {
		if err := ctx.Err(); err != nil {
			return nil, first, fmt.Errorf("score: %w", err)
		}
		end = min(start+e.cfg.PrefillChunk, positions)
		// At most logitRows positions with logits per pass bounds the
		// logits buffer (rows × vocabulary floats).
		end = min(end, max(start, len(prompt)-1)+logitRows)
		toks = toks[:0]
		for pos := start; pos < end; pos++ {
			toks = append(toks, fwdToken{id: all[pos], pos: pos, kv: kv, logits: pos >= len(prompt)-1})
		}
		n := e.m.forward(&sc, &e.pool, toks)
		for j := 0; j < n; j++ {
			pos := end - n + j
			target := all[pos+1]
			logits := sc.logits[j*vocab : (j+1)*vocab]
			lse := logSumExp(logits)
			ts := TokenScore{ID: target, Logprob: logprobOf(logits, lse, target)}
			if topK > 0 {
				top = topLogprobs(top, logits, lse, topK)
				ts.Top = append([]TopLogprob(nil), top...)
			}
			if replay != nil && first < 0 {
				// Draw n of Generate: history is the prompt and the n tokens before.
				n := pos + 1 - len(prompt)
				got := smp.sample(logits, *replay, all[:pos+1], uint64(n))
				if got != target && !(e.isEOG(got) && e.isEOG(target)) {
					first = n
				}
			}
			out = append(out, ts)
		}
	}
	return out, first, nil
}
