package ledger

import (
	"math"
	"math/rand"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// yumaRef is a straightforward float64 implementation of the Yuma consensus specified in
// docs/spec/ledger.md, the reference the fixed-point yuma is checked against.
func yumaRef(stakes []float64, weights, bonds [][]float64, alpha, delta float64) (cons, rank, inc, trust, divs []float64, newBonds [][]float64) {
	nv, np := len(stakes), 0
	for _, r := range weights {
		np = max(np, len(r))
	}
	total := 0.0
	for _, s := range stakes {
		total += s
	}
	S := make([]float64, nv)
	W := make([][]float64, nv)
	for i := range nv {
		if total > 0 {
			S[i] = stakes[i] / total
		}
		W[i] = make([]float64, np)
		sum := 0.0
		for _, w := range weights[i] {
			sum += w
		}
		for j := range weights[i] {
			if sum > 0 {
				W[i][j] = weights[i][j] / sum
			}
		}
	}
	cons, rank, inc = make([]float64, np), make([]float64, np), make([]float64, np)
	for j := range np {
		// Largest candidate value whose "at least this much" stake reaches half.
		var cand []float64
		for i := range nv {
			if stakes[i] > 0 {
				cand = append(cand, W[i][j])
			}
		}
		sort.Sort(sort.Reverse(sort.Float64Slice(cand)))
		for _, c := range cand {
			s := 0.0
			for i := range nv {
				if stakes[i] > 0 && W[i][j] >= c {
					s += stakes[i]
				}
			}
			if 2*s >= total {
				cons[j] = c
				break
			}
		}
	}
	rankSum := 0.0
	for j := range np {
		lo := cons[j] * (1 - delta)
		for i := range nv {
			rank[j] += S[i] * math.Min(math.Max(W[i][j], lo), cons[j])
		}
		rankSum += rank[j]
	}
	for j := range np {
		if rankSum > 0 {
			inc[j] = rank[j] / rankSum
		}
	}
	newBonds = make([][]float64, nv)
	for i := range nv {
		newBonds[i] = make([]float64, np)
	}
	for j := range np {
		col := 0.0
		for i := range nv {
			col += S[i] * math.Min(W[i][j], cons[j])
		}
		sum := 0.0
		for i := range nv {
			d := 0.0
			if col > 0 {
				d = S[i] * math.Min(W[i][j], cons[j]) / col
			}
			old := 0.0
			if i < len(bonds) && j < len(bonds[i]) {
				old = bonds[i][j]
			}
			newBonds[i][j] = alpha*d + (1-alpha)*old
			sum += newBonds[i][j]
		}
		if sum > 0 {
			for i := range nv {
				newBonds[i][j] /= sum
			}
		}
	}
	trust, divs = make([]float64, nv), make([]float64, nv)
	for i := range nv {
		for j := range np {
			divs[i] += newBonds[i][j] * inc[j]
			trust[i] += math.Min(W[i][j], cons[j])
		}
	}
	return cons, rank, inc, trust, divs, newBonds
}

func toUnit(v []uint64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x) / Scale
	}
	return out
}

func toFloat(m [][]uint64, scale float64) [][]float64 {
	out := make([][]float64, len(m))
	for i, r := range m {
		out[i] = make([]float64, len(r))
		for j, x := range r {
			out[i][j] = float64(x) / scale
		}
	}
	return out
}

