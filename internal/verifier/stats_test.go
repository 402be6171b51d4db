package verifier

import (
	"math"
	"sort"
	"testing"
)

// naiveGammaTail sums the Poisson series term by term in float64.
func naiveGammaTail(n int, x float64) float64 {
	s, term := 0.0, 1.0
	for k := 0; k < n; k++ {
		if k > 0 {
			term *= x / float64(k)
		}
		s += term
	}
	return math.Exp(-x) * s
}

func TestGammaUpperTail(t *testing.T) {
	tests := []struct {
		n    int
		x    float64
		want float64 // P, not log
	}{
		{1, 0, 1},
		{1, 1, math.Exp(-1)},
		{1, 5, math.Exp(-5)},
		{2, 1, 2 * math.Exp(-1)},
		{3, 2, 5 * math.Exp(-2)},
	}
	for _, tt := range tests {
		if got := math.Exp(gammaUpperTail(tt.n, tt.x)); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("gammaUpperTail(%d, %v) = %v, want %v", tt.n, tt.x, got, tt.want)
		}
	}
	// Against the naive series where it does not underflow.
	for n := 1; n < 60; n += 7 {
		for _, x := range []float64{0.5, 3, 10, 40, 90} {
			want := naiveGammaTail(n, x)
			got := math.Exp(gammaUpperTail(n, x))
			if math.Abs(got-want) > 1e-9*math.Max(want, 1e-300)+1e-300 {
				t.Errorf("gammaUpperTail(%d, %v) = %v, naive %v", n, x, got, want)
			}
		}
	}
	// Deep tails stay finite in log space.
	if lp := gammaUpperTail(10, 2000); !(lp < -1900 && lp > -2000) {
		t.Errorf("gammaUpperTail(10, 2000) = %v, want about -1960", lp)
	}
}

func TestPoissonChernoff(t *testing.T) {
	tests := []struct {
		k    int
		mu   float64
		want float64
	}{
		{0, 1, 0},
		{1, 2, 0},
		{3, 1, -1 + 3*(1+math.Log(1.0/3))},
		{2, 0, math.Inf(-1)},
	}
	for _, tt := range tests {
		if got := poissonChernoff(tt.k, tt.mu); got != tt.want && math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("poissonChernoff(%d, %v) = %v, want %v", tt.k, tt.mu, got, tt.want)
		}
	}
	// It bounds the exact Poisson tail.
	for _, mu := range []float64{0.1, 1, 5} {
		for k := int(mu) + 1; k < 20; k++ {
			exact := 0.0 // P(Poisson(mu) >= k), summed directly
			lg, _ := math.Lgamma(float64(k + 1))
			term := math.Exp(-mu + float64(k)*math.Log(mu) - lg)
			for j := k; j < k+200; j++ {
				exact += term
				term *= mu / float64(j+1)
			}
			if b := math.Exp(poissonChernoff(k, mu)); b < exact*(1-1e-9) {
				t.Errorf("bound %v below exact tail %v (k=%d mu=%v)", b, exact, k, mu)
			}
		}
	}
}

// distribution is a full vocabulary distribution for the PIT property test.
func distribution(seed uint64, vocab int) []float64 {
	lp := make([]float64, vocab)
	m := math.Inf(-1)
	for i := range lp {
		// Heavy-tailed logits.
		lp[i] = 6 * math.Pow(uniform(seed, i), 3)
		m = math.Max(m, lp[i])
	}
	s := 0.0
	for _, v := range lp {
		s += math.Exp(v - m)
	}
	for i := range lp {
		lp[i] = lp[i] - m - math.Log(s)
	}
	return lp
}

// positionFrom builds a top-K position from a full distribution.
func positionFrom(lp []float64, id int32, k int) position {
	idx := make([]int, len(lp))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return lp[idx[a]] > lp[idx[b]] })
	p := position{ID: id, Logprob: lp[id]}
	for _, i := range idx[:k] {
		p.Top = append(p.Top, topEntry{ID: int32(i), Logprob: lp[i]})
	}
	return p
}

