package demomodel

import (
	"fmt"
	"math"
	"strings"

	"github.com/mycel-network/mycel/internal/detmath"
	"github.com/mycel-network/mycel/internal/gguf"
	"github.com/mycel-network/mycel/internal/quant"
)

// shape is the llama architecture of one model.
type shape struct {
	layers, dModel, heads, kvHeads, ffn, context int
	ropeBase, rmsEps                             float32
}

func (s shape) headDim() int { return s.dModel / s.heads }
func (s shape) kvDim() int   { return s.headDim() * s.kvHeads }

// recipe says how a float model's weights are made from the statistics.
type recipe struct {
	shape
	rank  int     // rank of the bigram factorisation
	alpha float64 // strength of the unigram prior in the smoothed bigram
	gamma float64 // row weight exponent: frequent rows are fitted better
	// prevRank > 0 adds a previous-token attention head in layer 0 that
	// carries a rank prevRank-1 factorisation of skip-bigram statistics
	// (token two back -> next token), weighted by lambda, prior beta.
	prevRank     int
	beta, lambda float64
	// attnGain and mlpGain scale the small pseudo-random layer weights.
	attnGain, mlpGain float64
	seed              uint64
}

// tensor is one weight tensor in float32, row-major, dims in ggml order.
type tensor struct {
	name string
	dims []uint64 // dims[0] is the row length
	data []float32
}

// floatModel is a model before it is encoded.
type floatModel struct {
	shape
	tensors []tensor
}

// lowRank factorises the weighted sparse log-ratio matrix
// w[r]·log(1 + count(r,c)/(prior·p(c))) at the given rank and returns the
// unweighted factors: rows of a (by r) and b (by c), a[r]·b[c] ≈ the
// log-ratio. The weights w = (row total + 1)^gamma make the fit favour
// frequent contexts, where the cross-entropy is made.
func lowRank(counts *csr, unigram, rowTotal []float64, prior, gamma float64, rank int, seed uint64) (a, b [][]float64) {
	n := counts.n
	s := &csr{n: n, row: counts.row, col: counts.col, val: make([]float64, len(counts.val))}
	w := make([]float64, n)
	for r := 0; r < n; r++ {
		w[r] = dpow(rowTotal[r]+1, gamma)
		for i := s.row[r]; i < s.row[r+1]; i++ {
			ap := float64(prior * unigram[s.col[i]])
			s.val[i] = float64(w[r] * dlog(1+counts.val[i]/ap))
		}
	}
	u, v, sigma := truncatedSVD(s, rank, 10, 3, seed)
	a = make([][]float64, n)
	b = make([][]float64, n)
	for i := range a {
		a[i] = make([]float64, rank)
		b[i] = make([]float64, rank)
	}
	for k := 0; k < rank; k++ {
		sq := math.Sqrt(sigma[k])
		for i := 0; i < n; i++ {
			a[i][k] = float64(u[k][i]*sq) / w[i]
			b[i][k] = float64(v[k][i] * sq)
		}
	}
	return a, b
}

func maxRowNorm(m [][]float64) float64 {
	mx := 0.0
	for _, r := range m {
		mx = math.Max(mx, math.Sqrt(dot(r, r)))
	}
	return mx
}