// TestYumaAgainstFloatReference checks the fixed-point Yuma consensus against the float64
// reference on random inputs (zero stakes, zero weights, old bonds included): every quantity
// must agree within 1e-6 of one (Scale = 1e9; the integer version floors at each step).
func TestYumaAgainstFloatReference(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	const tol = 1e-6
	for iter := 0; iter < 2000; iter++ {
		nv, np := 1+r.Intn(6), 1+r.Intn(8)
		in := yumaInput{AlphaBps: uint64(r.Intn(10_001)), ClipLowBps: uint64(r.Intn(10_001)),
			Stakes: make([]uint64, nv), Weights: make([][]uint64, nv), Bonds: make([][]uint64, nv)}
		for i := range nv {
			switch r.Intn(6) {
			case 0:
				in.Stakes[i] = 0
			case 1:
				in.Stakes[i] = uint64(r.Int63n(1 << 50))
			default:
				in.Stakes[i] = 1 + uint64(r.Int63n(1_000_000_000))
			}
			in.Weights[i] = make([]uint64, np)
			in.Bonds[i] = make([]uint64, np)
			for j := range np {
				if r.Intn(4) != 0 {
					in.Weights[i][j] = uint64(r.Intn(1 << 16))
				}
				if iter%2 == 0 {
					in.Bonds[i][j] = uint64(r.Int63n(Scale + 1))
				}
			}
		}
		// Old bonds are column-normalised in the ledger; normalise them the same way for both.
		for j := range np {
			var sum uint64
			for i := range nv {
				sum += in.Bonds[i][j]
			}
			for i := range nv {
				in.Bonds[i][j] = mulDiv(in.Bonds[i][j], Scale, sum)
			}
		}
		got := yuma(in)
		sf := make([]float64, nv)
		for i, s := range in.Stakes {
			sf[i] = float64(s)
		}
		cons, rank, inc, trust, divs, bonds := yumaRef(sf, toFloat(in.Weights, 1), toFloat(in.Bonds, Scale),
			float64(in.AlphaBps)/10_000, float64(in.ClipLowBps)/10_000)
		approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) <= tol })
		for _, c := range []struct {
			name      string
			got, want any
		}{
			{"consensus", toUnit(got.Consensus), cons},
			{"rank", toUnit(got.Rank), rank},
			{"incentive", toUnit(got.Incentive), inc},
			{"trust", toUnit(got.Trust), trust},
			{"dividends", toUnit(got.Dividends), divs},
			{"bonds", toFloat(got.Bonds, Scale), bonds},
		} {
			if diff := cmp.Diff(c.want, c.got, approx); diff != "" {
				t.Fatalf("iteration %d: %s (-float +fixed):\n%s\ninput %+v", iter, c.name, diff, in)
			}
		}
	}
}

func TestYumaEdgeCases(t *testing.T) {
	const Q = Scale
	tests := []struct {
		name string
		in   yumaInput
		want yumaOutput
	}{
		{
			name: "no verifiers",
			in:   yumaInput{AlphaBps: 1000, ClipLowBps: 2000},
			want: yumaOutput{Consensus: []uint64{}, Rank: []uint64{}, Incentive: []uint64{}, Trust: []uint64{}, Bonds: [][]uint64{}, Dividends: []uint64{}},
		},
		{
			name: "one verifier sets consensus and holds every bond",
			in:   yumaInput{Stakes: []uint64{5}, Weights: [][]uint64{{3, 1}}, AlphaBps: 1000, ClipLowBps: 2000},
			want: yumaOutput{Consensus: []uint64{750_000_000, 250_000_000}, Rank: []uint64{750_000_000, 250_000_000},
				Incentive: []uint64{750_000_000, 250_000_000}, Trust: []uint64{Q}, Bonds: [][]uint64{{Q, Q}}, Dividends: []uint64{Q}},
		},
		{
			name: "all zero weights pay nothing",
			in:   yumaInput{Stakes: []uint64{5, 7}, Weights: [][]uint64{{0, 0}, {0, 0}}, AlphaBps: 1000, ClipLowBps: 2000},
			want: yumaOutput{Consensus: []uint64{0, 0}, Rank: []uint64{0, 0}, Incentive: []uint64{0, 0},
				Trust: []uint64{0, 0}, Bonds: [][]uint64{{0, 0}, {0, 0}}, Dividends: []uint64{0, 0}},
		},
		{
			name: "exactly half the stake sets consensus",
			in:   yumaInput{Stakes: []uint64{1, 1}, Weights: [][]uint64{{1, 0}, {0, 1}}, AlphaBps: 10_000, ClipLowBps: 10_000},
			want: yumaOutput{Consensus: []uint64{Q, Q}, Rank: []uint64{Q / 2, Q / 2}, Incentive: []uint64{Q / 2, Q / 2},
				Trust: []uint64{Q, Q}, Bonds: [][]uint64{{Q, 0}, {0, Q}}, Dividends: []uint64{Q / 2, Q / 2}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, yuma(tt.in)); diff != "" {
				t.Errorf("yuma (-want +got):\n%s", diff)
			}
		})
	}
}

