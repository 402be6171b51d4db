package router

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func proven(name string, tps float64, slots int) Candidate {
	c := measured(name, 10, 10, 100, 50)
	c.ProvenTPS, c.Capacity = tps, slots
	return c
}

func TestBounds(t *testing.T) {
	unproven := func(name string, slots int) Candidate { return proven(name, 0, slots) }
	for _, tt := range []struct {
		name  string
		cands []Candidate
		want  []float64
	}{
		{"no proof: no bounds", []Candidate{unproven("a", 4), unproven("b", 40)}, nil},
		{"3:1", []Candidate{proven("a", 30, 4), proven("b", 10, 4)}, []float64{0.75, 0.25}},
		{"slots do not count", []Candidate{proven("a", 30, 4), proven("b", 10, 400)}, []float64{0.75, 0.25}},
		{"one unproven explores", []Candidate{proven("a", 30, 4), proven("b", 10, 4), unproven("new", 100)},
			[]float64{0.95 * 0.75, 0.95 * 0.25, ExploreShare}},
		{"many unproven share the exploration total", []Candidate{proven("a", 1, 1), unproven("n1", 1), unproven("n2", 1), unproven("n3", 1), unproven("n4", 1), unproven("n5", 1)},
			[]float64{1 - ExploreTotal, ExploreTotal / 5, ExploreTotal / 5, ExploreTotal / 5, ExploreTotal / 5, ExploreTotal / 5}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := Bounds(tt.cands)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateApprox(0, 1e-12)); diff != "" {
				t.Errorf("Bounds (-want +got):\n%s", diff)
			}
			if got != nil {
				var sum float64
				for _, b := range got {
					sum += b
				}
				if math.Abs(sum-1) > 1e-12 {
					t.Errorf("bounds sum to %v, want 1", sum)
				}
			}
		})
	}
}

// simulate routes n requests of 100 completion tokens with p over cands the way the gateway
// does (Stats-free: measurements fixed), keeping at most conc requests in flight (the oldest
// finishes when a new one arrives at the limit; conc = 1 is one request after another). It
// returns the requests started per provider, the requests no candidate could take, and the
// largest in-flight count each provider reached.
func simulate(p Policy, cands []Candidate, n, conc int) (started map[string]int, refused int, peak map[string]int) {
	shares := NewShares(0)
	inFlight := map[string]int{}
	started, peak = map[string]int{}, map[string]int{}
	var fifo []string
	for range n {
		if len(fifo) == conc {
			inFlight[fifo[0]]--
			fifo = fifo[1:]
		}
		cs := make([]Candidate, len(cands))
		for i, c := range cands {
			c.InFlight = inFlight[c.Provider]
			shares.Fill("m", &c)
			cs[i] = c
		}
		r := Request{TokensIn: 100, TokensOut: 100}
		ranked, _ := Select(p, cs, r)
		if len(ranked) == 0 {
			refused++
			continue
		}
		first := ranked[0].Provider
		shares.Add("m", first, r.TokensOut)
		started[first]++
		inFlight[first]++
		peak[first] = max(peak[first], inFlight[first])
		fifo = append(fifo, first)
	}
	return started, refused, peak
}

// TestBalancedFollowsProvenCapacity: two providers equal in price, speed and advertised slots,
// proven 3:1. Ignoring capacity, every request would go to "a" (ties go to the smaller address),
// so the 3:1 split cannot come from anything else.
func TestBalancedFollowsProvenCapacity(t *testing.T) {
	const n = 400
	for _, conc := range []int{1, 8} {
		got, refused, _ := simulate(Balanced{}, []Candidate{proven("a", 10, 8), proven("b", 30, 8)}, n, conc)
		if refused != 0 {
			t.Errorf("concurrency %d: %d requests refused, want 0", conc, refused)
		}
		if share := float64(got["b"]) / n; share < 0.72 || share > 0.78 {
			t.Errorf("concurrency %d: b (proven 3×) got %d of %d requests (%.3f), want 0.75 ± 0.03", conc, got["b"], n, share)
		}
	}
}

// TestManySlotsLittleProof: a provider advertising 10× the slots of the other but with a third
// of its proven capacity gets no more than its proven share (1/4), whether requests come one
// after another or 40 at a time (then up to one request over, from rounding to whole requests),
// under every policy, though it is the cheaper one.
func TestManySlotsLittleProof(t *testing.T) {
	const n, conc = 400, 40
	weak := proven("a", 10, 400)
	weak.PriceInPerMTok, weak.PriceOutPerMTok = 5, 5
	strong := proven("b", 30, 40)
	for _, name := range []string{NameBalanced, NameCheapest, NameFastest} {
		p, err := ByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if name == NameBalanced {
			got, _, _ := simulate(p, []Candidate{weak, strong}, n, 1)
			if share := float64(got["a"]) / n; share > 0.25+1.0/n {
				t.Errorf("%s, one at a time: a got %d of %d requests (%.3f), want at most its proven share 0.25", name, got["a"], n, share)
			}
		}
		got, refused, peak := simulate(p, []Candidate{weak, strong}, n, conc)
		if refused != 0 {
			t.Errorf("%s: %d requests refused, want 0", name, refused)
		}
		if limit := int(math.Ceil(0.25 * conc)); peak["a"] > limit {
			t.Errorf("%s, %d in flight: a held up to %d, want at most ceil(0.25·%d) = %d", name, conc, peak["a"], conc, limit)
		}
		if share := float64(got["a"]) / n; share > 0.25+1.0/conc {
			t.Errorf("%s, %d in flight: a got %d of %d requests (%.3f), want at most 0.25 + 1/%d", name, conc, got["a"], n, share, conc)
		}
	}
}

