package cheat

import (
	"context"
	"errors"
	"fmt"

	"github.com/mycel-network/mycel/internal/provider/backend"
)

// Backend wraps provider backends so a real provider daemon
// (internal/provider) cheats with a strategy: it implements
// backend.Backend and is plugged in where the honest backend would be.
type Backend struct {
	Strategy Strategy
	// Honest is the backend on the registered model file; Cheap the one a
	// substitute, quantised or spotting cheater runs instead.
	Honest, Cheap backend.Backend
	// TruncateAfter is how many tokens the truncating cheater emits before
	// claiming a natural stop (0 means 8).
	TruncateAfter int
	// LooksLikeAudit is the spotter's guess; nil is NaiveAuditGuess's:
	// "asks for logprobs".
	LooksLikeAudit func(*backend.Request) bool
}

var _ backend.Backend = (*Backend)(nil)

// Info reports the honest backend's model, whatever is served: the claim
// the receipt will carry.
func (b *Backend) Info() backend.Info { return b.Honest.Info() }

// Prepare prepares with the honest backend (token counts as an honest
// provider would bill the prompt).
func (b *Backend) Prepare(req *backend.Request) error { return b.Honest.Prepare(req) }

// Health probes the backend that actually serves.
func (b *Backend) Health(ctx context.Context) error {
	if b.Cheap != nil {
		return b.Cheap.Health(ctx)
	}
	return b.Honest.Health(ctx)
}

// Generate serves req according to the strategy.
func (b *Backend) Generate(ctx context.Context, req *backend.Request, emit func(backend.Chunk) error) (backend.Result, error) {
	switch b.Strategy {
	case Honest:
		return b.Honest.Generate(ctx, req, emit)
	case Substitute, Quantised:
		return b.cheap(ctx, req, emit)
	case Spotter:
		look := b.LooksLikeAudit
		if look == nil {
			look = func(r *backend.Request) bool { return r.Logprobs }
		}
		if look(req) {
			return b.Honest.Generate(ctx, req, emit)
		}
		return b.cheap(ctx, req, emit)
	case Truncate:
		limit := b.TruncateAfter
		if limit <= 0 {
			limit = 8
		}
		n := 0
		errCut := errors.New("truncated")
		res, err := b.Honest.Generate(ctx, req, func(c backend.Chunk) error {
			if n >= limit && c.N > 0 {
				return errCut
			}
			n += c.N
			return emit(c)
		})
		if errors.Is(err, errCut) {
			return backend.Result{PromptTokens: res.PromptTokens, CompletionTokens: n, FinishReason: "stop"}, nil
		}
		return res, err
	case Inflate:
		// Bill one extra token every fourth chunk that carries tokens.
		chunks := 0
		res, err := b.Honest.Generate(ctx, req, func(c backend.Chunk) error {
			if c.N > 0 {
				chunks++
				if chunks%4 == 0 {
					c.N++
				}
			}
			return emit(c)
		})
		if res.CompletionTokens > 0 {
			res.CompletionTokens += chunks / 4
		}
		return res, err
	}
	return backend.Result{}, fmt.Errorf("cheat backend: unknown strategy %q", b.Strategy)
}

func (b *Backend) cheap(ctx context.Context, req *backend.Request, emit func(backend.Chunk) error) (backend.Result, error) {
	if b.Cheap == nil {
		return backend.Result{}, errors.New("cheat backend: strategy needs a cheap backend")
	}
	// The cheap backend prepares its own prompt ids (same tokenizer for a
	// quantisation; possibly another for a substitute).
	r := *req
	if err := b.Cheap.Prepare(&r); err != nil {
		return backend.Result{}, err
	}
	return b.Cheap.Generate(ctx, &r, emit)
}