// buildFloat constructs a model from the corpus statistics.
//
// The residual stream is laid out as
//
//	[0, rank)          A1[cur]: bigram factor, read by output rows B1[next]
//	rank               constant: output reads log p(next), the unigram prior
//	rank+1             padding that gives every token the same norm
//	[src, src+prev)    A2[cur] and its own norm padding, read by layer 0's
//	                   previous-token head
//	[dst, dst+prev)    where that head writes A2[previous token]; the output
//	                   reads it with B2[next], the skip-bigram factor
//
// so logits ≈ log p(next) + A1[cur]·B1[next] + λ A2[prev]·B2[next], a
// product of a smoothed bigram and a skip-bigram expert. Every other weight
// is small, zero-mean and pseudo-random: the layers do real work on the
// residual without destroying the signal. Norm weights are 1.
func buildFloat(st *stats, rc recipe) (*floatModel, error) {
	d, vsz, hd := rc.dModel, st.vocabSize, rc.headDim()
	iu, ipad, src, dst := rc.rank, rc.rank+1, rc.rank+2, rc.rank+2+rc.prevRank
	if dst+rc.prevRank > d || rc.prevRank > hd {
		return nil, fmt.Errorf("rank %d and previous-token rank %d do not fit d_model %d, head_dim %d", rc.rank, rc.prevRank, d, hd)
	}
	a1, b1 := lowRank(st.bigram, st.unigram, st.rowTotal, rc.alpha, rc.gamma, rc.rank, rc.seed)
	r1 := maxRowNorm(a1)
	uc := r1 / 2 // value of the constant coordinate
	r1 = math.Sqrt(float64(r1*r1) + float64(uc*uc))

	var a2, b2 [][]float64
	r2 := 0.0
	if rc.prevRank > 0 {
		a2, b2 = lowRank(st.skip, st.unigram, st.rowTotal, rc.beta, rc.gamma, rc.prevRank-1, rc.seed+1)
		// Rescale so the A2 block has norm r1/2 at most; B2 compensates.
		f := r1 / 2 / maxRowNorm(a2)
		for i := range a2 {
			for k := range a2[i] {
				a2[i][k] = float64(a2[i][k] * f)
				b2[i][k] = float64(float64(b2[i][k]*rc.lambda) / f)
			}
		}
		r2 = r1 / 2
	}
	// Embedding norm sqrt(r1²+r2²) scaled to RMS 1; at the output the
	// residual also holds the copied block, norm sqrt(r1²+2r2²).
	scaleA := math.Sqrt(float64(d)) / math.Sqrt(float64(r1*r1)+float64(r2*r2))
	scaleB := math.Sqrt(float64(r1*r1)+float64(2*r2*r2)) / math.Sqrt(float64(d))

	emb := make([]float64, d)
	embRow := func(i int) []float64 {
		clear(emb)
		copy(emb, a1[i])
		emb[iu] = uc
		emb[ipad] = math.Sqrt(math.Max(float64(r1*r1)-dot(emb[:ipad], emb[:ipad]), 0))
		if rc.prevRank > 0 {
			copy(emb[src:], a2[i])
			n := src + rc.prevRank - 1
			emb[n] = math.Sqrt(math.Max(float64(r2*r2)-dot(emb[src:n], emb[src:n]), 0))
		}
		for k := range emb {
			emb[k] = float64(emb[k] * scaleA)
		}
		return emb
	}
	m := &floatModel{shape: rc.shape}
	last := -1
	m.add("token_embd.weight", d, vsz, func(r, c int) float64 {
		if r != last {
			embRow(r)
			last = r
		}
		return emb[c]
	})

	rng := splitmix64{s: rc.seed ^ 0x6d7963656c}
	random := func(gain float64, fanIn int) func(r, c int) float64 {
		g := gain / math.Sqrt(float64(fanIn))
		return func(int, int) float64 { return float64(rng.uniform() * g) }
	}
	// The previous-token head (head 0, KV head 0 of layer 0): constant q
	// and k from the constant coordinate, phased so that after RoPE pair m
	// scores a_m·cos(θ_m·(Δ-1)) at distance Δ, which peaks at Δ = 1. The
	// amplitudes a_m ∝ (1-cos θ_m)^¼ favour the fast-turning pairs: the
	// margin over Δ = 0 and 2 (12 nats) is then 15% of the peak score, so
	// the few-percent norm errors of quantised embeddings do not move the
	// attention (equal amplitudes would give 4%).
	xu := float64(uc * scaleA)
	qk := make([][2]float64, hd/2) // per pair: q and k amplitude
	{
		margin := 0.0
		for pair := range qk {
			theta := dpow(float64(rc.ropeBase), -2*float64(pair)/float64(hd))
			am := dpow(1-dcos(theta), 0.25)
			qk[pair] = [2]float64{am, theta}
			margin += float64(am * (1 - dcos(theta)))
		}
		c := 12 * math.Sqrt(float64(hd)) / margin
		for pair := range qk {
			qk[pair][0] = math.Sqrt(float64(c * qk[pair][0]))
		}
	}
	prevHead := func(l int, name string, r, c int) (float64, bool) {
		if l != 0 || rc.prevRank == 0 {
			return 0, false
		}
		switch name {
		case "q", "k":
			if r >= hd {
				return 0, false
			}
			if c != iu {
				return 0, true
			}
			amp, theta := qk[r/2][0], qk[r/2][1]
			if name == "k" {
				if r%2 == 0 {
					return amp / xu, true
				}
				return 0, true
			}
			if r%2 == 0 {
				return float64(amp*dcos(theta)) / xu, true
			}
			return float64(-amp*dsin(theta)) / xu, true
		case "v":
			if r >= hd {
				return 0, false
			}
			if r < rc.prevRank && c == src+r {
				return 1, true
			}
			return 0, true
		case "o":
			if c >= hd {
				return 0, false
			}
			if c < rc.prevRank && r == dst+c {
				return 1, true
			}
			return 0, true
		}
		return 0, false
	}
	wired := func(l int, name string, gain float64, fanIn int) func(r, c int) float64 {
		rnd := random(gain, fanIn)
		return func(r, c int) float64 {
			x := rnd(r, c) // always drawn, so the stream does not depend on wiring
			if v, ok := prevHead(l, name, r, c); ok {
				return v
			}
			return x
		}
	}
	ones := func(int, int) float64 { return 1 }
	for l := 0; l < rc.layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		m.add(p+"attn_norm.weight", d, 1, ones)
		m.add(p+"attn_q.weight", d, d, wired(l, "q", 1, d))
		m.add(p+"attn_k.weight", d, rc.kvDim(), wired(l, "k", 1, d))
		m.add(p+"attn_v.weight", d, rc.kvDim(), wired(l, "v", rc.attnGain, d))
		m.add(p+"attn_output.weight", d, d, wired(l, "o", rc.attnGain, d))
		m.add(p+"ffn_norm.weight", d, 1, ones)
		m.add(p+"ffn_gate.weight", d, rc.ffn, random(1, d))
		m.add(p+"ffn_up.weight", d, rc.ffn, random(1, d))
		m.add(p+"ffn_down.weight", rc.ffn, d, random(rc.mlpGain, rc.ffn))
	}
	m.add("output_norm.weight", d, 1, ones)
	m.add("output.weight", d, vsz, func(r, c int) float64 {
		switch {
		case c < rc.rank:
			return float64(b1[r][c] * scaleB)
		case c == iu:
			return float64(dlog(st.unigram[r]) / uc * scaleB)
		case rc.prevRank > 0 && c >= dst && c < dst+rc.prevRank-1:
			return float64(b2[r][c-dst] * scaleB)
		}
		return 0
	})
	return m, nil
}

