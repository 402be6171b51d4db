package verifier

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/engine"
	"github.com/mycel-network/mycel/internal/tokenizer"
)

// Profile says how closely an answer must match the reference engine.
type Profile string

const (
	// ProfileBuiltin is a provider running Mycel's built-in engine on the
	// registered file: logprobs are bit-identical to the reference, greedy
	// and seeded answers are reproduced exactly.
	ProfileBuiltin Profile = "builtin"
	// ProfilePeer is any other engine (llama.cpp, Ollama, vLLM) on the
	// registered file: log-probabilities agree within the weight type's
	// band, tokens are tested statistically.
	ProfilePeer Profile = "peer"
)

// Sampling is what the request asked for, in OpenAI terms after defaults
// (OpenAI's default temperature and top_p are 1).
type Sampling struct {
	Temperature float64  // 0 is greedy
	TopP        float64  // 0 or >= 1 disables
	Seed        *int64   // nil: not reproducible
	MaxTokens   int      // 0: no limit asked
	Stop        []string // stop strings
}

// Job is an audited request as the verifier sent it.
type Job struct {
	// RequestBody is the HTTP body as sent; its sha256 must be the
	// receipt's request hash. Nil skips that check.
	RequestBody []byte
	// Prompt is the prompt's token ids as the reference builds them (chat
	// template applied, tokenised).
	Prompt      []int32
	Sampling    Sampling
	ModelSHA256 string // the registered model's file hash
	Profile     Profile
	// CreditLimited is set when the provider may have stopped early for
	// lack of credit on the channel (finish "length" below max tokens is
	// then allowed).
	CreditLimited bool
}

// Answer is what the provider returned.
type Answer struct {
	IDs          []int32   // output token ids (without an end-of-generation token)
	Text         string    // output text as delivered
	Logprobs     []float64 // claimed log-probability per token; nil when not asked
	FinishReason string
	// Revealed marks Logprobs as the values behind the receipt's logprobs
	// commitment, revealed by the provider on challenge: they must hash to
	// the commitment (float32 values, as committed).
	Revealed bool
	// RevealSignature is the provider's signature over its reveal of IDs
	// and Logprobs (reveal.SignAnswer), verified by the shopper; "" when the
	// reveal was not signed or not made. Values it signs that do not hash to
	// the commitment are proof of a lie (tx.EvidenceMaterial).
	RevealSignature string
}

// Claim holds the receipt fields the re-check tests (see channel.Receipt).
type Claim struct {
	ModelSHA256        string
	RequestHash        string // hex sha256 of the request body
	OutputHash         string // hex sha256 of the output text
	TokensIn           uint64
	TokensOut          uint64
	LogprobsCommitment string
	FinishReason       string
}

// Finding is the outcome of one check: a statistic, the threshold it is held
// to and whether it failed. For p-value tests both are natural logarithms.
type Finding struct {
	Check     string  `json:"check"`
	Statistic float64 `json:"statistic"`
	Threshold float64 `json:"threshold"`
	Failed    bool    `json:"failed"`
	Detail    string  `json:"detail,omitempty"`
}

// Report is the re-check summary of one answer; it is what evidence carries.
type Report struct {
	Honest   bool      `json:"honest"`
	Profile  Profile   `json:"profile"`
	Tokens   int       `json:"tokens"`
	Findings []Finding `json:"findings"`
	// PITSum and PITCount are the Fisher statistic (sum of -ln(1-u)) and
	// the number of tokens it covers, for combining audits of one provider
	// across requests.
	PITSum   float64 `json:"pit_sum"`
	PITCount int     `json:"pit_count"`
	// ScoredTokens is how many tokens the reference engine processed
	// (prompt and output, plus regeneration), for accounting.
	ScoredTokens int `json:"scored_tokens"`
}

// Failed returns the names of the failed checks.
func (r Report) Failed() []string {
	var out []string
	for _, f := range r.Findings {
		if f.Failed {
			out = append(out, f.Check)
		}
	}
	return out
}

// Finding returns the finding named check.
func (r Report) Finding(check string) (Finding, bool) {
	for _, f := range r.Findings {
		if f.Check == check {
			return f, true
		}
	}
	return Finding{}, false
}

