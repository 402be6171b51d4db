package demomodel

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/mycel-network/mycel/internal/gguf"
	"github.com/mycel-network/mycel/internal/quant"
)

// naiveModel is a GGUF llama or qwen2 model dequantised to float64, for a
// forward pass written independently of internal/engine.
type naiveModel struct {
	layers, d, heads, kvHeads, ffn, vocab int
	ropeBase, eps                         float64
	neox                                  bool // qwen2: RoPE pairs (i, i+head_dim/2)
	w                                     map[string][]float64
	// onAttention, if set, sees every head's attention weights.
	onAttention func(layer, head, pos int, weights []float64)
}

func loadNaive(t *testing.T, path string) *naiveModel {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(raw)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	u := func(k string) int {
		v, err := f.Uint(k)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return int(v)
	}
	fl := func(k string) float64 {
		v, err := f.Float(k)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		return v
	}
	arch, err := f.String("general.architecture")
	if err != nil {
		t.Fatal(err)
	}
	if arch != "llama" && arch != "qwen2" {
		t.Fatalf("%s: architecture %q", path, arch)
	}
	m := &naiveModel{
		layers: u(arch + ".block_count"), d: u(arch + ".embedding_length"), heads: u(arch + ".attention.head_count"),
		kvHeads: u(arch + ".attention.head_count_kv"), ffn: u(arch + ".feed_forward_length"),
		ropeBase: fl(arch + ".rope.freq_base"), eps: fl(arch + ".attention.layer_norm_rms_epsilon"),
		neox: arch == "qwen2", w: map[string][]float64{},
	}
	for _, ti := range f.Tensors {
		_, data, err := f.Tensor(ti.Name)
		if err != nil {
			t.Fatalf("tensor %s: %v", ti.Name, err)
		}
		dst := make([]float32, ti.Elements())
		if err := quant.Dequantize(ti.Type, data, dst); err != nil {
			t.Fatalf("dequantize %s: %v", ti.Name, err)
		}
		w := make([]float64, len(dst))
		for i, x := range dst {
			w[i] = float64(x)
		}
		m.w[ti.Name] = w
	}
	m.vocab = len(m.w["token_embd.weight"]) / m.d
	return m
}

// matVec returns W·x for W with len(x) columns.
func matVec(w, x []float64) []float64 {
	n := len(x)
	y := make([]float64, len(w)/n)
	for o := range y {
		s := 0.0
		for i, xi := range x {
			s += w[o*n+i] * xi
		}
		y[o] = s
	}
	return y
}

func rmsNorm(x, g []float64, eps float64) []float64 {
	ss := 0.0
	for _, v := range x {
		ss += v * v
	}
	inv := 1 / math.Sqrt(ss/float64(len(x))+eps)
	y := make([]float64, len(x))
	for i := range x {
		y[i] = x[i] * inv * g[i]
	}
	return y
}

// rope rotates consecutive pairs of each head (llama.cpp's "normal"
// layout), or with neox the pairs (i, i+headDim/2) (qwen2's layout).
func rope(x []float64, headDim, pos int, base float64, neox bool) {
	for h := 0; h < len(x)/headDim; h++ {
		for i := 0; i < headDim/2; i++ {
			theta := float64(pos) * math.Pow(base, -2*float64(i)/float64(headDim))
			c, s := math.Cos(theta), math.Sin(theta)
			ia, ib := h*headDim+2*i, h*headDim+2*i+1
			if neox {
				ia, ib = h*headDim+i, h*headDim+i+headDim/2
			}
			a, b := x[ia], x[ib]
			x[ia] = a*c - b*s
			x[ib] = a*s + b*c
		}
	}
}

// addBias adds the tensor name to x if the model has it.
func (m *naiveModel) addBias(x []float64, name string) {
	b, ok := m.w[name]
	if !ok {
		return
	}
	for i := range x {
		x[i] += b[i]
	}
}

