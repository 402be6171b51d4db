package ledger

import (
	"slices"
)

// Scale is fixed-point one for the consensus quantities (stake shares, weights, consensus,
// incentive, bonds, dividends): a value v means v/Scale.
const Scale = 1_000_000_000

// yumaInput is one epoch's input to Yuma consensus over verifiers i and providers j.
type yumaInput struct {
	Stakes     []uint64   // s_i, umyc; 0 for a verifier that did not reveal (bonds only)
	Weights    [][]uint64 // raw W_ij ≥ 0 (0 for ineligible providers); rows may be nil
	Bonds      [][]uint64 // previous B_ij, Scale; rows may be nil
	AlphaBps   uint64     // bonds EMA α
	ClipLowBps uint64     // δ: incentive weights are clipped into [C_j − C_j·δ, C_j]
}

// yumaOutput is Yuma consensus's result.
type yumaOutput struct {
	Consensus []uint64   // C_j
	Rank      []uint64   // R_j = Σ_i S_i·clamp(W_ij, L_j, C_j)
	Incentive []uint64   // I_j = R_j / Σ R
	Trust     []uint64   // T_i = Σ_j min(W_ij, C_j)
	Bonds     [][]uint64 // new B_ij, column-normalised
	Dividends []uint64   // D_i = Σ_j B_ij·I_j (not normalised)
}

// yuma runs Yuma consensus in integer fixed-point (Scale). It is specified in
// docs/spec/ledger.md ("Yuma consensus"); yuma_test.go checks it against a float64 reference.
//
//  1. S_i = s_i/Σs over verifiers with stake; W_ij = W_ij/Σ_j W_ij per row (a zero row stays 0).
//  2. C_j = max{w ∈ {W_ij} ∪ {0} : Σ_{i: W_ij ≥ w} s_i ≥ Σs/2}: the stake-weighted median
//     (κ = 1/2), compared exactly on raw stakes.
//  3. Two-sided clip for the incentive: W̃_ij = clamp(W_ij, L_j, C_j) with L_j = C_j − C_j·δ.
//     R_j = Σ_i S_i·W̃_ij, I_j = R_j/Σ_k R_k.
//  4. Bonds use the one-sided clip W̄_ij = min(W_ij, C_j): ΔB_ij = S_i·W̄_ij / Σ_k S_k·W̄_kj,
//     B_ij ← α·ΔB_ij + (1−α)·B_ij, then each column with a positive sum is normalised.
//  5. D_i = Σ_j B_ij·I_j; T_i = Σ_j W̄_ij.
func yuma(in yumaInput) yumaOutput {
	nv := len(in.Stakes)
	np := 0
	for _, r := range in.Weights {
		np = max(np, len(r))
	}
	for _, r := range in.Bonds {
		np = max(np, len(r))
	}
	at := func(m [][]uint64, i, j int) uint64 {
		if i < len(m) && j < len(m[i]) {
			return m[i][j]
		}
		return 0
	}
	var total uint64
	for _, s := range in.Stakes {
		total += s // stakes are part of the supply: the sum fits
	}
	S := make([]uint64, nv)
	W := make([][]uint64, nv)
	for i := range nv {
		S[i] = mulDiv(in.Stakes[i], Scale, total)
		W[i] = make([]uint64, np)
		var rowSum uint64
		for j := range np {
			rowSum += min(at(in.Weights, i, j), 1<<32) // weights are uint32 on the wire
		}
		for j := range np {
			W[i][j] = mulDiv(min(at(in.Weights, i, j), 1<<32), Scale, rowSum)
		}
	}
	out := yumaOutput{
		Consensus: make([]uint64, np), Rank: make([]uint64, np), Incentive: make([]uint64, np),
		Trust: make([]uint64, nv), Bonds: make([][]uint64, nv), Dividends: make([]uint64, nv),
	}
	// 2. Consensus: walk the column's values from the largest down, accumulating stake.
	type ws struct{ w, s uint64 }
	col := make([]ws, 0, nv)
	for j := range np {
		col = col[:0]
		for i := range nv {
			if in.Stakes[i] > 0 {
				col = append(col, ws{W[i][j], in.Stakes[i]})
			}
		}
		slices.SortFunc(col, func(a, b ws) int {
			switch {
			case a.w > b.w:
				return -1
			case a.w < b.w:
				return 1
			}
			return 0
		})
		var acc uint64
		for k := 0; k < len(col); k++ {
			acc += col[k].s
			if k+1 < len(col) && col[k+1].w == col[k].w {
				continue // count every verifier at this value first
			}
			if acc >= total-acc { // acc ≥ total/2
				out.Consensus[j] = col[k].w
				break
			}
		}
	}
	// 3. Incentive with the two-sided clip.
	var rankSum uint64
	for j := range np {
		c := out.Consensus[j]
		lo := c - mulDiv(c, in.ClipLowBps, 10_000)
		var r uint64
		for i := range nv {
			r += S[i] * min(max(W[i][j], lo), c) // Σ S_i ≤ Scale, W̃ ≤ Scale: ≤ Scale²
		}
		out.Rank[j] = r / Scale
		rankSum += out.Rank[j]
	}
	for j := range np {
		out.Incentive[j] = mulDiv(out.Rank[j], Scale, rankSum)
	}
	// 4. Bonds.
	alpha := min(in.AlphaBps, 10_000)
	for i := range nv {
		out.Bonds[i] = make([]uint64, np)
	}
	for j := range np {
		c := out.Consensus[j]
		var colSum uint64
		for i := range nv {
			colSum += S[i] * min(W[i][j], c)
		}
		var bondSum uint64
		for i := range nv {
			delta := mulDiv(S[i]*min(W[i][j], c), Scale, colSum)
			b := (alpha*delta + (10_000-alpha)*min(at(in.Bonds, i, j), Scale)) / 10_000
			out.Bonds[i][j] = b
			bondSum += b
		}
		if bondSum > 0 {
			for i := range nv {
				out.Bonds[i][j] = mulDiv(out.Bonds[i][j], Scale, bondSum)
			}
		}
	}
	// 5. Dividends and trust.
	for i := range nv {
		var d, t uint64
		for j := range np {
			d += out.Bonds[i][j] * out.Incentive[j] // Σ_j I_j ≤ Scale, B ≤ Scale: ≤ Scale²
			t += min(W[i][j], out.Consensus[j])
		}
		out.Dividends[i] = d / Scale
		out.Trust[i] = t
	}
	return out
}