// Reference is the engine a checker re-computes with. *engine.Engine
// implements it.
type Reference interface {
	// Score teacher-forces output after prompt (engine.Engine.Score).
	Score(ctx context.Context, prompt, output []int32, topK int) ([]engine.TokenScore, error)
	// Generate regenerates a request (engine.Engine.Generate).
	Generate(ctx context.Context, req engine.Request, fn func(engine.Token) error) (engine.Result, error)
}

// Replayer is a Reference that can check a seeded answer without decoding it again
// (engine.Engine.Replay); Checker uses it when the reference has it.
type Replayer interface {
	Replay(ctx context.Context, prompt, output []int32, topK int, sp engine.Sampling) ([]engine.TokenScore, int, error)
}

// Checker re-checks answers of one registered model file.
type Checker struct {
	ref        Reference
	tok        *tokenizer.Tokenizer
	sha        string
	weightType string
	bands      Bands
}

// NewChecker returns a checker for the model file with hash sha256 and
// weight type weightType (peercheck.WeightType), re-computing with ref and
// tokenising with tok.
func NewChecker(ref Reference, tok *tokenizer.Tokenizer, sha256Hex, weightType string, bands Bands) (*Checker, error) {
	if ref == nil || tok == nil {
		return nil, errors.New("new checker: reference engine and tokenizer are required")
	}
	if err := bands.Validate(); err != nil {
		return nil, fmt.Errorf("new checker: %w", err)
	}
	if _, ok := bands.LogprobTol[weightType]; !ok {
		return nil, fmt.Errorf("new checker: no logprob band for weight type %q", weightType)
	}
	return &Checker{ref: ref, tok: tok, sha: sha256Hex, weightType: weightType, bands: bands}, nil
}

// SHA256 is the hash of the model file the checker holds answers to.
func (c *Checker) SHA256() string { return c.sha }

// Tokenize returns the model tokenizer's own tokenisation of an output text
// (no special tokens parsed or added).
func (c *Checker) Tokenize(text string) ([]int32, error) {
	ids, err := c.tok.Encode(text, tokenizer.EncodeOptions{})
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	return ids, nil
}

// Bands returns the checker's bands.
func (c *Checker) Bands() Bands { return c.bands }

// scoreTopK is how many alternatives the reference reports per position
// (engine.Score's maximum): the more, the tighter the tail bounds.
const scoreTopK = 100