// add appends a tensor of rows×rowLen elements filled by f(row, col) in
// row-major order.
func (m *floatModel) add(name string, rowLen, rows int, f func(r, c int) float64) {
	t := tensor{name: name, data: make([]float32, rowLen*rows)}
	if rows == 1 {
		t.dims = []uint64{uint64(rowLen)}
	} else {
		t.dims = []uint64{uint64(rowLen), uint64(rows)}
	}
	for r := 0; r < rows; r++ {
		for c := 0; c < rowLen; c++ {
			t.data[r*rowLen+c] = float32(f(r, c))
		}
	}
	m.tensors = append(m.tensors, t)
}

// dpow returns x**y for x > 0 using the portable dlog and detmath.Exp.
func dpow(x, y float64) float64 {
	if y == 0 {
		return 1
	}
	return detmath.Exp(float64(y * dlog(x)))
}

// quantMix names how a float model is encoded.
type quantMix int

const (
	mixF32 quantMix = iota
	mixQ8_0
	mixQ4KM
	mixF16  // matrices F16, as llama.cpp's convert_hf_to_gguf.py --outtype f16 writes
	mixBF16 // matrices BF16 (--outtype bf16)
	mixQ4_0 // Q4_0, output.weight Q6_K: llama-quantize's Q4_0 rule
)

// fileType is the general.file_type value llama.cpp writes for the mix.
func (q quantMix) fileType() uint32 {
	switch q {
	case mixQ8_0:
		return 7
	case mixQ4KM:
		return 15
	case mixF16:
		return 1
	case mixBF16:
		return 32
	case mixQ4_0:
		return 2
	}
	return 0
}

// useMoreBits is llama.cpp's rule for which layers of a Q4_K_M file keep
// attn_v and ffn_down in Q6_K.
func useMoreBits(i, n int) bool {
	return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2
}

// tensorType picks the encoding of one tensor under the mix.
func (q quantMix) tensorType(name string, layer, layers int, oneDim bool) gguf.Type {
	if oneDim || q == mixF32 {
		return gguf.TypeF32
	}
	switch q {
	case mixQ8_0:
		return gguf.TypeQ8_0
	case mixF16:
		return gguf.TypeF16
	case mixBF16:
		return gguf.TypeBF16
	case mixQ4_0:
		if name == "output.weight" {
			return gguf.TypeQ6_K
		}
		return gguf.TypeQ4_0
	}
	switch {
	case name == "output.weight":
		return gguf.TypeQ6_K
	case (strings.HasSuffix(name, "attn_v.weight") || strings.HasSuffix(name, "ffn_down.weight")) && useMoreBits(layer, layers):
		return gguf.TypeQ6_K
	}
	return gguf.TypeQ4_K
}

// encode writes the tensors of m into w with the types of the mix.
func (m *floatModel) encode(w *gguf.Writer, q quantMix) error {
	for _, t := range m.tensors {
		layer := -1
		fmt.Sscanf(t.name, "blk.%d.", &layer)
		typ := q.tensorType(t.name, layer, m.layers, len(t.dims) == 1)
		data, err := quant.Quantize(typ, t.data)
		if err != nil {
			return fmt.Errorf("tensor %s: %w", t.name, err)
		}
		if err := w.AddTensor(t.name, typ, t.dims, data); err != nil {
			return fmt.Errorf("tensor %s: %w", t.name, err)
		}
	}
	return nil
}
