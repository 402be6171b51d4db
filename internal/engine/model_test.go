package engine

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/mycel-network/mycel/internal/gguf"
	"github.com/mycel-network/mycel/internal/quant"
	"github.com/mycel-network/mycel/internal/tokenizer"
)

// spec describes a tiny test model.
type spec struct {
	arch     string
	typ      gguf.Type // type of the weight matrices
	embd     int
	layers   int
	heads    int
	kvHeads  int
	ff       int
	ctx      int
	vocab    int
	tied     bool
	ropeFreq bool    // write rope_freqs.weight (llama3 style)
	ropeLin  float32 // linear rope scaling factor, 0 = none
	seed     uint64
	// mutate lets a test damage the model: it may replace the dims or
	// type of a tensor before it is written.
	mutate func(name string, dims []uint64) []uint64
	skip   string // tensor not to write
	// misalign places the file one byte off an aligned address in memory.
	misalign bool
}

func defaultSpec(arch string, typ gguf.Type) spec {
	return spec{arch: arch, typ: typ, embd: 256, layers: 2, heads: 4, kvHeads: 2, ff: 256, ctx: 96, vocab: 260, seed: 1}
}

type rng uint64

func (r *rng) next() uint64 {
	*r = *r*6364136223846793005 + 1442695040888963407
	return uint64(*r)
}

func (r *rng) uniform() float32 { return float32(int32(r.next()>>43)-(1<<20)) / (1 << 20) }

// testTensor is a tensor of the test model with its float values.
type testTensor struct {
	name string
	typ  gguf.Type
	dims []uint64
	vals []float32
}