// Check re-checks ans to job against the receipt's claim. An error means the
// re-check could not be done (bad input, engine failure), never that the
// provider cheated.
func (c *Checker) Check(ctx context.Context, job Job, ans Answer, claim Claim) (Report, error) {
	if job.ModelSHA256 != c.sha {
		return Report{}, fmt.Errorf("check: job is for model %s, checker holds %s", short(job.ModelSHA256), short(c.sha))
	}
	if job.Profile != ProfileBuiltin && job.Profile != ProfilePeer {
		return Report{}, fmt.Errorf("check: unknown profile %q", job.Profile)
	}
	if len(job.Prompt) == 0 {
		return Report{}, errors.New("check: empty prompt")
	}
	if ans.Logprobs != nil && len(ans.Logprobs) != len(ans.IDs) {
		return Report{}, fmt.Errorf("check: %d logprobs for %d tokens", len(ans.Logprobs), len(ans.IDs))
	}
	s := job.Sampling
	if s.Temperature < 0 || math.IsNaN(s.Temperature) || math.IsInf(s.Temperature, 0) {
		return Report{}, fmt.Errorf("check: bad temperature %v", s.Temperature)
	}
	r := Report{Profile: job.Profile, Tokens: len(ans.IDs)}
	add := func(f Finding) { r.Findings = append(r.Findings, f) }
	exact := job.Profile == ProfileBuiltin

	// Receipt bindings: exact.
	add(boolFinding("model_hash", claim.ModelSHA256 == job.ModelSHA256, "receipt model "+short(claim.ModelSHA256)))
	if job.RequestBody != nil {
		add(boolFinding("request_hash", strings.EqualFold(claim.RequestHash, HexSHA256(job.RequestBody)), ""))
	}
	add(boolFinding("output_hash", strings.EqualFold(claim.OutputHash, HexSHA256([]byte(ans.Text))), ""))
	if claim.FinishReason != "" {
		add(boolFinding("finish_reason", claim.FinishReason == ans.FinishReason, "receipt "+claim.FinishReason+", answer "+ans.FinishReason))
	}
	if ans.Revealed {
		lp32 := make([]float32, len(ans.Logprobs))
		for i, v := range ans.Logprobs {
			lp32[i] = float32(v)
		}
		add(boolFinding("logprobs_reveal", strings.EqualFold(claim.LogprobsCommitment, channel.LogprobsCommitment(ans.IDs, lp32)),
			"revealed logprobs do not match the receipt's commitment"))
	}

	// Token ids the model does not have: the provider's ids are a lie (the
	// rest cannot be scored).
	vocab := c.tok.VocabSize()
	for i, id := range ans.IDs {
		if id < 0 || int(id) >= vocab {
			add(Finding{Check: "token_vocab", Statistic: float64(id), Threshold: float64(vocab), Failed: true,
				Detail: fmt.Sprintf("token %d: id %d outside the vocabulary of %d", i, id, vocab)})
			r.Honest = false
			return r, nil
		}
	}

	// Token counts: never more than the reference counts.
	slack := 0
	if !exact {
		slack = c.bands.PeerTokensInSlack
	}
	in := float64(claim.TokensIn) - float64(len(job.Prompt))
	add(Finding{Check: "tokens_in", Statistic: in, Threshold: float64(slack), Failed: in > float64(slack)})
	outSlack := 0
	if !exact && ans.FinishReason == engine.FinishStop {
		outSlack = c.bands.PeerTokensOutSlack // the end-of-generation token, billed by some engines
	}
	out := float64(claim.TokensOut) - float64(len(ans.IDs))
	add(Finding{Check: "tokens_out", Statistic: out, Threshold: float64(outSlack), Failed: out > float64(outSlack)})
	if s.MaxTokens > 0 {
		over := float64(len(ans.IDs) - s.MaxTokens)
		add(Finding{Check: "max_tokens", Statistic: over, Threshold: 0, Failed: over > 0, Detail: "tokens beyond max_tokens"})
	}

	// The text must be what the tokens decode to (up to a stop string).
	decoded, err := c.tok.Decode(ans.IDs)
	if err != nil {
		return Report{}, fmt.Errorf("check: decode output: %w", err)
	}
	stopHit := stopCut(decoded, ans.Text, s.Stop)
	textOK := strings.ToValidUTF8(decoded, "\uFFFD") == strings.ToValidUTF8(ans.Text, "\uFFFD") || stopHit
	add(boolFinding("text_tokens", textOK, "text differs from the decoded tokens"))

	// Teacher-forced score of the output (plus an end-of-generation token
	// when the answer claims to have stopped on one).
	scored := ans.IDs
	eosStop := ans.FinishReason == engine.FinishStop && !stopHit
	if eosStop {
		scored = append(append([]int32(nil), ans.IDs...), c.tok.EOS())
	}
	var scores []engine.TokenScore
	// A seeded sampled answer on the built-in engine is regenerated: replayed when the
	// reference can (engine.Engine.Replay: Score's one prefill pass, with the sampler Generate
	// would run checked at every position, so its scores serve the tests below whatever the
	// outcome), else generated again (its tokens carry the bit-identical logprobs Score would
	// compute when they match). A match up to a claimed stop is the reference's own stop; a
	// match of every token after which the reference goes on where the answer claims to have
	// stopped is a truncation.
	var regen *Finding
	regenStop, regenPast := false, false
	if exact && s.Temperature > 0 && s.Seed != nil {
		if rp, ok := c.ref.(Replayer); ok && len(s.Stop) == 0 {
			sc, first, err := rp.Replay(ctx, job.Prompt, scored, scoreTopK, EngineSampling(s))
			if err != nil {
				return Report{}, fmt.Errorf("check: replay: %w", err)
			}
			f := Finding{Check: "seeded_regen", Statistic: float64(first), Threshold: -1, Failed: first >= 0,
				Detail: "first position where the reference's seeded sampler differs (-1: none)"}
			regen, scores = &f, sc
			regenPast = eosStop && first == len(ans.IDs)
			if !f.Failed && eosStop {
				regenStop, eosStop, scored, scores = true, false, ans.IDs, sc[:len(ans.IDs)]
			}
		} else {
			f, toks, finish, n, err := c.regenerate(ctx, job, ans)
			if err != nil {
				return Report{}, err
			}
			r.ScoredTokens += n
			regen = &f
			if !f.Failed {
				scores = toks[:len(ans.IDs)]
				if eosStop && finish == engine.FinishStop {
					regenStop, eosStop, scored = true, false, ans.IDs
				}
			}
			regenPast = eosStop && f.Failed && int(f.Statistic) == len(ans.IDs) && len(toks) > len(ans.IDs)
		}
	}
	if len(scored) > 0 && (scores == nil || len(scores) != len(scored)) {
		scores, err = c.ref.Score(ctx, job.Prompt, scored, scoreTopK)
		if err != nil {
			return Report{}, fmt.Errorf("check: score: %w", err)
		}
		if len(scores) != len(scored) {
			return Report{}, fmt.Errorf("check: reference scored %d of %d tokens", len(scores), len(scored))
		}
	}
	r.ScoredTokens += len(job.Prompt) + len(scored)
	pos := make([]position, len(scored))
	for i, sc := range scores {
		p := position{ID: sc.ID, Logprob: float64(sc.Logprob)}
		for _, t := range sc.Top {
			p.Top = append(p.Top, topEntry{ID: t.ID, Logprob: float64(t.Logprob)})
		}
		sortTop(p.Top)
		pos[i] = p
	}
	outPos := pos[:len(ans.IDs)]
	tol := c.bands.LogprobTol[c.weightType]
	tie := 2 * tol
	if exact {
		tie = 0
	}

	// Finish reason consistency.
	switch ans.FinishReason {
	case engine.FinishLength:
		cut := s.MaxTokens > 0 && len(ans.IDs) < s.MaxTokens && !job.CreditLimited
		add(Finding{Check: "finish_length", Statistic: float64(len(ans.IDs)), Threshold: float64(s.MaxTokens), Failed: cut,
			Detail: "finish length below max_tokens"})
	case engine.FinishStop:
		if stopHit {
			add(Finding{Check: "finish_stop", Detail: "stop string"})
			break
		}
		if regenStop {
			add(Finding{Check: "finish_stop", Detail: "the seeded regeneration stopped at the same position"})
			break
		}
		if regenPast {
			add(Finding{Check: "finish_stop", Statistic: float64(len(ans.IDs)), Failed: true,
				Detail: "the seeded regeneration goes on where the answer claims to have stopped"})
			break
		}
		eos := pos[len(pos)-1]
		if s.Temperature == 0 {
			margin := topLP(eos) - eos.Logprob
			add(Finding{Check: "finish_stop", Statistic: margin, Threshold: tie, Failed: margin > tie && !isArgmax(eos),
				Detail: "greedy stop where end-of-generation is not the most likely token"})
			break
		}
		lp := math.Log(temper(eos, s.Temperature, vocab).prob(eos, eos.ID))
		maxOut := s.MaxTokens
		if maxOut <= 0 || maxOut > c.bands.MaxOutput {
			maxOut = c.bands.MaxOutput
		}
		floor := math.Log(c.bands.Alpha) - math.Log(float64(maxOut+1))
		add(Finding{Check: "finish_stop", Statistic: lp, Threshold: floor, Failed: lp < floor,
			Detail: "log probability of end-of-generation where the answer stopped"})
	default:
		add(Finding{Check: "finish_reason_known", Statistic: 1, Failed: true, Detail: "unknown finish reason " + ans.FinishReason})
	}

	// Claimed log-probabilities against the reference.
	if ans.Logprobs != nil && len(ans.Logprobs) > 0 {
		add(c.logprobFinding(outPos, ans.Logprobs, exact, tol))
	}

	if exact {
		want := channel.LogprobsCommitment(ans.IDs, refLogprobs(scores[:len(ans.IDs)]))
		add(boolFinding("logprobs_commitment", strings.EqualFold(claim.LogprobsCommitment, want), "receipt commitment differs from the reference's"))
	}

	switch {
	case s.Temperature == 0:
		// Greedy: every token is the reference's argmax, up to near ties.
		bad, worst := 0, 0.0
		for _, p := range outPos {
			m := topLP(p) - p.Logprob
			if m > tie || (exact && !isArgmax(p)) {
				bad++
				worst = math.Max(worst, m)
			}
		}
		add(Finding{Check: "greedy_argmax", Statistic: float64(bad), Threshold: 0, Failed: bad > 0,
			Detail: fmt.Sprintf("tokens not the reference argmax beyond margin %.3g (worst %.3g)", tie, worst)})
	default:
		if regen != nil {
			add(*regen)
		}
		seed := seedFrom([]byte(claim.RequestHash + "\x00" + claim.OutputHash))
		// The end-of-generation token the answer stopped on is a sampled
		// token like any other: a truncated answer stops where it is
		// unlikely, which the PIT sees.
		pitF, rankF, sum, n := c.statTests(pos, s.Temperature, seed)
		r.PITSum, r.PITCount = sum, n
		add(pitF)
		add(rankF)
	}

	r.Honest = true
	for _, f := range r.Findings {
		if f.Failed {
			r.Honest = false
		}
	}
	return r, nil
}

