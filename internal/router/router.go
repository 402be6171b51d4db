// Package router chooses providers for a request. It is pure: policies rank candidates from
// facts passed in (prices, measured latencies, success rates, reputation, stake, load, proven
// capacity) and say why every rejected candidate was rejected. It does no I/O and reads no
// clock; Stats and Breaker, which keep per-provider measurements, take the time as an argument,
// and Shares keeps the traffic each provider was given.
//
// Proven capacity bounds load (see Bounds): once any candidate for a model has a capacity
// proof on the ledger, each candidate's share of the gateway's traffic and of its requests in
// flight is bounded by its proven tokens/s relative to the others' (a provider without proof
// gets a small exploration share). Advertised request slots and declared hardware can only
// lower what a provider gets, never raise it.
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
	// ProvenTPS is the provider's proven capacity on the model: the tokens/s the verifiers'
	// seeded benchmark jobs measured, as recorded on the ledger; 0 = no proof yet.
	ProvenTPS float64
	// Routed is the traffic this gateway recently gave the provider for the model (decayed
	// expected completion tokens, from Shares); the share bound compares it with the others'.
	Routed float64
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

// Filter splits cands into those that can serve r and the rejections of the rest. A candidate
// is at capacity when its advertised request slots are full, or when one more request in
// flight on it would take it over its proven share (Bounds, computed over the candidates that
// pass every other check) of this gateway's requests in flight for the model: with n requests
// in flight in all, a candidate with bound b takes a request only while it has fewer than
// ceil(b·(n+1)) of them. The bounds sum to 1, so that check alone never rejects every
// candidate; and when every candidate with a free slot is over its share, those are served
// rather than none (the bounds steer load; only full slots refuse).
func Filter(cands []Candidate, r Request) (ok []Candidate, rejected []Rejection) {
	reasons := make([]Rejection, len(cands))
	var pass []Candidate
	for i, c := range cands {
		if reason, detail := check(c, r); reason != "" {
			reasons[i] = Rejection{Provider: c.Provider, Reason: reason, Detail: detail}
			continue
		}
		pass = append(pass, c)
	}
	bounds := Bounds(pass)
	inFlight := 0
	for _, c := range pass {
		inFlight += c.InFlight
	}
	var (
		over    []Candidate // free slots, but over their proven share
		overRej []Rejection
	)
	j := 0 // index in pass and bounds
	for i, c := range cands {
		if reasons[i].Reason != "" {
			rejected = append(rejected, reasons[i])
			continue
		}
		b := 0.0
		if bounds != nil {
			b = bounds[j]
		}
		j++
		switch {
		case c.Capacity > 0 && c.InFlight >= c.Capacity:
			rejected = append(rejected, Rejection{Provider: c.Provider, Reason: AtCapacity,
				Detail: fmt.Sprintf("%d of %d request slots in use", c.InFlight, c.Capacity)})
		case bounds != nil && c.InFlight >= provenSlots(b, inFlight):
			over = append(over, c)
			overRej = append(overRej, Rejection{Provider: c.Provider, Reason: AtCapacity,
				Detail: fmt.Sprintf("holds %d of the %d requests in flight; its share is at most %.1f%% (%s)", c.InFlight, inFlight, 100*b, provenDetail(c))})
		default:
			ok = append(ok, c)
		}
	}
	if len(ok) == 0 {
		// Every candidate with a free slot is over its proven share: serve rather than
		// refuse (the bounds steer load, they are not a reason for a 503).
		return over, rejected
	}
	return ok, append(rejected, overRej...)
}

// provenSlots is how many of the requests in flight (inFlight now, plus the one being placed)
// a candidate with share bound b may hold: ceil(b·(inFlight+1)), at least 1.
func provenSlots(b float64, inFlight int) int {
	return max(1, int(math.Ceil(b*float64(inFlight+1)-1e-9)))
}

func provenDetail(c Candidate) string {
	if c.ProvenTPS <= 0 {
		return "no capacity proof yet: exploration share"
	}
	return fmt.Sprintf("proven %.1f tokens/s", c.ProvenTPS)
}

