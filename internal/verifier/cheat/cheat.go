// Package cheat implements the cheating providers Mycel's verifier is
// benchmarked and tested against: each wraps the engine an honest provider
// would run and departs from honesty in one way (serving a substitute or a
// quantised model while claiming the registered one, truncating answers,
// inflating token counts, or cheating only on requests that do not look
// like audits). It signs nothing; it produces the answer and the receipt
// fields (verifier.Claim) a provider of that kind would.
package cheat

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/engine"
	"github.com/mycel-network/mycel/internal/verifier"
)

// Strategy is how a provider behaves.
type Strategy string

// Strategies.
const (
	Honest     Strategy = "honest"
	Substitute Strategy = "substitute" // serves a cheaper model, claims the registered one
	Quantised  Strategy = "quantised"  // serves a lower-precision file, claims the registered one
	Truncate   Strategy = "truncate"   // stops early and claims a natural stop
	Inflate    Strategy = "inflate"    // bills more output tokens than it produced
	Spotter    Strategy = "spotter"    // honest to requests that look like audits, substitute otherwise
)

// Strategies lists every cheating strategy.
func Strategies() []Strategy {
	return []Strategy{Substitute, Quantised, Truncate, Inflate, Spotter}
}

// Generator is an engine generating answers (*engine.Engine).
type Generator interface {
	Generate(ctx context.Context, req engine.Request, fn func(engine.Token) error) (engine.Result, error)
}

// Request is one request as a provider sees it.
type Request struct {
	Body     []byte // HTTP body (hashed into the receipt)
	Prompt   []int32
	Params   verifier.ShopperParams
	Sampling verifier.Sampling
}

// Provider serves requests with a strategy.
type Provider struct {
	Strategy Strategy
	// Registered is the engine on the registered model file (what an
	// honest provider runs); Cheap is the engine a substitute or quantised
	// cheater runs instead.
	Registered, Cheap Generator
	ModelSHA256       string
	// LooksLikeAudit is the spotter's guess; nil is NaiveAuditGuess.
	LooksLikeAudit func(Request) bool
	// RandomSeed seeds the provider's sampling of unseeded requests and
	// its truncation points.
	RandomSeed uint64
	// Decode turns token ids into text (the model's tokenizer); the
	// truncating cheater uses it to return text consistent with its tokens.
	Decode func([]int32) (string, error)
	n      uint64
}

// Served is the outcome of one request.
type Served struct {
	Answer verifier.Answer
	Claim  verifier.Claim
	// Cheated reports whether the provider departed from honesty on this
	// request; CheapTokens is how many tokens the cheap engine produced.
	Cheated     bool
	CheapTokens int
	// Committed are the log-probabilities behind the receipt's commitment
	// (what the provider reveals on challenge).
	Committed []float32
}

// Serve answers req.
func (p *Provider) Serve(ctx context.Context, req Request) (Served, error) {
	if p.Registered == nil {
		return Served{}, errors.New("serve: no registered engine")
	}
	p.n++
	eng := p.Registered
	cheat := false
	switch p.Strategy {
	case Honest:
	case Substitute, Quantised:
		cheat = true
	case Truncate, Inflate:
		cheat = true
	case Spotter:
		look := p.LooksLikeAudit
		if look == nil {
			look = NaiveAuditGuess
		}
		cheat = !look(req)
	default:
		return Served{}, fmt.Errorf("serve: unknown strategy %q", p.Strategy)
	}
	if cheat && (p.Strategy == Substitute || p.Strategy == Quantised || p.Strategy == Spotter) {
		if p.Cheap == nil {
			return Served{}, errors.New("serve: strategy needs a cheap engine")
		}
		eng = p.Cheap
	}
	es := verifier.EngineSampling(req.Sampling)
	if req.Sampling.Seed == nil {
		// An unseeded request gets the provider's own randomness.
		es.Seed = mix(p.RandomSeed, p.n)
	}
	res, err := eng.Generate(ctx, engine.Request{
		Prompt: req.Prompt, MaxTokens: req.Sampling.MaxTokens, Sampling: es, Stop: req.Sampling.Stop,
	}, func(engine.Token) error { return nil })
	if err != nil {
		return Served{}, fmt.Errorf("serve: %w", err)
	}
	ids := make([]int32, 0, len(res.Tokens))
	lps := make([]float32, 0, len(res.Tokens))
	for _, t := range res.Tokens {
		if t.ID < 0 {
			continue
		}
		ids = append(ids, t.ID)
		lps = append(lps, t.Logprob)
	}
	text := res.Text
	finish := res.FinishReason
	if cheat && p.Strategy == Truncate && len(ids) >= 2 {
		// Keep between a quarter and three quarters, claim a natural stop.
		keep := len(ids)/4 + int(mix(p.RandomSeed^0x7472, p.n)%uint64(len(ids)/2+1))
		if keep < 1 {
			keep = 1
		}
		if keep < len(ids) {
			ids, lps = ids[:keep], lps[:keep]
			text = prefixText(res.Tokens, keep)
			if p.Decode != nil {
				if text, err = p.Decode(ids); err != nil {
					return Served{}, fmt.Errorf("serve: %w", err)
				}
			}
			finish = engine.FinishStop
		}
	}
	tokensOut := uint64(len(ids))
	if cheat && p.Strategy == Inflate {
		tokensOut += tokensOut/4 + 1
	}
	s := Served{Cheated: cheat, Committed: lps}
	if eng == p.Cheap {
		s.CheapTokens = len(ids)
	}
	s.Answer = verifier.Answer{IDs: ids, Text: text, FinishReason: finish}
	if req.Params.Logprobs {
		s.Answer.Logprobs = make([]float64, len(lps))
		for i, lp := range lps {
			s.Answer.Logprobs[i] = float64(lp)
		}
	}
	s.Claim = verifier.Claim{
		ModelSHA256:        p.ModelSHA256,
		RequestHash:        hexSHA(req.Body),
		OutputHash:         hexSHA([]byte(text)),
		TokensIn:           uint64(len(req.Prompt)),
		TokensOut:          tokensOut,
		LogprobsCommitment: channel.LogprobsCommitment(ids, lps),
		FinishReason:       finish,
	}
	return s, nil
}

// NaiveAuditGuess guesses that requests asking for logprobs are audits
// (what a verifier that needs them for exact checks would send). A seed no
// longer tells anything: the gateway gives every request one.
func NaiveAuditGuess(r Request) bool {
	return r.Params.Logprobs
}

// prefixText is the text the first n tokens released.
func prefixText(toks []engine.Token, n int) string {
	var b []byte
	for i := 0; i < n && i < len(toks); i++ {
		b = append(b, toks[i].Text...)
	}
	return string(b)
}

func mix(a, b uint64) uint64 {
	x := a ^ (b * 0x9e3779b97f4a7c15)
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
