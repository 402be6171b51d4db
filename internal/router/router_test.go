package router

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func measured(name string, in, out uint64, ttft, tps float64) Candidate {
	return Candidate{Provider: name, PriceInPerMTok: in, PriceOutPerMTok: out, Samples: 10,
		TTFTMs: ttft, TTFTP95Ms: ttft * 2, TokensPerSec: tps, SuccessRate: 1, Reputation: 1, Stake: 100}
}

func names(cs []Candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Provider)
	}
	return out
}

func TestFilter(t *testing.T) {
	base := measured("p", 100, 200, 50, 100)
	with := func(f func(*Candidate)) Candidate { c := base; f(&c); return c }
	tests := []struct {
		name   string
		c      Candidate
		limits Limits
		want   Reason
	}{
		{"qualifies", base, Limits{}, ""},
		{"jailed", with(func(c *Candidate) { c.Jailed = true }), Limits{}, Jailed},
		{"jailed wins over unhealthy", with(func(c *Candidate) { c.Jailed, c.Unhealthy = true, true }), Limits{}, Jailed},
		{"unhealthy", with(func(c *Candidate) { c.Unhealthy = true }), Limits{}, Unhealthy},
		{"circuit open", with(func(c *Candidate) { c.CircuitOpen = true }), Limits{}, CircuitOpen},
		{"out price over max", base, Limits{MaxPricePerMTok: 150}, TooExpensive},
		{"in price over max", with(func(c *Candidate) { c.PriceInPerMTok = 300 }), Limits{MaxPricePerMTok: 250}, TooExpensive},
		{"price at max", base, Limits{MaxPricePerMTok: 200}, ""},
		{"p95 over max ttft", base, Limits{MaxTTFTMs: 99}, TooSlow},
		{"p95 at max ttft", base, Limits{MaxTTFTMs: 100}, ""},
		{"unmeasured is not too slow", with(func(c *Candidate) { c.Samples = 0 }), Limits{MaxTTFTMs: 1}, ""},
		{"at capacity", with(func(c *Candidate) { c.Capacity, c.InFlight = 2, 2 }), Limits{}, AtCapacity},
		{"below capacity", with(func(c *Candidate) { c.Capacity, c.InFlight = 2, 1 }), Limits{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, rej := Filter([]Candidate{tt.c}, Request{TokensIn: 10, TokensOut: 10, Limits: tt.limits})
			var got Reason
			if len(rej) == 1 {
				got = rej[0].Reason
				if rej[0].Detail == "" || rej[0].Provider != "p" {
					t.Errorf("rejection %+v: want provider p and a detail", rej[0])
				}
			}
			if got != tt.want {
				t.Errorf("reason = %q, want %q", got, tt.want)
			}
			if (len(ok) == 1) != (tt.want == "") {
				t.Errorf("qualified = %d, want qualified=%v", len(ok), tt.want == "")
			}
		})
	}
}

func TestPolicies(t *testing.T) {
	cheapSlow := measured("cheap-slow", 10, 20, 900, 10)
	midMid := measured("mid", 40, 60, 100, 60)
	dearFast := measured("dear-fast", 400, 800, 20, 200)
	flaky := measured("flaky-cheap", 5, 10, 50, 100)
	flaky.SuccessRate = 0.3
	fresh := Candidate{Provider: "fresh", PriceInPerMTok: 50, PriceOutPerMTok: 70}
	untrusted := measured("untrusted", 38, 58, 100, 60)
	untrusted.Reputation = 0.2
	req := Request{TokensIn: 200, TokensOut: 200}
	tests := []struct {
		name   string
		policy string
		cands  []Candidate
		want   []string
	}{
		{"cheapest", NameCheapest, []Candidate{dearFast, midMid, cheapSlow}, []string{"cheap-slow", "mid", "dear-fast"}},
		{"fastest", NameFastest, []Candidate{cheapSlow, midMid, dearFast}, []string{"dear-fast", "mid", "cheap-slow"}},
		{"balanced: cheapest within 4x the fastest, slow ones last", NameBalanced, []Candidate{cheapSlow, midMid, dearFast}, []string{"mid", "dear-fast", "cheap-slow"}},
		{"balanced: a wider band admits the cheap one", NameBalanced + "-wide", []Candidate{cheapSlow, midMid, dearFast}, []string{"cheap-slow", "mid", "dear-fast"}},
		{"cheapest discounts failures", NameCheapest, []Candidate{flaky, cheapSlow}, []string{"cheap-slow", "flaky-cheap"}},
		{"balanced penalises failures", NameBalanced, []Candidate{flaky, midMid}, []string{"mid", "flaky-cheap"}},
		{"balanced prefers verified", NameBalanced, []Candidate{untrusted, midMid}, []string{"mid", "untrusted"}},
		{"fastest explores unmeasured", NameFastest, []Candidate{dearFast, fresh}, []string{"fresh", "dear-fast"}},
		{"ties broken by address", NameCheapest, []Candidate{measured("b", 1, 1, 1, 1), measured("a", 1, 1, 1, 1)}, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Policy = Balanced{Slack: 25}
			if tt.policy != NameBalanced+"-wide" {
				var err error
				if p, err = ByName(tt.policy); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tt.want, names(p.Rank(tt.cands, req))); diff != "" {
				t.Errorf("rank (-want +got):\n%s", diff)
			}
		})
	}
}

func TestByNameUnknown(t *testing.T) {
	if _, err := ByName("random"); err == nil {
		t.Error("ByName(random) = nil error, want one")
	}
}

