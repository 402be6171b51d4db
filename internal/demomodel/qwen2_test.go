package demomodel

import (
	"fmt"
	"os"
	"testing"

	"github.com/mycel-network/mycel/internal/gguf"
	"github.com/mycel-network/mycel/internal/quant"
)

// TestPeerFileLayout checks what llama.cpp keys on in the peer-check files:
// the qwen2 variant's architecture metadata and bias tensors, and the
// tensor types of the F16, BF16 and Q4_0 encodings.
func TestPeerFileLayout(t *testing.T) {
	gs := generated(t)
	open := func(name string) *gguf.File {
		t.Helper()
		raw, err := os.ReadFile(gs[name].Path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return f
	}

	f := open("mycel-ref-qwen2")
	if arch, _ := f.String("general.architecture"); arch != "qwen2" {
		t.Errorf("general.architecture %q, want qwen2", arch)
	}
	for _, k := range []string{"qwen2.block_count", "qwen2.embedding_length", "qwen2.attention.head_count_kv", "qwen2.rope.freq_base"} {
		if _, ok := f.Get(k); !ok {
			t.Errorf("metadata %s missing", k)
		}
	}
	if _, ok := f.Get("llama.block_count"); ok {
		t.Error("qwen2 file carries llama.* metadata")
	}
	rc := refRecipe()
	for l := 0; l < rc.layers; l++ {
		for _, b := range []struct {
			name string
			n    int
		}{{"attn_q.bias", rc.dModel}, {"attn_k.bias", rc.kvDim()}, {"attn_v.bias", rc.kvDim()}} {
			name := fmt.Sprintf("blk.%d.%s", l, b.name)
			ti, data, err := f.Tensor(name)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			if ti.Type != gguf.TypeF32 || len(ti.Dims) != 1 || ti.Dims[0] != uint64(b.n) {
				t.Errorf("%s: type %v dims %v, want F32 [%d]", name, ti.Type, ti.Dims, b.n)
				continue
			}
			v := make([]float32, b.n)
			if err := quant.Dequantize(ti.Type, data, v); err != nil {
				t.Fatal(err)
			}
			zeros := 0
			for _, x := range v {
				if x == 0 {
					zeros++
				}
			}
			if zeros > 0 {
				t.Errorf("%s: %d of %d values are zero", name, zeros, b.n)
			}
		}
	}

	tests := []struct {
		model          string
		fileType       uint64
		matrix, output gguf.Type
	}{
		{"mycel-ref-f16", 1, gguf.TypeF16, gguf.TypeF16},
		{"mycel-ref-bf16", 32, gguf.TypeBF16, gguf.TypeBF16},
		{"mycel-ref-q4_0", 2, gguf.TypeQ4_0, gguf.TypeQ6_K},
		{"mycel-ref-qwen2", 0, gguf.TypeF32, gguf.TypeF32},
	}
	for _, tc := range tests {
		f := open(tc.model)
		if ft, err := f.Uint("general.file_type"); err != nil || ft != tc.fileType {
			t.Errorf("%s: general.file_type %d (%v), want %d", tc.model, ft, err, tc.fileType)
		}
		for _, ti := range f.Tensors {
			want := tc.matrix
			switch {
			case len(ti.Dims) == 1:
				want = gguf.TypeF32
			case ti.Name == "output.weight":
				want = tc.output
			}
			if ti.Type != want {
				t.Errorf("%s: tensor %s is %v, want %v", tc.model, ti.Name, ti.Type, want)
			}
		}
	}
}
