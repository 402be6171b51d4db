package quant

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mycel-network/mycel/internal/gguf"
)

// TestKernelsMatchGeneric checks that the kernels in use (assembly where the
// CPU allows) give bit-identical results to the portable Go definitions, on
// arbitrary bytes (including int8 -128 and every nibble value).
func TestKernelsMatchGeneric(t *testing.T) {
	t.Logf("assembly kernels in use: %v", useAVX2)
	r := lcg(99)
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.next() >> 56)
		}
		return b
	}
	randInt8 := func(n int) []int8 {
		b := make([]int8, n)
		for i := range b {
			b[i] = int8(int(r.next()>>56)%255 - 127) // activations are in [-127, 127]
		}
		return b
	}
	for _, n := range []int{1, 8, 13, 64, 128} {
		v := make([]uint16, n)
		a := make([]float32, n)
		for i := range v {
			v[i] = FP32ToFP16(r.uniform() * 3)
			a[i] = r.uniform()
		}
		b := append([]float32(nil), a...)
		axpyF16(a, v, 0.37)
		axpyF16Generic(b, v, 0.37)
		if diff := cmp.Diff(b, a); diff != "" {
			t.Errorf("axpyF16 n=%d (-generic +fast):\n%s", n, diff)
		}
	}
	for _, n := range []int{32, 64, 96, 256, 1024, 4096 + 32} {
		w := make([]float32, n)
		x := make([]float32, n)
		h := make([]uint16, n)
		for i := range w {
			w[i] = r.uniform() * 3
			x[i] = r.uniform()
			h[i] = FP32ToFP16(r.uniform() * 2)
		}
		if got, want := dotF32x32(w, x), dotF32x32Generic(w, x); math.Float32bits(got) != math.Float32bits(want) {
			t.Errorf("dotF32x32 n=%d: %v, generic %v", n, got, want)
		}
		if got, want := dotF16x32(h, x), dotF16x32Generic(h, x); math.Float32bits(got) != math.Float32bits(want) {
			t.Errorf("dotF16x32 n=%d: %v, generic %v", n, got, want)
		}
	}
	// Fused Q8_0/Q4_0 row kernels against the generic definition, with
	// float16 scales of every kind (normal, subnormal, zero).
	for _, nb := range []int{1, 5, 300} {
		x := make([]float32, nb*32)
		for i := range x {
			x[i] = r.uniform() * 4
		}
		var v Vec
		v.Load(x)
		v.Prepare(gguf.TypeQ8_0)
		for _, tc := range []struct {
			name       string
			blockBytes int
			fast, slow func([]byte, *Vec) float32
		}{
			{"q8_0", q8_0Bytes, dotQ8_0, dotQ8_0Generic},
			{"q4_0", q4_0Bytes, dotQ4_0, dotQ4_0Generic},
		} {
			w := randBytes(nb * tc.blockBytes)
			for b := 0; b < nb; b++ {
				// Keep scales finite: clear the exponent's top bit.
				w[b*tc.blockBytes+1] &= 0x3f
			}
			if got, want := tc.fast(w, &v), tc.slow(w, &v); math.Float32bits(got) != math.Float32bits(want) {
				t.Errorf("%s nb=%d: %v, generic %v", tc.name, nb, got, want)
			}
		}
	}
	// Fused Q4_K/Q6_K row kernels against the generic definition.
	for _, nb := range []int{1, 2, 9} {
		x := make([]float32, nb*QKK)
		for i := range x {
			x[i] = r.uniform() * 4
		}
		var v Vec
		v.Load(x)
		v.Prepare(gguf.TypeQ4_K)
		for _, tc := range []struct {
			name       string
			blockBytes int
			dOffs      []int
			fast, slow func([]byte, *Vec) float32
		}{
			{"q4_K", q4KBytes, []int{1, 3}, dotQ4K, dotQ4KGeneric},
			{"q6_K", q6KBytes, []int{209}, dotQ6K, dotQ6KGeneric},
		} {
			for trial := 0; trial < 20; trial++ {
				w := randBytes(nb * tc.blockBytes)
				for b := 0; b < nb; b++ {
					for _, o := range tc.dOffs {
						w[b*tc.blockBytes+o] &= 0x3f // finite float16 scales
					}
				}
				if got, want := tc.fast(w, &v), tc.slow(w, &v); math.Float32bits(got) != math.Float32bits(want) {
					t.Fatalf("%s nb=%d: %v, generic %v", tc.name, nb, got, want)
				}
			}
		}
	}
	for _, nb := range []int{1, 3, 17} {
		tests := []struct {
			name          string
			blockBytes    int
			elems, perBlk int
			fast, generic func(w []byte, x []int8, out []int32)
		}{
			{"q80", q8_0Bytes, 32, 1, q80Sums, q80SumsGeneric},
			{"q40", q4_0Bytes, 32, 1, q40Sums, q40SumsGeneric},
			{"q4K", q4KBytes, QKK, 8, q4KSums, q4KSumsGeneric},
			{"q6K", q6KBytes, QKK, 16, q6KSums, q6KSumsGeneric},
		}
		for _, tc := range tests {
			w := randBytes(nb * tc.blockBytes)
			x := randInt8(nb * tc.elems)
			got := make([]int32, nb*tc.perBlk)
			want := make([]int32, nb*tc.perBlk)
			tc.fast(w, x, got)
			tc.generic(w, x, want)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s nb=%d (-generic +fast):\n%s", tc.name, nb, diff)
			}
		}
	}
}

