package gateway

import (
	"context"
	"sync"

	"github.com/mycel-network/mycel/internal/gateway/apikey"
	"github.com/mycel-network/mycel/internal/openai"
)

// settleGroup counts answers whose receipts are being verified and accounted after the
// client's response.
type settleGroup struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while n is 0
}

// maxSettling bounds the answers being settled in the background: beyond it (the CPU does not
// keep up with the verification) an answer is settled in its handler after the response, which
// slows the clients down instead of letting the backlog and the vouchers' lag grow.
const maxSettling = 1024

// tryAdd counts one more answer being settled unless limit are already.
func (s *settleGroup) tryAdd(limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n >= limit {
		return false
	}
	if s.n == 0 {
		s.idle = make(chan struct{})
	}
	s.n++
	return true
}

func (s *settleGroup) done() {
	s.mu.Lock()
	s.n--
	if s.n == 0 {
		close(s.idle)
		s.idle = nil
	}
	s.mu.Unlock()
}

func (s *settleGroup) wait(ctx context.Context) error {
	s.mu.Lock()
	idle := s.idle
	s.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitSettled waits until every answered request's receipts have been verified, logged and
// charged to its API key: the gateway does that after the client's response, off the request
// path. Serve waits for it before returning.
func (g *Gateway) WaitSettled(ctx context.Context) error { return g.settling.wait(ctx) }

// settleLater verifies sp's receipts, pays the providers, logs the receipts and charges key,
// after the client's response and without delaying it. Each receipt is registered with its
// channel before this returns, so that a 402 on the channel waits for it (payer.drain).
func (g *Gateway) settleLater(ctx context.Context, sp *splice, key *apikey.Key) {
	ctx = context.WithoutCancel(ctx)
	for _, s := range sp.segs {
		if s.receipt != nil {
			s.pending = g.pay.expect(s.cand.Provider)
		}
	}
	if !g.settling.tryAdd(maxSettling) {
		g.settleNow(ctx, sp, key)
		return
	}
	go func() {
		defer g.settling.done()
		if g.settleHook != nil {
			g.settleHook()
		}
		g.settleNow(ctx, sp, key)
	}()
}

// settleNow accounts sp (see account) and charges key for it.
func (g *Gateway) settleNow(ctx context.Context, sp *splice, key *apikey.Key) {
	usage, cost := g.account(ctx, sp)
	if key != nil {
		if err := g.deps.Keys.Charge(key.ID, cost, usage.TotalTokens, g.now()); err != nil {
			g.log.Error("charge api key", "key_id", key.ID, "umyc", cost, "err", err)
		}
	}
	sp.req.hold.Release() // after the charge: spent + reserved never dips below the truth
	g.metrics.spend.Add(float64(cost))
	g.traffic.add(0, 0, uint64(max(usage.PromptTokens, 0)), uint64(max(usage.CompletionTokens, 0)), cost)
}

// claimedUsage is the client's usage as the receipts claim it (the gateway's own count for a
// segment without one, or with one claiming more output than delivered), known before the
// receipts are verified: prompt tokens from the first
// receipt, corrected for the prefix of continuations.
func (sp *splice) claimedUsage() openai.Usage {
	prompt := sp.promptTokens()
	completion := 0
	for _, s := range sp.segs {
		if s.receipt != nil && s.checkTokensOut() == nil {
			completion += int(s.receipt.TokensOut)
		} else {
			completion += s.tokens
		}
	}
	return openai.Usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
}

func (sp *splice) promptTokens() int {
	for _, s := range sp.segs {
		if s.receipt != nil && uint64(s.before) <= s.receipt.TokensIn {
			return int(s.receipt.TokensIn) - s.before
		}
	}
	return sp.req.estIn
}