// Exploration shares of providers without a capacity proof, while other candidates have one.
const (
	ExploreShare = 0.05 // the most one unproven candidate gets
	ExploreTotal = 0.20 // the most all unproven candidates together get
)

// Bounds returns, for each of cands, the largest share of the model's traffic it may be given,
// or nil when no candidate has a capacity proof (then nothing is bounded: there is nothing to
// compare with). With u candidates without proof, each gets e = min(ExploreShare,
// ExploreTotal/u) so that it can be measured and proven; the proven ones share the rest, 1 −
// u·e, in proportion to their proven tokens/s. The bounds sum to 1. Nothing a provider declares
// (request slots, hardware) enters them.
func Bounds(cands []Candidate) []float64 {
	var total float64
	unproven := 0
	for _, c := range cands {
		if c.ProvenTPS > 0 {
			total += c.ProvenTPS
		} else {
			unproven++
		}
	}
	if total <= 0 {
		return nil
	}
	e := 0.0
	if unproven > 0 {
		e = min(ExploreShare, ExploreTotal/float64(unproven))
	}
	out := make([]float64, len(cands))
	for i, c := range cands {
		if c.ProvenTPS > 0 {
			out[i] = (1 - float64(unproven)*e) * c.ProvenTPS / total
		} else {
			out[i] = e
		}
	}
	return out
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
// factor from reputation and a small preference for stake. The slower rest follow, ranked by
// latency, as retry and failover targets.
//
// Proven capacity bounds the order within the band (see Bounds, computed over the candidates in
// the band): a candidate that this request would take over its share bound of the band's recent
// traffic (Routed + this request's tokens, over the band's total plus them) goes after every
// candidate in the band still within its bound, and among those over their bound the least
// served relative to its bound (Routed share / bound) comes first. Over a run of requests each
// candidate's share so tends to its bound, and a candidate is given a request that takes it over
// its bound only when the request would take every other candidate in the band over its own
// too. Cost, reputation and stake decide who is served first within the bounds. A provider
// measured outside the band is not a first choice, whatever its proof, and the band's bounds
// are shared without it, as without a filtered-out candidate. Without any proof in the band
// there are no bounds and the order is the one above.
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
	type scored struct {
		c                Candidate
		tier             int // 0 in the latency band within its bound, 1 in the band over it, 2 outside the band
		fill, score, lat float64
	}
	s := make([]scored, len(cands))
	var band []Candidate // the candidates in the latency band, whose bounds are compared
	var routed float64
	for i, c := range cands {
		lat := ExpectedLatencyMs(c, r) / success(c)
		stake := 1.0
		if maxStake > 0 {
			stake = 1.05 - 0.05*float64(c.Stake)/float64(maxStake)
		}
		sr := success(c)
		s[i] = scored{c: c, lat: lat, score: (ExpectedCost(c, r) + 1e-9) / (sr * sr) * trust(c) * stake}
		if lat > slack*minLat {
			// Outside the latency band: after every candidate inside it, by latency.
			s[i].tier, s[i].score = 2, math.Inf(1)
			continue
		}
		band = append(band, c)
		routed += c.Routed
	}
	if bounds := Bounds(band); bounds != nil {
		tokens := float64(max(r.TokensOut, 1))
		k := 0
		for i := range s {
			if s[i].tier == 2 {
				continue
			}
			c, b := s[i].c, bounds[k]
			k++
			if (c.Routed+tokens)/(routed+tokens) > b+1e-12 {
				s[i].tier = 1
				if routed > 0 {
					s[i].fill = c.Routed / routed / b
				}
			}
		}
	}
	slices.SortStableFunc(s, func(x, y scored) int {
		return cmp.Or(cmp.Compare(x.tier, y.tier), cmp.Compare(x.fill, y.fill), cmp.Compare(x.score, y.score),
			cmp.Compare(x.lat, y.lat), cmp.Compare(x.c.Provider, y.c.Provider))
	})
	out := make([]Candidate, len(s))
	for i := range s {
		out[i] = s[i].c
	}
	return out
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