// TestDotVec4 checks that the four-vector kernels equal four DotVec calls
// bit for bit, for every type.
func TestDotVec4(t *testing.T) {
	r := lcg(5)
	const n = 3 * QKK
	var vecs [4]*Vec
	for i := range vecs {
		x := make([]float32, n)
		for j := range x {
			x[j] = r.uniform() * float32(i+1)
		}
		vecs[i] = &Vec{}
		vecs[i].Load(x)
	}
	w := make([]float32, n)
	for j := range w {
		w[j] = r.uniform()
	}
	rows := map[gguf.Type][][]byte{}
	for _, typ := range allTypes {
		row, err := Quantize(typ, w)
		if err != nil {
			t.Fatal(err)
		}
		rows[typ] = append(rows[typ], row)
	}
	// Arbitrary bytes with finite float16 scales.
	for _, tc := range []struct {
		typ        gguf.Type
		blockBytes int
		dOffs      []int
	}{{gguf.TypeQ4_K, q4KBytes, []int{1, 3}}, {gguf.TypeQ6_K, q6KBytes, []int{209}}, {gguf.TypeQ8_0, q8_0Bytes, []int{1}}, {gguf.TypeQ4_0, q4_0Bytes, []int{1}}} {
		nb := n / BlockSize(tc.typ)
		for trial := 0; trial < 10; trial++ {
			row := make([]byte, nb*tc.blockBytes)
			for i := range row {
				row[i] = byte(r.next() >> 56)
			}
			for b := 0; b < nb; b++ {
				for _, o := range tc.dOffs {
					row[b*tc.blockBytes+o] &= 0x3f
				}
			}
			rows[tc.typ] = append(rows[tc.typ], row)
		}
	}
	for _, typ := range allTypes {
		for _, row := range rows[typ] {
			var got [4]float32
			DotVec4(typ, row, &vecs, &got)
			for i, v := range vecs {
				if want := DotVec(typ, row, v); math.Float32bits(got[i]) != math.Float32bits(want) {
					t.Errorf("%v vector %d: DotVec4 %v, DotVec %v", typ, i, got[i], want)
				}
			}
		}
	}
}

// TestDotVec4F32Tail covers rows whose length is not a multiple of 32.
func TestDotVec4F32Tail(t *testing.T) {
	r := lcg(8)
	for _, n := range []int{8, 40, 100} {
		var vecs [4]*Vec
		for i := range vecs {
			x := make([]float32, n)
			for j := range x {
				x[j] = r.uniform()
			}
			vecs[i] = &Vec{}
			vecs[i].Load(x)
		}
		w := make([]float32, n)
		for j := range w {
			w[j] = r.uniform()
		}
		row, err := Quantize(gguf.TypeF32, w)
		if err != nil {
			t.Fatal(err)
		}
		var got [4]float32
		DotVec4(gguf.TypeF32, row, &vecs, &got)
		for i, v := range vecs {
			if want := DotVec(gguf.TypeF32, row, v); math.Float32bits(got[i]) != math.Float32bits(want) {
				t.Errorf("n=%d vector %d: DotVec4 %v, DotVec %v", n, i, got[i], want)
			}
		}
	}
}