// logProbs runs the whole sequence and returns, for each position, the
// log-softmax of the next-token logits.
func (m *naiveModel) logProbs(tokens []int32) [][]float64 {
	hd := m.d / m.heads
	keys := make([][][]float64, m.layers)
	vals := make([][][]float64, m.layers)
	var out [][]float64
	prefixes := make([]string, m.layers)
	for l := range prefixes {
		prefixes[l] = fmt.Sprintf("blk.%d.", l)
	}
	for pos, tok := range tokens {
		x := append([]float64(nil), m.w["token_embd.weight"][int(tok)*m.d:int(tok+1)*m.d]...)
		for l := 0; l < m.layers; l++ {
			p := prefixes[l]
			xn := rmsNorm(x, m.w[p+"attn_norm.weight"], m.eps)
			q := matVec(m.w[p+"attn_q.weight"], xn)
			k := matVec(m.w[p+"attn_k.weight"], xn)
			v := matVec(m.w[p+"attn_v.weight"], xn)
			m.addBias(q, p+"attn_q.bias")
			m.addBias(k, p+"attn_k.bias")
			m.addBias(v, p+"attn_v.bias")
			rope(q, hd, pos, m.ropeBase, m.neox)
			rope(k, hd, pos, m.ropeBase, m.neox)
			keys[l] = append(keys[l], k)
			vals[l] = append(vals[l], v)
			att := make([]float64, m.d)
			for h := 0; h < m.heads; h++ {
				kh := h / (m.heads / m.kvHeads)
				sc := make([]float64, pos+1)
				mx := math.Inf(-1)
				for j := 0; j <= pos; j++ {
					s := 0.0
					for i := 0; i < hd; i++ {
						s += q[h*hd+i] * keys[l][j][kh*hd+i]
					}
					sc[j] = s / math.Sqrt(float64(hd))
					mx = math.Max(mx, sc[j])
				}
				z := 0.0
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					z += sc[j]
				}
				if m.onAttention != nil {
					ws := make([]float64, len(sc))
					for j := range sc {
						ws[j] = sc[j] / z
					}
					m.onAttention(l, h, pos, ws)
				}
				for j := range sc {
					for i := 0; i < hd; i++ {
						att[h*hd+i] += sc[j] / z * vals[l][j][kh*hd+i]
					}
				}
			}
			o := matVec(m.w[p+"attn_output.weight"], att)
			for i := range x {
				x[i] += o[i]
			}
			xn = rmsNorm(x, m.w[p+"ffn_norm.weight"], m.eps)
			g := matVec(m.w[p+"ffn_gate.weight"], xn)
			up := matVec(m.w[p+"ffn_up.weight"], xn)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * up[i]
			}
			dn := matVec(m.w[p+"ffn_down.weight"], g)
			for i := range x {
				x[i] += dn[i]
			}
		}
		xn := rmsNorm(x, m.w["output_norm.weight"], m.eps)
		logits := matVec(m.w["output.weight"], xn)
		mx := math.Inf(-1)
		for _, v := range logits {
			mx = math.Max(mx, v)
		}
		z := 0.0
		for _, v := range logits {
			z += math.Exp(v - mx)
		}
		lz := mx + math.Log(z)
		for i := range logits {
			logits[i] -= lz
		}
		out = append(out, logits)
	}
	return out
}

// bitsPerToken is the cross-entropy of the log-probabilities lps[w][i]
// (predicting windows[w][i+1]).
func bitsPerToken(windows [][]int32, lps [][][]float64) float64 {
	total, n := 0.0, 0
	for wi, w := range windows {
		for i := 0; i+1 < len(w); i++ {
			total -= lps[wi][i][w[i+1]] / math.Ln2
			n++
		}
	}
	return total / float64(n)
}

// shuffled returns a copy of m with every tensor's elements permuted.
func (m *naiveModel) shuffled(seed uint64) *naiveModel {
	c := *m
	c.w = map[string][]float64{}
	r := splitmix64{s: seed}
	for k, w := range m.w {
		w = append([]float64(nil), w...)
		if !strings.HasSuffix(k, "norm.weight") {
			for i := len(w) - 1; i > 0; i-- {
				j := int(r.next() % uint64(i+1))
				w[i], w[j] = w[j], w[i]
			}
		}
		c.w[k] = w
	}
	return &c
}
