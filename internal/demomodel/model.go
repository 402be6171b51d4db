package demomodel

import (
	"fmt"
	"math"

	"strings"

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

// buildFloat constructs a model from the corpus statistics: token_embd rows
// A and output rows B with A[cur]·B[next] ≈ the smoothed log-probability of
// next after cur (up to a constant per cur), and small zero-mean layers that
// perturb the residual stream without destroying that signal.
func buildFloat(st *stats, rc recipe) (*floatModel, error) {
	d, vsz := rc.dModel, st.vocabSize
	if rc.rank+2 > d {
		return nil, fmt.Errorf("rank %d does not fit d_model %d", rc.rank, d)
	}
	// Weighted sparse part of the log-probabilities:
	// log P(n|c) = log(α p(n)) + log(1 + count(c,n)/(α p(n))) - log(N_c + α).
	s := &csr{n: vsz, row: st.bigram.row, col: st.bigram.col, val: make([]float64, len(st.bigram.val))}
	w := make([]float64, vsz)
	for r := 0; r < vsz; r++ {
		w[r] = dpow(st.rowTotal[r]+1, rc.gamma)
		for i := s.row[r]; i < s.row[r+1]; i++ {
			ap := float64(rc.alpha * st.unigram[s.col[i]])
			s.val[i] = float64(w[r] * dlog(1+st.bigram.val[i]/ap))
		}
	}
	u, v, sigma := truncatedSVD(s, rc.rank, 10, 3, rc.seed)

	a := make([][]float64, vsz)
	b := make([][]float64, vsz)
	for i := range a {
		a[i] = make([]float64, d)
		b[i] = make([]float64, d)
	}
	for k := 0; k < rc.rank; k++ {
		sq := math.Sqrt(sigma[k])
		for i := 0; i < vsz; i++ {
			a[i][k] = float64(u[k][i]*sq) / w[i]
			b[i][k] = float64(v[k][i] * sq)
		}
	}
	maxNorm := 0.0
	for i := range a {
		maxNorm = math.Max(maxNorm, math.Sqrt(dot(a[i], a[i])))
	}
	// Coordinate rank carries the unigram term, rank+1 pads every row of A
	// to the same norm so RMSNorm scales all tokens alike.
	uc := maxNorm / 2
	for i := range a {
		a[i][rc.rank] = uc
		b[i][rc.rank] = dlog(st.unigram[i]) / uc
	}
	radius := math.Sqrt(float64(maxNorm*maxNorm) + float64(uc*uc))
	for i := range a {
		rest := float64(radius*radius) - dot(a[i], a[i])
		a[i][rc.rank+1] = math.Sqrt(math.Max(rest, 0))
	}
	// Residual RMS 1: A·sqrt(d)/radius, and B compensates.
	scaleA := math.Sqrt(float64(d)) / radius
	scaleB := radius / math.Sqrt(float64(d))
	m := &floatModel{shape: rc.shape}
	m.add("token_embd.weight", d, vsz, func(r, c int) float64 { return float64(a[r][c] * scaleA) })

	rng := splitmix64{s: rc.seed ^ 0x6d7963656c}
	random := func(gain float64, fanIn int) func(r, c int) float64 {
		g := gain / math.Sqrt(float64(fanIn))
		return func(int, int) float64 { return float64(rng.uniform() * g) }
	}
	ones := func(int, int) float64 { return 1 }
	for l := 0; l < rc.layers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		m.add(p+"attn_norm.weight", d, 1, ones)
		m.add(p+"attn_q.weight", d, d, random(1, d))
		m.add(p+"attn_k.weight", d, rc.kvDim(), random(1, d))
		m.add(p+"attn_v.weight", d, rc.kvDim(), random(rc.attnGain, d))
		m.add(p+"attn_output.weight", d, d, random(rc.attnGain, d))
		m.add(p+"ffn_norm.weight", d, 1, ones)
		m.add(p+"ffn_gate.weight", d, rc.ffn, random(1, d))
		m.add(p+"ffn_up.weight", d, rc.ffn, random(1, d))
		m.add(p+"ffn_down.weight", rc.ffn, d, random(rc.mlpGain, rc.ffn))
	}
	m.add("output_norm.weight", d, 1, ones)
	m.add("output.weight", d, vsz, func(r, c int) float64 { return float64(b[r][c] * scaleB) })
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

// dpow returns x**y for x > 0 using the portable dlog/dexp.
func dpow(x, y float64) float64 {
	if y == 0 {
		return 1
	}
	return dexp(float64(y * dlog(x)))
}

// quantMix names how a float model is encoded.
type quantMix int

const (
	mixF32 quantMix = iota
	mixQ8_0
	mixQ4KM
)

// fileType is the general.file_type value llama.cpp writes for the mix.
func (q quantMix) fileType() uint32 {
	switch q {
	case mixQ8_0:
		return 7
	case mixQ4KM:
		return 15
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
	if q == mixQ8_0 {
		return gguf.TypeQ8_0
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