func TestLoadSpreads(t *testing.T) {
	a := measured("a", 10, 10, 100, 50)
	b := measured("b", 10, 10, 100, 50)
	a.Capacity, b.Capacity = 4, 4
	a.InFlight = 3
	got := names(Balanced{}.Rank([]Candidate{a, b}, Request{TokensIn: 10, TokensOut: 100}))
	if diff := cmp.Diff([]string{"b", "a"}, got); diff != "" {
		t.Errorf("rank (-want +got):\n%s", diff)
	}
}

// TestCheapestMatchesNaive checks Cheapest against a naive minimum over random fleets.
func TestCheapestMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 500; i++ {
		n := 1 + rng.IntN(12)
		cands := make([]Candidate, n)
		for j := range cands {
			cands[j] = measured(string(rune('a'+j)), rng.Uint64N(1000), rng.Uint64N(1000), rng.Float64()*500, 1+rng.Float64()*100)
		}
		req := Request{TokensIn: rng.IntN(2000), TokensOut: 1 + rng.IntN(500)}
		got := Cheapest{}.Rank(cands, req)
		best := cands[0]
		for _, c := range cands[1:] {
			if ExpectedCost(c, req) < ExpectedCost(best, req) {
				best = c
			}
		}
		if ExpectedCost(got[0], req) != ExpectedCost(best, req) {
			t.Fatalf("fleet %d: cheapest picked %s (cost %f), naive minimum %s (cost %f)", i, got[0].Provider, ExpectedCost(got[0], req), best.Provider, ExpectedCost(best, req))
		}
		if len(got) != n {
			t.Fatalf("fleet %d: rank returned %d candidates, want %d", i, len(got), n)
		}
	}
}

func TestSelectNoMatch(t *testing.T) {
	a := measured("a", 10, 10, 100, 50)
	a.Jailed = true
	b := measured("b", 1000, 1000, 100, 50)
	ranked, rej := Select(Balanced{}, []Candidate{a, b}, Request{Limits: Limits{MaxPricePerMTok: 500}})
	if len(ranked) != 0 {
		t.Errorf("ranked = %v, want none", names(ranked))
	}
	var got []Reason
	for _, r := range rej {
		got = append(got, r.Reason)
	}
	if diff := cmp.Diff([]Reason{Jailed, TooExpensive}, got); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
}

func TestStatsBreaker(t *testing.T) {
	s := NewStats(StatsConfig{FailureThreshold: 3, OpenFor: time.Second})
	t0 := time.Unix(1000, 0)
	fail := Outcome{OK: false}
	for i := 0; i < 3; i++ {
		if !s.Allow("p", t0) {
			t.Fatalf("breaker open after %d failures, want closed", i)
		}
		s.Start("p")
		s.Done("p", fail, t0)
	}
	if s.Allow("p", t0.Add(500*time.Millisecond)) {
		t.Fatal("breaker let a request through while open")
	}
	c := Candidate{Provider: "p"}
	s.Fill(&c, t0)
	if !c.CircuitOpen {
		t.Error("Fill: CircuitOpen = false while open")
	}
	later := t0.Add(2 * time.Second)
	if !s.Allow("p", later) {
		t.Fatal("breaker refused the half-open probe")
	}
	if s.Allow("p", later) {
		t.Fatal("breaker let a second request through while half-open")
	}
	s.Start("p")
	s.Done("p", fail, later)
	if s.Allow("p", later.Add(500*time.Millisecond)) {
		t.Fatal("breaker closed after a failed probe")
	}
	evenLater := later.Add(2 * time.Second)
	if !s.Allow("p", evenLater) {
		t.Fatal("breaker refused the second probe")
	}
	s.Start("p")
	s.Done("p", Outcome{OK: true, TTFT: time.Millisecond}, evenLater)
	for i := 0; i < 3; i++ {
		if !s.Allow("p", evenLater) {
			t.Fatal("breaker open after a successful probe")
		}
	}
}

func TestStatsMeasurements(t *testing.T) {
	s := NewStats(StatsConfig{Window: 20})
	now := time.Unix(0, 0)
	for i := 1; i <= 40; i++ { // the window keeps 21..40
		s.Start("p")
		s.Done("p", Outcome{OK: true, TTFT: time.Duration(i) * time.Millisecond, TokensOut: 11, Decode: 100 * time.Millisecond}, now)
	}
	if got, want := s.P95TTFT("p"), 39*time.Millisecond; got != want {
		t.Errorf("P95TTFT = %v, want %v", got, want)
	}
	c := Candidate{Provider: "p"}
	s.Fill(&c, now)
	if c.Samples != 40 || c.InFlight != 0 || c.SuccessRate != 1 || c.TokensPerSec != 100 {
		t.Errorf("Fill = %+v, want 40 samples, 0 in flight, success 1, 100 tokens/s", c)
	}
	if s.P95TTFT("unknown") != 0 {
		t.Error("P95TTFT of an unknown provider is not 0")
	}
}

func TestObserveTTFT(t *testing.T) {
	s := NewStats(StatsConfig{})
	for i := 0; i < 19; i++ {
		s.Start("p")
		s.Done("p", Outcome{OK: true, TTFT: 10 * time.Millisecond}, time.Unix(0, 0))
	}
	s.ObserveTTFT("p", 500*time.Millisecond)
	if got := s.P95TTFT("p"); got != 10*time.Millisecond {
		t.Errorf("P95TTFT = %v, want 10 ms with one late sample of 20", got)
	}
	s.ObserveTTFT("p", 500*time.Millisecond)
	if got := s.P95TTFT("p"); got != 500*time.Millisecond {
		t.Errorf("P95TTFT = %v, want 500 ms with two late samples of 21", got)
	}
	c := Candidate{Provider: "p"}
	s.Fill(&c, time.Unix(0, 0))
	if c.InFlight != 0 || c.Samples != 21 {
		t.Errorf("Fill = %+v, want 21 samples and nothing in flight", c)
	}
}