// statTests runs the model-substitution tests on sampled output: Fisher's
// combination of the randomised PIT values and the count of tokens outside
// the reference's top RankK.
func (c *Checker) statTests(pos []position, temp float64, seed uint64) (pit, rank Finding, sum float64, n int) {
	vocab := c.tok.VocabSize()
	k := c.bands.RankK
	out, mu := 0, 0.0
	for i, p := range pos {
		t := temper(p, temp, vocab)
		u := t.pit(p, uniform(seed, i))
		if u >= 1 {
			u = 1 - 0x1p-53
		}
		sum += -math.Log1p(-u)
		n++
		// Rank: probability (upper bound) of landing outside the top k.
		z := t.wTop + t.tail
		in := 0.0
		inTop := false
		for j := 0; j < len(p.Top) && j < k; j++ {
			in += t.w[j]
			if p.Top[j].ID == p.ID {
				inTop = true
			}
		}
		mu += 1 - in/z
		if !inTop {
			out++
		}
	}
	la := math.Log(c.bands.Alpha)
	lp := gammaUpperTail(n, sum)
	pit = Finding{Check: "likelihood_pit", Statistic: lp, Threshold: la, Failed: n > 0 && lp < la,
		Detail: fmt.Sprintf("log p-value of %d tokens' PIT (sum %.2f)", n, sum)}
	lr := poissonChernoff(out, mu)
	rank = Finding{Check: "rank_topk", Statistic: lr, Threshold: la, Failed: lr < la,
		Detail: fmt.Sprintf("%d of %d tokens outside the reference top %d (expected at most %.2f)", out, len(pos), k, mu)}
	return pit, rank, sum, n
}

