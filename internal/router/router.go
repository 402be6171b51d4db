// Package router chooses providers for a request. It is pure: policies rank candidates from
// facts passed in (prices, measured latencies, success rates, reputation, stake, load) and say
// why every rejected candidate was rejected. It does no I/O and reads no clock; Stats and
// Breaker, which keep per-provider measurements, take the time as an argument.
package router

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Candidate is a provider that is registered for the requested model, with everything the
// router knows about it.
type Candidate struct {
	Provider        string  // address; ties are broken by it so ranking is deterministic
	PriceInPerMTok  uint64  // umyc per 1M prompt tokens
	PriceOutPerMTok uint64  // umyc per 1M completion tokens
	Stake           uint64  // bonded umyc
	Jailed          bool    // jailed on the ledger
	Unhealthy       bool    // failed its last health probe or does not serve the model
	CircuitOpen     bool    // its circuit breaker is open
	InFlight        int     // requests the gateway has running on it now
	Capacity        int     // most concurrent requests it takes; 0 = unknown (no limit)
	Samples         int     // completed requests the measurements below come from
	TTFTMs          float64 // moving average of the time to first token
	TTFTP95Ms       float64 // 95th percentile of the time to first token
	TokensPerSec    float64 // moving average of the decode speed
	SuccessRate     float64 // moving average in [0,1] of requests that completed
	Reputation      float64 // in [0,1]: verification pass rate and ledger reputation; 0 = unknown
}

// Limits are the per-request limits a client sets (x-mycel-max-price, x-mycel-max-ttft-ms).
type Limits struct {
	MaxPricePerMTok uint64  // 0 = no limit; both prices of a provider must be at or below it
	MaxTTFTMs       float64 // 0 = no limit; compared with the provider's p95 TTFT
}

// Request is what the router knows of a request before it runs.
type Request struct {
	TokensIn  int // estimated prompt tokens
	TokensOut int // expected completion tokens (max_tokens or a default)
	Limits    Limits
}

// Reason says why a candidate cannot serve a request.
type Reason string

// Reasons a candidate is rejected, in the order they are checked.
const (
	Jailed       Reason = "jailed"
	Unhealthy    Reason = "unhealthy"
	CircuitOpen  Reason = "circuit_open"
	TooExpensive Reason = "too_expensive"
	TooSlow      Reason = "too_slow"
	AtCapacity   Reason = "at_capacity"
)

// Rejection is one candidate that did not qualify and why ("why no match").
type Rejection struct {
	Provider string `json:"provider"`
	Reason   Reason `json:"reason"`
	Detail   string `json:"detail"`
}

// Policy orders qualified candidates, best first. Implementations must be deterministic and
// must not modify the candidates.
type Policy interface {
	// Rank returns the candidates in order of preference for r.
	Rank(cands []Candidate, r Request) []Candidate
}

// Policy names accepted in x-mycel-policy.
const (
	NameBalanced = "balanced"
	NameCheapest = "cheapest"
	NameFastest  = "fastest"
)

// ByName returns the policy called name ("" is balanced).
func ByName(name string) (Policy, error) {
	switch name {
	case "", NameBalanced:
		return Balanced{}, nil
	case NameCheapest:
		return Cheapest{}, nil
	case NameFastest:
		return Fastest{}, nil
	}
	return nil, fmt.Errorf("unknown policy %q: want balanced, cheapest or fastest", name)
}

// Filter splits cands into those that can serve r and the rejections of the rest.
func Filter(cands []Candidate, r Request) (ok []Candidate, rejected []Rejection) {
	for _, c := range cands {
		if reason, detail := check(c, r); reason != "" {
			rejected = append(rejected, Rejection{Provider: c.Provider, Reason: reason, Detail: detail})
			continue
		}
		ok = append(ok, c)
	}
	return ok, rejected
}

func check(c Candidate, r Request) (Reason, string) {
	switch {
	case c.Jailed:
		return Jailed, "jailed on the ledger"
	case c.Unhealthy:
		return Unhealthy, "failed its health check"
	case c.CircuitOpen:
		return CircuitOpen, "circuit breaker open after repeated failures"
	}
	if m := r.Limits.MaxPricePerMTok; m > 0 && (c.PriceInPerMTok > m || c.PriceOutPerMTok > m) {
		return TooExpensive, fmt.Sprintf("price %d/%d umyc per 1M tokens (in/out) exceeds max %d", c.PriceInPerMTok, c.PriceOutPerMTok, m)
	}
	if m := r.Limits.MaxTTFTMs; m > 0 && c.Samples > 0 && c.TTFTP95Ms > m {
		return TooSlow, fmt.Sprintf("p95 time to first token %.0f ms exceeds max %.0f ms", c.TTFTP95Ms, m)
	}
	if c.Capacity > 0 && c.InFlight >= c.Capacity {
		return AtCapacity, fmt.Sprintf("%d of %d request slots in use", c.InFlight, c.Capacity)
	}
	return "", ""
}

