package demomodel

import "strings"

// Bias scales of the qwen2 variant: uniform in [-g, g). The q and k
// projections of the random layers are of order 0.6, v of order 0.2, so
// the biases move every attention score and value measurably without
// drowning the weights' signal.
const (
	qwen2BiasQK = 0.25
	qwen2BiasV  = 0.1
)

// toQwen2 rewrites a llama float model as a qwen2 one, the layout llama.cpp
// loads for general.architecture "qwen2":
//
//   - RoPE rotates the pairs (i, i+head_dim/2) of each head (NEOX layout)
//     instead of (2i, 2i+1), so the rows of attn_q and attn_k are permuted
//     within each head: NEOX row i is llama row 2i, row i+head_dim/2 is row
//     2i+1. q·k, and so the attention, is unchanged by the permutation
//     (this is the inverse of the permutation convert_hf_to_gguf.py applies
//     to Hugging Face llama checkpoints);
//   - every layer gets attn_q.bias, attn_k.bias and attn_v.bias (F32), small
//     pseudo-random values, so the model is not the llama one in disguise:
//     an engine that skips the biases or adds them after RoPE disagrees.
//
// The result shares no storage with m.
func toQwen2(m *floatModel, seed uint64) *floatModel {
	hd := m.headDim()
	rng := splitmix64{s: seed ^ 0x7177656e32} // "qwen2"
	out := &floatModel{shape: m.shape}
	for _, t := range m.tensors {
		nt := tensor{name: t.name, dims: t.dims, data: append([]float32(nil), t.data...)}
		kind := ""
		switch {
		case strings.HasSuffix(t.name, ".attn_q.weight"):
			kind = "q"
		case strings.HasSuffix(t.name, ".attn_k.weight"):
			kind = "k"
		case strings.HasSuffix(t.name, ".attn_v.weight"):
			kind = "v"
		}
		if kind == "q" || kind == "k" {
			rowLen := int(t.dims[0])
			for r := 0; r < int(t.dims[1]); r++ {
				h, i := r/hd, r%hd
				src := h*hd + 2*i
				if i >= hd/2 {
					src = h*hd + 2*(i-hd/2) + 1
				}
				copy(nt.data[r*rowLen:(r+1)*rowLen], t.data[src*rowLen:(src+1)*rowLen])
			}
		}
		out.tensors = append(out.tensors, nt)
		if kind == "" {
			continue
		}
		g := qwen2BiasQK
		if kind == "v" {
			g = qwen2BiasV
		}
		n := int(t.dims[1])
		b := tensor{name: strings.TrimSuffix(t.name, "weight") + "bias", dims: []uint64{uint64(n)}, data: make([]float32, n)}
		for i := range b.data {
			b.data[i] = float32(float64(rng.uniform() * g))
		}
		out.tensors = append(out.tensors, b)
	}
	return out
}