// TestPITUniformUnderHonesty samples tokens from the tempered full
// distribution and checks that the PIT from a top-K view is no larger than
// uniform in distribution (conservative) and close to uniform when the
// top-K covers the vocabulary.
func TestPITUniformUnderHonesty(t *testing.T) {
	const vocab, trials = 200, 4000
	for _, tc := range []struct {
		temp float64
		k    int
	}{{1, 200}, {1, 20}, {0.5, 20}, {1.5, 20}, {0.7, 200}} {
		counts := make([]int, 10)
		for i := 0; i < trials; i++ {
			lp := distribution(uint64(i)*7919+uint64(tc.k), vocab)
			// Sample from the tempered distribution by inversion.
			w := make([]float64, vocab)
			z := 0.0
			for j, v := range lp {
				w[j] = math.Exp(v / tc.temp)
				z += w[j]
			}
			r := uniform(99, i) * z
			id := vocab - 1
			for j := range w {
				if r < w[j] {
					id = j
					break
				}
				r -= w[j]
			}
			p := positionFrom(lp, int32(id), tc.k)
			u := temper(p, tc.temp, vocab).pit(p, uniform(12345, i))
			if u < 0 || u >= 1 {
				t.Fatalf("pit %v outside [0,1)", u)
			}
			counts[int(u*10)]++
		}
		// Upper deciles must not be over-populated (conservative), and with
		// a full top-K the histogram is uniform within sampling noise.
		exp := float64(trials) / 10
		tolerance := 4 * math.Sqrt(exp)
		top := counts[8] + counts[9]
		if float64(top) > 2*exp+tolerance {
			t.Errorf("T=%v k=%d: %d PIT values in [0.8,1), want at most %.0f", tc.temp, tc.k, top, 2*exp+tolerance)
		}
		if tc.k == vocab {
			for d, c := range counts {
				if math.Abs(float64(c)-exp) > tolerance {
					t.Errorf("T=%v full top-K: decile %d has %d, want %.0f±%.0f", tc.temp, d, c, exp, tolerance)
				}
			}
		}
	}
}

func TestTemperTailBound(t *testing.T) {
	const vocab = 300
	for _, temp := range []float64{0.3, 0.8, 1, 1.3, 2} {
		lp := distribution(uint64(temp*100), vocab)
		p := positionFrom(lp, 0, 25)
		tm := temper(p, temp, vocab)
		inTop := map[int32]bool{}
		for _, e := range p.Top {
			inTop[e.ID] = true
		}
		exact := 0.0
		for i, v := range lp {
			if !inTop[int32(i)] {
				exact += math.Exp((v - tm.maxLP) / temp)
			}
		}
		if tm.tail < exact*(1-1e-9) {
			t.Errorf("T=%v: tail bound %v below exact tail weight %v", temp, tm.tail, exact)
		}
	}
}

func TestUniformRange(t *testing.T) {
	for i := 0; i < 1000; i++ {
		if u := uniform(uint64(i), i); u < 0 || u >= 1 {
			t.Fatalf("uniform = %v", u)
		}
	}
	if uniform(1, 2) == uniform(1, 3) || uniform(1, 2) != uniform(1, 2) {
		t.Error("uniform not a deterministic function of its inputs")
	}
}

func TestTallyAlphaSpending(t *testing.T) {
	var tl Tally
	// Uniform-ish PIT sums (mean 1 per token) never reject.
	for i := 0; i < 50; i++ {
		if rej, _, _ := tl.Add(Report{Honest: true, PITSum: 10, PITCount: 10}, 1e-6); rej {
			t.Fatalf("honest tally rejected at look %d", i+1)
		}
	}
	// Strong evidence rejects.
	var bad Tally
	rej := false
	for i := 0; i < 10 && !rej; i++ {
		rej, _, _ = bad.Add(Report{PITSum: 40, PITCount: 10}, 1e-6)
	}
	if !rej {
		t.Error("tally with mean 4 per token never rejected")
	}
	if got, want := bad.PassRate(), 0.0; got != want {
		t.Errorf("PassRate = %v, want %v", got, want)
	}
}