// TestUnprovenExplores: a new provider without proof, the cheapest of three, gets its
// exploration share (so it can be audited and proven) and no more: within half a percentage
// point, since the bound holds over Shares' decaying window, not over these 1,000 requests.
func TestUnprovenExplores(t *testing.T) {
	const n = 1000
	fresh := proven("new", 0, 100)
	fresh.PriceInPerMTok, fresh.PriceOutPerMTok = 1, 1
	got, _, _ := simulate(Balanced{}, []Candidate{proven("a", 20, 8), proven("b", 20, 8), fresh}, n, 1)
	if share := float64(got["new"]) / n; share < ExploreShare-0.005 || share > ExploreShare+0.005 {
		t.Errorf("unproven got %d of %d requests (%.3f), want its exploration share %.2f", got["new"], n, share, ExploreShare)
	}
	if d := got["a"] - got["b"]; d < -n/50 || d > n/50 {
		t.Errorf("equally proven a and b got %d and %d requests, want about equal", got["a"], got["b"])
	}
}

// TestBandBeforeProof: a provider with a large proof but measured far slower than the others
// (outside the latency band) is not made a first choice by its proof; the two in the band split
// the traffic by their own proofs, 1:1.
func TestBandBeforeProof(t *testing.T) {
	const n = 200
	slow := proven("c", 1000, 8)
	slow.TTFTMs, slow.TokensPerSec = 5000, 2
	got, _, _ := simulate(Balanced{}, []Candidate{proven("a", 10, 8), proven("b", 10, 8), slow}, n, 1)
	if got["c"] != 0 || got["a"] != n/2 || got["b"] != n/2 {
		t.Errorf("requests a, b, c = %d, %d, %d; want %d, %d, 0", got["a"], got["b"], got["c"], n/2, n/2)
	}
}

// TestFilterProvenShare: the admission bound rejects a candidate that already holds its
// proven share of the requests in flight, saying so, and never every candidate.
func TestFilterProvenShare(t *testing.T) {
	a, b := proven("a", 10, 100), proven("b", 30, 100)
	a.InFlight, b.InFlight = 1, 2 // a may hold ceil(0.25·4) = 1
	ok, rej := Filter([]Candidate{a, b}, Request{})
	if diff := cmp.Diff([]string{"b"}, names(ok)); diff != "" {
		t.Errorf("qualified (-want +got):\n%s", diff)
	}
	if len(rej) != 1 || rej[0].Provider != "a" || rej[0].Reason != AtCapacity || rej[0].Detail == "" {
		t.Errorf("rejections = %+v, want a at capacity with a detail", rej)
	}
	a.InFlight, b.InFlight = 0, 3 // b would hold 4 of 4 > ceil(0.75·4)
	if ok, _ := Filter([]Candidate{a, b}, Request{}); len(ok) != 1 || ok[0].Provider != "a" {
		t.Errorf("b holding all 3 in flight: qualified %v, want a only", names(ok))
	}
	a.InFlight, b.InFlight = 1, 6 // a may hold ceil(0.25·8) = 2, b ceil(0.75·8) = 6
	if ok, _ := Filter([]Candidate{a, b}, Request{}); len(ok) != 1 || ok[0].Provider != "a" {
		t.Errorf("a 1, b 6 in flight: qualified %v, want a only", names(ok))
	}
	// b's slots are full and a is over its share: a serves the overflow rather than a 503.
	a, b = proven("a", 10, 100), proven("b", 30, 4)
	a.InFlight, b.InFlight = 2, 4 // a may hold ceil(0.25·7) = 2
	ok, rej = Filter([]Candidate{a, b}, Request{})
	if len(ok) != 1 || ok[0].Provider != "a" || len(rej) != 1 || rej[0].Provider != "b" {
		t.Errorf("b full, a over its share: qualified %v, rejected %+v; want a, with b rejected", names(ok), rej)
	}
	a.InFlight = 100 // a's own slots full too: nobody
	if ok, _ := Filter([]Candidate{a, b}, Request{}); len(ok) != 0 {
		t.Errorf("every slot full: qualified %v, want none", names(ok))
	}
	a.ProvenTPS, b.ProvenTPS = 0, 0 // no proof anywhere: advertised slots alone limit
	a.InFlight, b.InFlight = 50, 0
	if ok, _ := Filter([]Candidate{a, b}, Request{}); len(ok) != 2 {
		t.Errorf("without proofs: qualified %v, want both", names(ok))
	}
}

func TestShares(t *testing.T) {
	s := NewShares(2) // each request halves the old counts
	s.Add("m", "a", 100)
	s.Add("m", "b", 0) // counted as 1 token
	s.Add("x", "a", 7)
	c := Candidate{Provider: "a"}
	s.Fill("m", &c)
	if c.Routed != 50 {
		t.Errorf("a's routed tokens on m = %v, want 50 (100 halved once)", c.Routed)
	}
	c.Provider = "b"
	s.Fill("m", &c)
	if c.Routed != 1 {
		t.Errorf("b's routed tokens on m = %v, want 1", c.Routed)
	}
	s.Fill("other", &c)
	if c.Routed != 0 {
		t.Errorf("routed on an unseen model = %v, want 0", c.Routed)
	}
}