// TestYumaTwoSidedClip shows the fix for Bittensor issue #1868: a minority verifier that
// zeroes an honest provider lowers its rank by at most S_i·δ·C_j (its weight is raised to
// C_j·(1−δ)), and one that over-weights a provider gains it nothing (clipped to C_j).
func TestYumaTwoSidedClip(t *testing.T) {
	honest := yumaInput{Stakes: []uint64{40, 35, 25}, Weights: [][]uint64{{1, 1}, {1, 1}, {1, 1}}, AlphaBps: 1000, ClipLowBps: 2000}
	base := yuma(honest)
	low := honest
	low.Weights = [][]uint64{{1, 1}, {1, 1}, {0, 1}} // the 25% verifier zeroes provider 0
	got := yuma(low)
	if got.Consensus[0] != base.Consensus[0] {
		t.Fatalf("consensus moved: %d → %d", base.Consensus[0], got.Consensus[0])
	}
	bound := base.Rank[0] - mulDiv(mulDiv(250_000_000, 2000, 10_000), base.Consensus[0], Scale)
	if got.Rank[0] < bound {
		t.Errorf("rank of the under-weighted provider fell to %d, below %d", got.Rank[0], bound)
	}
	// With one-sided clipping (δ = 100%) the same attack costs the provider the verifier's
	// whole share.
	one := low
	one.ClipLowBps = 10_000
	if r := yuma(one).Rank[0]; r >= got.Rank[0] {
		t.Errorf("one-sided clip rank %d not below two-sided %d", r, got.Rank[0])
	}
	// The lowballer's own bonds on provider 0 shrink, so it earns fewer dividends.
	if got.Dividends[2] >= base.Dividends[2] {
		t.Errorf("lowballer dividends %d, honest %d: lowballing should cost", got.Dividends[2], base.Dividends[2])
	}
	high := honest
	high.Weights = [][]uint64{{1, 1}, {1, 1}, {1, 0}} // over-weights provider 0 (weight 1.0)
	if r := yuma(high).Rank[0]; r > base.Rank[0] {
		t.Errorf("over-weighting raised the rank: %d > %d", r, base.Rank[0])
	}
}

// TestAuditSelected checks the selection rule's edges and its frequency.
func TestAuditSelected(t *testing.T) {
	seed := testSeed("s")
	if !AuditSelected(seed, "p", "r", 10_000) || AuditSelected(seed, "p", "r", 0) {
		t.Fatal("100% must select, 0% must not")
	}
	n := 0
	for i := 0; i < 20_000; i++ {
		if AuditSelected(seed, "p", string(rune('a'+i%26))+string(rune(i)), 500) {
			n++
		}
	}
	// 5% of 20000 = 1000; 5 sigma ≈ 155.
	if n < 845 || n > 1155 {
		t.Errorf("selected %d of 20000 at 5%%, want about 1000", n)
	}
	for _, tt := range []struct{ clean, want uint64 }{{0, 10_000}, {1, 9684}, {15, 5250}, {30, 500}, {99, 500}} {
		if got := AuditProbabilityBps(tt.clean, 500, 30); got != tt.want {
			t.Errorf("AuditProbabilityBps(%d) = %d, want %d", tt.clean, got, tt.want)
		}
	}
}
