package verifier

import (
	"encoding/binary"
	"math"
	"sort"
)

// This file holds the pure statistics of the re-check: tempered reference
// distributions rebuilt from top-K log-probabilities, the randomised
// probability integral transform (PIT), and the tail bounds that turn the
// per-token values into p-values with a known false-positive rate.

// topEntry is one entry of a reference top-K list.
type topEntry struct {
	ID      int32
	Logprob float64
}

// position is what the reference engine says about one output position: the
// log-probability of the token the provider emitted and the reference's
// top-K list at that position (most likely first or in any order).
type position struct {
	ID      int32
	Logprob float64
	Top     []topEntry
}

// tempered describes the reference distribution at one position after the
// request's temperature, rebuilt from its top-K list. Weights are scaled so
// that the largest top-K weight is 1; tail is an upper bound on the total
// weight of the tokens outside the top-K list, so every probability derived
// from it errs on the side of the provider.
type tempered struct {
	w     []float64 // weights of the top-K entries, same order as Top
	wTop  float64   // sum of w
	tail  float64   // upper bound of the weight outside the top-K
	maxLP float64
}

// temper rebuilds the tempered distribution at p for temperature temp > 0
// over a vocabulary of vocab tokens.
func temper(p position, temp float64, vocab int) tempered {
	a := 1 / temp
	t := tempered{w: make([]float64, len(p.Top)), maxLP: math.Inf(-1)}
	for _, e := range p.Top {
		t.maxLP = math.Max(t.maxLP, e.Logprob)
	}
	if len(p.Top) == 0 {
		t.maxLP = p.Logprob
	}
	massTop := 0.0
	minLP := math.Inf(1)
	for i, e := range p.Top {
		t.w[i] = math.Exp(a * (e.Logprob - t.maxLP))
		t.wTop += t.w[i]
		massTop += math.Exp(e.Logprob)
		minLP = math.Min(minLP, e.Logprob)
	}
	mTail := math.Max(0, 1-massTop)
	nTail := float64(vocab - len(p.Top))
	if nTail <= 0 || mTail == 0 {
		return t
	}
	if len(p.Top) == 0 {
		minLP = 0
	}
	// Untempered tail probabilities q_i sum to mTail and each is at most
	// exp(minLP). The tempered tail weight is sum q_i^a / exp(a*maxLP).
	var bound float64
	switch {
	case a == 1:
		bound = mTail * math.Exp(-t.maxLP)
	case a > 1:
		// sum q^a <= max(q)^(a-1) * sum q.
		bound = mTail * math.Exp((a-1)*minLP-a*t.maxLP)
	default:
		// Concave: largest when the tail mass is spread evenly, and every
		// term is at most exp(a*minLP).
		even := math.Pow(nTail, 1-a) * math.Pow(mTail, a)
		capped := nTail * math.Exp(a*minLP)
		bound = math.Min(even, capped) * math.Exp(-a*t.maxLP)
	}
	t.tail = bound
	return t
}

// prob returns an upper bound of the tempered probability of token id
// (outside the top-K: of the whole tail).
func (t tempered) prob(p position, id int32) float64 {
	for i, e := range p.Top {
		if e.ID == id {
			return t.w[i] / t.wTop
		}
	}
	if t.tail == 0 {
		return 0
	}
	return t.tail / (t.wTop + t.tail)
}

// pit returns the randomised probability integral transform of the emitted
// token: tokens are ordered from most to least likely under the tempered
// reference, u = P(more likely tokens) + v * P(tokens as likely as it).
// Under an honest provider sampling from the reference, u is uniform on
// [0,1); using an upper bound of the normaliser (and ignoring top-p, which
// only removes unlikely tokens) makes u stochastically smaller, so tests on
// large u keep their false-positive rate. A token outside the top-K list is
// placed uniformly in the tail's range.
func (t tempered) pit(p position, v float64) float64 {
	z := t.wTop + t.tail
	idx := -1
	for i, e := range p.Top {
		if e.ID == p.ID {
			idx = i
			break
		}
	}
	if idx < 0 {
		lo := t.wTop / z
		return lo + v*(1-lo)
	}
	wx := t.w[idx]
	var above, tie float64
	for _, w := range t.w {
		switch {
		case w > wx:
			above += w
		case w == wx:
			tie += w
		}
	}
	return (above + v*tie) / z
}

// gammaUpperTail returns log P(Gamma(n,1) >= x) for integer n >= 1:
// P = exp(-x) * sum_{k<n} x^k / k!.
func gammaUpperTail(n int, x float64) float64 {
	if n <= 0 {
		return 0
	}
	if x <= 0 {
		return 0
	}
	// log-sum-exp over the terms k*ln(x) - lgamma(k+1).
	lx := math.Log(x)
	terms := make([]float64, n)
	m := math.Inf(-1)
	for k := 0; k < n; k++ {
		lg, _ := math.Lgamma(float64(k + 1))
		terms[k] = float64(k)*lx - lg
		m = math.Max(m, terms[k])
	}
	s := 0.0
	for _, v := range terms {
		s += math.Exp(v - m)
	}
	return math.Min(0, -x+m+math.Log(s))
}

// poissonChernoff returns an upper bound of log P(X >= k) for X a sum of
// (conditionally) independent Bernoulli variables with total mean mu:
// exp(-mu) * (e*mu/k)^k for k > mu, else 0.
func poissonChernoff(k int, mu float64) float64 {
	if float64(k) <= mu || k == 0 {
		return 0
	}
	if mu <= 0 {
		return math.Inf(-1)
	}
	kf := float64(k)
	return -mu + kf*(1+math.Log(mu/kf))
}

// splitmix64 is the SplitMix64 finaliser, used to derive the PIT's
// randomisation reproducibly from a seed and a position.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// uniform returns a value in [0,1) from seed and index i.
func uniform(seed uint64, i int) float64 {
	return float64(splitmix64(seed^splitmix64(uint64(i)))>>11) / (1 << 53)
}

// seedFrom derives a PIT seed from bytes every verifier knows (the receipt's
// request and output hashes), so every verifier re-checking the same
// evidence computes the same statistic.
func seedFrom(b []byte) uint64 {
	var s uint64
	for len(b) >= 8 {
		s = splitmix64(s ^ binary.BigEndian.Uint64(b))
		b = b[8:]
	}
	for _, c := range b {
		s = splitmix64(s ^ uint64(c))
	}
	return s
}

// sortTop orders a top-K list most likely first (lowest id on ties).
func sortTop(top []topEntry) {
	sort.SliceStable(top, func(i, j int) bool {
		if top[i].Logprob != top[j].Logprob {
			return top[i].Logprob > top[j].Logprob
		}
		return top[i].ID < top[j].ID
	})
}