// Select filters cands and ranks the rest with p: the first of ranked is the primary, the
// others are retry, hedge and failover targets in order.
func Select(p Policy, cands []Candidate, r Request) (ranked []Candidate, rejected []Rejection) {
	ok, rejected := Filter(cands, r)
	if len(ok) == 0 {
		return nil, rejected
	}
	return p.Rank(ok, r), rejected
}

// ExpectedCost is the cost in umyc (as a float, not rounded) of r on c.
func ExpectedCost(c Candidate, r Request) float64 {
	return (float64(r.TokensIn)*float64(c.PriceInPerMTok) + float64(r.TokensOut)*float64(c.PriceOutPerMTok)) / 1e6
}

// Defaults used for a provider without measurements, so that new providers get tried.
const (
	unknownTTFTMs      = 0   // optimistic: a provider nobody has measured looks fast
	unknownTokensPerS  = 1e6 // and decodes instantly, until it has samples
	minSamples         = 3   // measurements count only from this many samples on
	defaultSuccessRate = 1.0
)

// ExpectedLatencyMs is the expected time in ms to complete r on c: time to first token plus
// decode time, stretched by the load the gateway already has running on it. Providers with
// fewer than 3 samples are assumed fast so that they are explored.
func ExpectedLatencyMs(c Candidate, r Request) float64 {
	ttft, tps := c.TTFTMs, c.TokensPerSec
	if c.Samples < minSamples {
		ttft, tps = unknownTTFTMs, unknownTokensPerS
	}
	if tps <= 0 {
		tps = 1
	}
	lat := ttft + float64(r.TokensOut)/tps*1000
	if c.Capacity > 0 {
		lat *= 1 + float64(c.InFlight)/float64(c.Capacity)
	}
	return lat
}

func success(c Candidate) float64 {
	if c.Samples < minSamples {
		return defaultSuccessRate
	}
	return math.Max(c.SuccessRate, 0.01)
}

// trust is a multiplier in [1, 2] that penalises providers with a poor verification record.
func trust(c Candidate) float64 {
	if c.Reputation <= 0 {
		return 1.1 // unknown: slightly behind proven providers
	}
	return 2 - math.Min(c.Reputation, 1)
}

// Cheapest ranks by expected cost (inflated by failures, which are retried elsewhere), then by
// expected latency.
type Cheapest struct{}

// Rank implements Policy.
func (Cheapest) Rank(cands []Candidate, r Request) []Candidate {
	return rankBy(cands, func(c Candidate) float64 { return ExpectedCost(c, r) / success(c) },
		func(c Candidate) float64 { return ExpectedLatencyMs(c, r) })
}

// Fastest ranks by expected latency divided by success rate, then by cost.
type Fastest struct{}

// Rank implements Policy.
func (Fastest) Rank(cands []Candidate, r Request) []Candidate {
	return rankBy(cands, func(c Candidate) float64 { return ExpectedLatencyMs(c, r) / success(c) },
		func(c Candidate) float64 { return ExpectedCost(c, r) })
}

// Balanced is the default policy. It keeps latency within a factor of the best: candidates
// whose expected latency is at most Slack × the fastest candidate's come first, ranked by
// expected cost divided by the squared success rate (failures cost latency too), times a trust
// factor from reputation and a small preference for stake. The slower rest follow, ranked the
// same way after adding their latency penalty, as retry and failover targets.
type Balanced struct {
	Slack float64 // 0 means 4 (chosen with mycel bench routing)
}

// Rank implements Policy.
func (b Balanced) Rank(cands []Candidate, r Request) []Candidate {
	slack := b.Slack
	if slack <= 0 {
		slack = 4
	}
	minLat := math.Inf(1)
	var maxStake uint64
	for _, c := range cands {
		minLat = math.Min(minLat, ExpectedLatencyMs(c, r)/success(c))
		maxStake = max(maxStake, c.Stake)
	}
	return rankBy(cands, func(c Candidate) float64 {
		lat := ExpectedLatencyMs(c, r) / success(c)
		stake := 1.0
		if maxStake > 0 {
			stake = 1.05 - 0.05*float64(c.Stake)/float64(maxStake)
		}
		sr := success(c)
		score := (ExpectedCost(c, r) + 1e-9) / (sr * sr) * trust(c) * stake
		if lat > slack*minLat {
			// Outside the latency band: after every candidate inside it.
			return math.Inf(1)
		}
		return score
	}, func(c Candidate) float64 { return ExpectedLatencyMs(c, r) / success(c) })
}

func rankBy(cands []Candidate, primary, secondary func(Candidate) float64) []Candidate {
	type scored struct {
		c    Candidate
		a, b float64
	}
	s := make([]scored, len(cands))
	for i, c := range cands {
		s[i] = scored{c, primary(c), secondary(c)}
	}
	slices.SortStableFunc(s, func(x, y scored) int {
		if d := cmp.Compare(x.a, y.a); d != 0 {
			return d
		}
		if d := cmp.Compare(x.b, y.b); d != 0 {
			return d
		}
		return cmp.Compare(x.c.Provider, y.c.Provider)
	})
	out := make([]Candidate, len(s))
	for i := range s {
		out[i] = s[i].c
	}
	return out
}