// logprobFinding compares claimed log-probabilities with the reference's.
func (c *Checker) logprobFinding(pos []position, claimed []float64, exact bool, tol float64) Finding {
	beyond, worst := 0, 0.0
	for i, p := range pos {
		d := math.Abs(claimed[i] - p.Logprob)
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		worst = math.Max(worst, d)
		if exact {
			// Bit-identical float32 values, as the engine reports them.
			if float32(claimed[i]) != float32(p.Logprob) {
				beyond++
			}
		} else if d > tol {
			beyond++
		}
	}
	if exact {
		return Finding{Check: "logprobs_band", Statistic: worst, Threshold: 0, Failed: beyond > 0,
			Detail: fmt.Sprintf("%d tokens differ from the reference", beyond)}
	}
	// A peer may exceed its band on a rare token; a swapped model exceeds
	// it on many, or far.
	frac := float64(beyond) / float64(len(pos))
	failed := worst > c.bands.PeerHardFactor*tol || (beyond >= 2 && frac > c.bands.PeerBeyondFrac)
	return Finding{Check: "logprobs_band", Statistic: worst, Threshold: tol, Failed: failed,
		Detail: fmt.Sprintf("%d of %d tokens beyond %.3g", beyond, len(pos), tol)}
}

// regenerate re-runs a seeded request with the reference and compares the
// tokens. It returns the finding, the regenerated tokens as scores (with
// top-K alternatives), the regeneration's finish reason and how many tokens
// it generated.
//
// An answer that ends with "length" is regenerated to exactly its own
// length: where it was cut is not a sampling decision (max_tokens, the
// provider's KV cache budget or the channel's credit ended it, and
// finish_length judges whether the cut was allowed), so generating one more
// token would call every answer cut below max_tokens a mismatch. Any other
// answer gets one token more, to see the reference stop where it stopped.
func (c *Checker) regenerate(ctx context.Context, job Job, ans Answer) (Finding, []engine.TokenScore, string, int, error) {
	s := job.Sampling
	maxTok := len(ans.IDs) + 1
	if ans.FinishReason == engine.FinishLength {
		maxTok = len(ans.IDs)
	}
	if s.MaxTokens > 0 && maxTok > s.MaxTokens {
		maxTok = s.MaxTokens
	}
	if maxTok == 0 {
		// Nothing to regenerate (engine.Request reads MaxTokens 0 as no limit).
		return Finding{Check: "seeded_regen", Statistic: -1, Threshold: -1,
			Detail: "first position where the reference's seeded regeneration differs (-1: none)"}, nil, engine.FinishLength, 0, nil
	}
	req := engine.Request{Prompt: job.Prompt, MaxTokens: maxTok, Stop: s.Stop, Sampling: EngineSampling(s), TopLogprobs: scoreTopK}
	res, err := c.ref.Generate(ctx, req, func(engine.Token) error { return nil })
	if err != nil {
		return Finding{}, nil, "", 0, fmt.Errorf("check: regenerate: %w", err)
	}
	got := make([]engine.TokenScore, 0, len(res.Tokens))
	for _, t := range res.Tokens {
		if t.ID >= 0 {
			got = append(got, engine.TokenScore{ID: t.ID, Logprob: t.Logprob, Top: t.Top})
		}
	}
	first := -1
	for i := 0; i < len(got) || i < len(ans.IDs); i++ {
		if i >= len(got) || i >= len(ans.IDs) || got[i].ID != ans.IDs[i] {
			first = i
			break
		}
	}
	if first < 0 && res.FinishReason != ans.FinishReason {
		first = len(got)
	}
	f := Finding{Check: "seeded_regen", Statistic: float64(first), Threshold: -1, Failed: first >= 0,
		Detail: "first position where the reference's seeded regeneration differs (-1: none)"}
	return f, got, res.FinishReason, len(got), nil
}

