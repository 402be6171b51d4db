package gateway

import (
	"sort"
	"sync"
	"time"

	"github.com/mycel-network/mycel/internal/explorer"
	"github.com/mycel-network/mycel/internal/router"
)

// Histogram bounds of the traffic the explorer charts.
var (
	ttftBoundsMs  = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000}
	tokensPerSecB = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000}
)

// traffic accumulates what Gateway.Traffic reports.
type traffic struct {
	mu                         sync.Mutex
	requests, errors           uint64
	failovers, hedges          uint64
	tokensIn, tokensOut, spend uint64
	ttft                       explorer.Histogram
	providers                  map[string]*explorer.ProviderTraffic
}

func newTraffic() *traffic {
	return &traffic{ttft: newHistogram(ttftBoundsMs), providers: map[string]*explorer.ProviderTraffic{}}
}

func newHistogram(bounds []float64) explorer.Histogram {
	return explorer.Histogram{Bounds: bounds, Counts: make([]uint64, len(bounds)+1)}
}

func observe(h *explorer.Histogram, v float64) {
	i := sort.SearchFloat64s(h.Bounds, v) // the first bound ≥ v; len(Bounds) above them all
	h.Counts[i]++
}

func (t *traffic) provider(addr string) *explorer.ProviderTraffic {
	p := t.providers[addr]
	if p == nil {
		p = &explorer.ProviderTraffic{Address: addr, TTFTMs: newHistogram(ttftBoundsMs), TokensPerSec: newHistogram(tokensPerSecB)}
		t.providers[addr] = p
	}
	return p
}

// request counts one API generation request answered with status.
func (t *traffic) request(status int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requests++
	if status >= 400 {
		t.errors++
	}
}

// firstToken records the time to the first token the client received.
func (t *traffic) firstToken(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	observe(&t.ttft, float64(d)/float64(time.Millisecond))
}

// attempt records one request to a provider that ended with o: its TTFT and decode speed
// when it streamed tokens.
func (t *traffic) attempt(addr string, o router.Outcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.provider(addr)
	p.Requests++
	if !o.OK {
		p.Errors++
	}
	p.TokensOut += uint64(max(o.TokensOut, 0))
	if o.TTFT > 0 {
		observe(&p.TTFTMs, float64(o.TTFT)/float64(time.Millisecond))
	}
	if o.TokensOut > 1 && o.Decode > 0 {
		observe(&p.TokensPerSec, float64(o.TokensOut-1)/o.Decode.Seconds())
	}
}

// providerError counts a failure found after the attempt was recorded (a rejected receipt).
func (t *traffic) providerError(addr string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.provider(addr).Errors++
}

func (t *traffic) add(failovers, hedges, tokensIn, tokensOut, spend uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failovers += failovers
	t.hedges += hedges
	t.tokensIn += tokensIn
	t.tokensOut += tokensOut
	t.spend += spend
}

func cloneHistogram(h explorer.Histogram) explorer.Histogram {
	return explorer.Histogram{Bounds: h.Bounds, Counts: append([]uint64(nil), h.Counts...)}
}

// Traffic implements explorer.Traffic: the gateway's totals since it started (generation
// requests and their errors, failovers, hedges, tokens, spend, the client's TTFT) and per
// provider the attempts sent to it, their failures, the tokens it delivered, and the TTFT and
// decode speed (tokens/s after the first) of its streamed answers. Every active provider of
// the gateway's directory is listed (with zeros until the gateway sends it a request), sorted
// by address.
func (g *Gateway) Traffic() explorer.TrafficSnapshot {
	known, _, _ := g.dir.snapshot()
	t := g.traffic
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range known {
		if p.Active {
			t.provider(p.Address)
		}
	}
	s := explorer.TrafficSnapshot{Requests: t.requests, Errors: t.errors, Failovers: t.failovers, Hedges: t.hedges,
		TokensIn: t.tokensIn, TokensOut: t.tokensOut, SpendUmyc: t.spend, TTFTMs: cloneHistogram(t.ttft),
		Providers: make([]explorer.ProviderTraffic, 0, len(t.providers))}
	for _, p := range t.providers {
		c := *p
		c.TTFTMs, c.TokensPerSec = cloneHistogram(p.TTFTMs), cloneHistogram(p.TokensPerSec)
		s.Providers = append(s.Providers, c)
	}
	sort.Slice(s.Providers, func(i, j int) bool { return s.Providers[i].Address < s.Providers[j].Address })
	return s
}

var _ explorer.Traffic = (*Gateway)(nil)

// done records the end of an attempt on a provider for routing and for Traffic.
func (g *Gateway) done(provider string, o router.Outcome) {
	g.stats.Done(provider, o, g.now())
	g.traffic.attempt(provider, o)
}
