package ledger

import (
	"math"
	"math/big"
	"math/rand"
	"testing"
)

// TestProviderPayoutsProperty checks the capacity-capped provider split against a
// straightforward reference: each amount is min(pp·R_j/ΣR, pp·K_j/ΣK) floored (exactly, in big
// integers; and within 1 umyc of float64), by rank alone when no capacity is proven, never more
// than the share in total, and a provider's amount never falls when only its capacity grows.
func TestProviderPayoutsProperty(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	floorDiv := func(a, b, c uint64) uint64 {
		if c == 0 {
			return 0
		}
		x := new(big.Int).Mul(new(big.Int).SetUint64(a), new(big.Int).SetUint64(b))
		return x.Div(x, new(big.Int).SetUint64(c)).Uint64()
	}
	for it := 0; it < 2000; it++ {
		n := 1 + r.Intn(8)
		pp := uint64(r.Int63n(1 << 40))
		if it%10 == 0 {
			pp = 1<<64 - 1
		}
		rank, capacity := make([]uint64, n), make([]uint64, n)
		noCap := r.Intn(4) == 0
		for j := range n {
			if r.Intn(5) != 0 {
				rank[j] = uint64(r.Int63n(Scale))
			}
			if !noCap && r.Intn(4) != 0 {
				capacity[j] = uint64(r.Int63n(1 << 30))
			}
		}
		got := providerPayouts(pp, rank, capacity)
		var rs, cs, total uint64
		for j := range n {
			rs += rank[j]
			cs += capacity[j]
		}
		for j := range n {
			want := floorDiv(pp, rank[j], rs)
			ref := float64(pp) * float64(rank[j]) / math.Max(1, float64(rs))
			if cs > 0 {
				want = min(want, floorDiv(pp, capacity[j], cs))
				ref = math.Min(ref, float64(pp)*float64(capacity[j])/float64(cs))
			}
			if got[j] != want {
				t.Fatalf("case %d provider %d: got %d, want %d (pp %d rank %v capacity %v)", it, j, got[j], want, pp, rank, capacity)
			}
			if math.Abs(float64(got[j])-ref) > 1+ref*1e-12 {
				t.Fatalf("case %d provider %d: got %d, float reference %.1f", it, j, got[j], ref)
			}
			total += got[j]
		}
		if total > pp {
			t.Fatalf("case %d: paid %d of %d", it, total, pp)
		}
		// More capacity for one provider never lowers its amount.
		j := r.Intn(n)
		more := append([]uint64(nil), capacity...)
		more[j] += 1 + uint64(r.Int63n(1<<30))
		if again := providerPayouts(pp, rank, more); again[j] < got[j] {
			t.Fatalf("case %d: provider %d's capacity grew, its amount fell %d → %d", it, j, got[j], again[j])
		}
	}
}