// build returns the model's GGUF bytes and the dequantised values of every
// tensor (what the engine computes with).
func (s spec) build(t testing.TB) ([]byte, map[string][]float32) {
	t.Helper()
	r := rng(s.seed)
	var tensors []testTensor
	add := func(name string, typ gguf.Type, scale, offset float32, dims ...int) {
		d := make([]uint64, len(dims))
		n := 1
		for i, x := range dims {
			d[i] = uint64(x)
			n *= x
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = r.uniform()*scale + offset
		}
		tensors = append(tensors, testTensor{name, typ, d, v})
	}
	hd := s.embd / s.heads
	add("token_embd.weight", s.typ, 1, 0, s.embd, s.vocab)
	add("output_norm.weight", gguf.TypeF32, 0.2, 1, s.embd)
	if !s.tied {
		add("output.weight", s.typ, 0.2, 0, s.embd, s.vocab)
	}
	if s.ropeFreq {
		add("rope_freqs.weight", gguf.TypeF32, 0.5, 2, hd/2)
	}
	for i := 0; i < s.layers; i++ {
		p := fmt.Sprintf("blk.%d.", i)
		add(p+"attn_norm.weight", gguf.TypeF32, 0.2, 1, s.embd)
		add(p+"attn_q.weight", s.typ, 0.15, 0, s.embd, s.heads*hd)
		add(p+"attn_k.weight", s.typ, 0.15, 0, s.embd, s.kvHeads*hd)
		add(p+"attn_v.weight", s.typ, 0.15, 0, s.embd, s.kvHeads*hd)
		add(p+"attn_output.weight", s.typ, 0.1, 0, s.heads*hd, s.embd)
		if s.arch == "qwen2" {
			add(p+"attn_q.bias", gguf.TypeF32, 0.3, 0, s.heads*hd)
			add(p+"attn_k.bias", gguf.TypeF32, 0.3, 0, s.kvHeads*hd)
			add(p+"attn_v.bias", gguf.TypeF32, 0.3, 0, s.kvHeads*hd)
		}
		add(p+"ffn_norm.weight", gguf.TypeF32, 0.2, 1, s.embd)
		add(p+"ffn_gate.weight", s.typ, 0.15, 0, s.embd, s.ff)
		add(p+"ffn_up.weight", s.typ, 0.15, 0, s.embd, s.ff)
		add(p+"ffn_down.weight", s.typ, 0.1, 0, s.ff, s.embd)
	}
	w := gguf.NewWriter()
	w.SetString("general.architecture", s.arch)
	w.SetString("general.name", "test-"+s.arch)
	a := s.arch + "."
	w.SetUint32(a+"embedding_length", uint32(s.embd))
	w.SetUint32(a+"block_count", uint32(s.layers))
	w.SetUint32(a+"attention.head_count", uint32(s.heads))
	w.SetUint32(a+"attention.head_count_kv", uint32(s.kvHeads))
	w.SetUint32(a+"feed_forward_length", uint32(s.ff))
	w.SetUint32(a+"context_length", uint32(s.ctx))
	w.SetFloat32(a+"attention.layer_norm_rms_epsilon", 1e-5)
	w.SetFloat32(a+"rope.freq_base", 10000)
	if s.ropeLin != 0 {
		w.SetString(a+"rope.scaling.type", "linear")
		w.SetFloat32(a+"rope.scaling.factor", s.ropeLin)
	}
	// A byte-level BPE vocabulary: bytes, two specials, two merges.
	toks := make([]string, s.vocab)
	types := make([]int32, s.vocab)
	for i := 0; i < 256; i++ {
		toks[i] = string(tokenizer.ByteToUnicode(byte(i)))
		types[i] = 1
	}
	toks[256], types[256] = "<|endoftext|>", 3
	toks[257], types[257] = "<|im_end|>", 3
	toks[258], types[258] = tokenizer.EncodeBytes(" t"), 1
	toks[259], types[259] = "he", 1
	for i := 260; i < s.vocab; i++ {
		toks[i], types[i] = fmt.Sprintf("[PAD%d]", i), 4
	}
	w.SetString("tokenizer.ggml.model", "gpt2")
	w.SetString("tokenizer.ggml.pre", "qwen2")
	w.SetStrings("tokenizer.ggml.tokens", toks)
	w.SetInt32s("tokenizer.ggml.token_type", types)
	w.SetStrings("tokenizer.ggml.merges", []string{tokenizer.EncodeBytes(" ") + " t", "h e"})
	w.SetUint32("tokenizer.ggml.eos_token_id", 256)
	w.SetBool("tokenizer.ggml.add_bos_token", false)
	vals := map[string][]float32{}
	for _, tt := range tensors {
		if tt.name == s.skip {
			continue
		}
		data, err := quant.Quantize(tt.typ, tt.vals)
		if err != nil {
			t.Fatalf("quantize %s: %v", tt.name, err)
		}
		deq := make([]float32, len(tt.vals))
		if err := quant.Dequantize(tt.typ, data, deq); err != nil {
			t.Fatalf("dequantize %s: %v", tt.name, err)
		}
		vals[tt.name] = deq
		dims := tt.dims
		if s.mutate != nil {
			dims = s.mutate(tt.name, dims)
			if nd := dims; len(nd) != len(tt.dims) || nd[0] != tt.dims[0] || (len(nd) > 1 && nd[1] != tt.dims[1]) {
				// Re-encode zeros of the mutated shape so the file is well formed.
				n := 1
				for _, x := range nd {
					n *= int(x)
				}
				if data, err = quant.Quantize(tt.typ, make([]float32, n)); err != nil {
					t.Fatalf("quantize mutated %s: %v", tt.name, err)
				}
			}
		}
		if err := w.AddTensor(tt.name, tt.typ, dims, data); err != nil {
			t.Fatalf("add %s: %v", tt.name, err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), vals
}

// load builds and loads a test model.
func (s spec) load(t testing.TB) (*Model, map[string][]float32) {
	t.Helper()
	data, vals := s.build(t)
	if s.misalign {
		data = append([]byte{0}, data...)[1:]
	}
	f, err := gguf.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	m, err := FromFile(f, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return m, vals
}

// reference computes logits for every position of toks in float64 from the
// dequantised weights, straight from the definitions.
func (s spec) reference(vals map[string][]float32, toks []int32) [][]float64 {
	hd := s.embd / s.heads
	mat := func(name string, rows, cols int, x []float64) []float64 {
		w := vals[name]
		out := make([]float64, rows)
		for r := 0; r < rows; r++ {
			var sum float64
			for c := 0; c < cols; c++ {
				sum += float64(w[r*cols+c]) * x[c]
			}
			out[r] = sum
		}
		return out
	}
	norm := func(x []float64, w []float32) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		sc := 1 / math.Sqrt(ss/float64(len(x))+1e-5)
		out := make([]float64, len(x))
		for i := range x {
			out[i] = x[i] * sc * float64(w[i])
		}
		return out
	}
	freq := func(i int) float64 {
		f := math.Pow(10000, -2*float64(i)/float64(hd))
		if s.ropeLin != 0 {
			f /= float64(s.ropeLin)
		}
		if s.ropeFreq {
			f /= float64(vals["rope_freqs.weight"][i])
		}
		return f
	}
	rope := func(x []float64, pos int) {
		for h := 0; h < len(x)/hd; h++ {
			v := x[h*hd : (h+1)*hd]
			for i := 0; i < hd/2; i++ {
				a, b := 2*i, 2*i+1
				if s.arch == "qwen2" {
					a, b = i, i+hd/2
				}
				th := float64(pos) * freq(i)
				x0, x1 := v[a], v[b]
				v[a] = x0*math.Cos(th) - x1*math.Sin(th)
				v[b] = x0*math.Sin(th) + x1*math.Cos(th)
			}
		}
	}
	n := len(toks)
	xs := make([][]float64, n)
	for p, id := range toks {
		e := vals["token_embd.weight"][int(id)*s.embd : (int(id)+1)*s.embd]
		xs[p] = make([]float64, s.embd)
		for i, v := range e {
			xs[p][i] = float64(v)
		}
	}
	for l := 0; l < s.layers; l++ {
		pf := fmt.Sprintf("blk.%d.", l)
		ks, vs := make([][]float64, n), make([][]float64, n)
		qs := make([][]float64, n)
		for p := range xs {
			xn := norm(xs[p], vals[pf+"attn_norm.weight"])
			qs[p] = mat(pf+"attn_q.weight", s.heads*hd, s.embd, xn)
			ks[p] = mat(pf+"attn_k.weight", s.kvHeads*hd, s.embd, xn)
			vs[p] = mat(pf+"attn_v.weight", s.kvHeads*hd, s.embd, xn)
			if s.arch == "qwen2" {
				for i := range qs[p] {
					qs[p][i] += float64(vals[pf+"attn_q.bias"][i])
				}
				for i := range ks[p] {
					ks[p][i] += float64(vals[pf+"attn_k.bias"][i])
					vs[p][i] += float64(vals[pf+"attn_v.bias"][i])
				}
			}
			rope(qs[p], p)
			rope(ks[p], p)
			// The cache holds float16 keys and values.
			for i := range ks[p] {
				ks[p][i] = float64(quant.FP16ToFP32(quant.FP32ToFP16(float32(ks[p][i]))))
				vs[p][i] = float64(quant.FP16ToFP32(quant.FP32ToFP16(float32(vs[p][i]))))
			}
		}
		for p := range xs {
			att := make([]float64, s.heads*hd)
			for h := 0; h < s.heads; h++ {
				kh := h / (s.heads / s.kvHeads)
				sc := make([]float64, p+1)
				mx := math.Inf(-1)
				for j := 0; j <= p; j++ {
					var d float64
					for i := 0; i < hd; i++ {
						d += qs[p][h*hd+i] * ks[j][kh*hd+i]
					}
					sc[j] = d / math.Sqrt(float64(hd))
					mx = math.Max(mx, sc[j])
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - mx)
					sum += sc[j]
				}
				for j := range sc {
					for i := 0; i < hd; i++ {
						att[h*hd+i] += sc[j] / sum * vs[j][kh*hd+i]
					}
				}
			}
			o := mat(pf+"attn_output.weight", s.embd, s.heads*hd, att)
			for i := range o {
				xs[p][i] += o[i]
			}
			xn := norm(xs[p], vals[pf+"ffn_norm.weight"])
			g := mat(pf+"ffn_gate.weight", s.ff, s.embd, xn)
			u := mat(pf+"ffn_up.weight", s.ff, s.embd, xn)
			for i := range g {
				g[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			d := mat(pf+"ffn_down.weight", s.embd, s.ff, g)
			for i := range d {
				xs[p][i] += d[i]
			}
		}
	}
	out := make([][]float64, n)
	head := "output.weight"
	if s.tied {
		head = "token_embd.weight"
	}
	for p := range xs {
		out[p] = mat(head, s.vocab, s.embd, norm(xs[p], vals["output_norm.weight"]))
	}
	return out
}

func testPrompt(n int, seed uint64) []int32 {
	r := rng(seed)
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(32 + r.next()>>40%90)
	}
	return p
}

func TestForwardMatchesReference(t *testing.T) {
	tests := []struct {
		name string
		spec spec
		// max |logit - reference|, relative to the logits' RMS. Float
		// weights: the float16 KV cache can round a key one float16 step
		// away from the reference's (1e-3 relative).
		tol float64
	}{
		{"llama/F32", defaultSpec("llama", gguf.TypeF32), 1e-3},
		{"qwen2/F32", defaultSpec("qwen2", gguf.TypeF32), 1e-3},
		{"llama/F32 tied rope_freqs", func() spec { s := defaultSpec("llama", gguf.TypeF32); s.tied, s.ropeFreq = true, true; return s }(), 1e-3},
		{"qwen2/F32 linear rope 4 kv heads", func() spec { s := defaultSpec("qwen2", gguf.TypeF32); s.ropeLin, s.kvHeads = 2, 4; return s }(), 1e-3},
		{"llama/F16", defaultSpec("llama", gguf.TypeF16), 1e-3},
		{"llama/F32 misaligned in memory", func() spec { s := defaultSpec("llama", gguf.TypeF32); s.misalign = true; return s }(), 1e-3},
		{"llama/BF16", defaultSpec("llama", gguf.TypeBF16), 1e-3},
		// Quantised types also quantise the activations (to 8 bits), so
		// they match the float64 reference less tightly.
		{"llama/Q8_0", defaultSpec("llama", gguf.TypeQ8_0), 0.12},
		{"qwen2/Q4_0", defaultSpec("qwen2", gguf.TypeQ4_0), 0.12},
		{"llama/Q4_K", defaultSpec("llama", gguf.TypeQ4_K), 0.12},
		{"qwen2/Q6_K", defaultSpec("qwen2", gguf.TypeQ6_K), 0.12},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, vals := tc.spec.load(t)
			toks := testPrompt(12, 3)
			want := tc.spec.reference(vals, toks)
			kv := newKVCache(m, len(toks))
			var ft []fwdToken
			for p, id := range toks {
				ft = append(ft, fwdToken{id: id, pos: p, kv: kv, logits: true})
			}
			var sc scratch
			n := m.forward(&sc, &pool{threads: 2}, ft)
			if n != len(toks) {
				t.Fatalf("forward returned %d logit rows, want %d", n, len(toks))
			}
			for p := range toks {
				var rms float64
				for _, v := range want[p] {
					rms += v * v
				}
				rms = math.Sqrt(rms / float64(len(want[p])))
				for i, w := range want[p] {
					got := float64(sc.logits[p*m.hp.nVocab+i])
					if math.Abs(got-w) > tc.tol*rms {
						t.Fatalf("position %d logit %d = %v, reference %v (rms %v)", p, i, got, w, rms)
					}
				}
			}
		})
	}
}

func TestLoadValidation(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*spec)
		wantErr string
	}{
		{"wrong q shape", func(s *spec) {
			s.mutate = func(name string, d []uint64) []uint64 {
				if name == "blk.1.attn_q.weight" {
					return []uint64{d[0], d[1] / 2}
				}
				return d
			}
		}, "blk.1.attn_q.weight"},
		{"missing ffn_down", func(s *spec) { s.skip = "blk.0.ffn_down.weight" }, "blk.0.ffn_down.weight"},
		{"missing qwen2 bias", func(s *spec) { s.arch = "qwen2"; s.skip = "blk.0.attn_k.bias" }, "blk.0.attn_k.bias"},
		{"unsupported arch", func(s *spec) { s.arch = "gpt2" }, `architecture "gpt2"`},
		{"heads not multiple", func(s *spec) { s.kvHeads = 3 }, "kv head count"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := defaultSpec("llama", gguf.TypeF32)
			tc.mod(&s)
			if s.kvHeads == 3 {
				s.embd, s.heads = 192, 3 // keep shapes consistent, fail on metadata
				s.kvHeads = 2
				s.heads = 3
			}
			data, _ := s.build(t)
			f, err := gguf.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			_, err = FromFile(f, LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("FromFile error = %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}