// EngineSampling maps OpenAI sampling parameters to the engine's, as the
// provider's built-in backend must for seeded answers to be reproducible:
// temperature and top_p as float32, the seed's bits as uint64, nothing else.
func EngineSampling(s Sampling) engine.Sampling {
	es := engine.Sampling{Temperature: float32(s.Temperature), TopP: float32(s.TopP)}
	if s.Seed != nil {
		es.Seed = uint64(*s.Seed)
	}
	return es
}

func refLogprobs(s []engine.TokenScore) []float32 {
	out := make([]float32, len(s))
	for i, t := range s {
		out[i] = t.Logprob
	}
	return out
}

// stopCut reports whether text is decoded cut at one of the stop strings:
// decoded = text + stop + anything, the stop string ending in the last
// token.
func stopCut(decoded, text string, stops []string) bool {
	if len(stops) == 0 || !strings.HasPrefix(decoded, text) {
		return false
	}
	rest := decoded[len(text):]
	for _, st := range stops {
		if st != "" && strings.HasPrefix(rest, st) {
			return true
		}
	}
	return false
}

func topLP(p position) float64 {
	if len(p.Top) == 0 {
		return p.Logprob
	}
	return p.Top[0].Logprob
}

// isArgmax reports whether p's token is the reference's greedy choice
// (highest log-probability, lowest id on ties).
func isArgmax(p position) bool {
	return len(p.Top) == 0 || p.Top[0].ID == p.ID
}

func boolFinding(check string, ok bool, detail string) Finding {
	f := Finding{Check: check, Failed: !ok}
	if !ok {
		f.Statistic = 1
		f.Detail = detail
	}
	return f
}

// HexSHA256 is the hex sha256 of b (receipt request and output hashes).
func HexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func short(h string) string {
	if utf8.RuneCountInString(h) > 12 {
		return h[:12]
	}
	return h
}
