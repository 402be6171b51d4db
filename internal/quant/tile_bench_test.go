package quant

import (
	"testing"

	"github.com/mycel-network/mycel/internal/gguf"
)

// BenchmarkTile compares the 4×4 tile with four DotVec4 calls on a
// 1024-wide row block.
func BenchmarkTile(b *testing.B) {
	const n = 1024
	r := lcg(3)
	var vecs [4]*Vec
	for i := range vecs {
		x := make([]float32, n)
		for j := range x {
			x[j] = r.uniform()
		}
		vecs[i] = &Vec{}
		vecs[i].Load(x)
	}
	w := make([]float32, 4*n)
	for j := range w {
		w[j] = r.uniform()
	}
	for _, typ := range []gguf.Type{gguf.TypeF32, gguf.TypeQ8_0, gguf.TypeQ4_K} {
		rows, err := Quantize(typ, w)
		if err != nil {
			b.Fatal(err)
		}
		rb := len(rows) / 4
		var out [4][4]float32
		b.Run(typ.String()+"/tile", func(b *testing.B) {
			for b.Loop() {
				DotVec4x4(typ, rows, rb, &vecs, &out)
			}
		})
		vs := make([]Vec, 64)
		for i := range vs {
			vs[i].Load(vecs[i%4].Values())
		}
		res := make([]float32, 64*4)
		b.Run(typ.String()+"/4x64", func(b *testing.B) {
			for b.Loop() {
				DotVec4xN(typ, rows, rb, vs, res, 4)
			}
		})
		b.Run(typ.String()+"/x4", func(b *testing.B) {
			for b.Loop() {
				for k := 0; k < 4; k++ {
					DotVec4(typ, rows[k*rb:(k+1)*rb], &vecs, &out[k])
				}
			}
		})
	}
}
