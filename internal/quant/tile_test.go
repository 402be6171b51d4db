package quant

import (
	"math"
	"testing"

	"github.com/mycel-network/mycel/internal/gguf"
)

// TestDotVec4x4 checks that the row×vector tile equals DotVec bit for bit
// for every type, on quantised random rows and on arbitrary encoded bytes
// (every int8 value, finite float16 scales of every kind), with vectors of
// different magnitudes including an all-zero one.
func TestDotVec4x4(t *testing.T) {
	t.Logf("tile kernels in use: %v", tileQ80Aux())
	r := lcg(11)
	for _, n := range []int{QKK, 3 * QKK, 1024, 17 * QKK} {
		var vecs [4]*Vec
		for i := range vecs {
			x := make([]float32, n)
			if i != 3 {
				for j := range x {
					x[j] = r.uniform() * float32(1+7*i)
				}
			}
			vecs[i] = &Vec{}
			vecs[i].Load(x)
		}
		for _, typ := range allTypes {
			var rows []byte
			rowBytes, err := RowBytes(typ, n)
			if err != nil {
				t.Fatal(err)
			}
			for k := 0; k < 4; k++ {
				w := make([]float32, n)
				for j := range w {
					w[j] = r.uniform() * float32(k+1)
				}
				row, err := Quantize(typ, w)
				if err != nil {
					t.Fatal(err)
				}
				rows = append(rows, row...)
			}
			check := func(name string, rows []byte) {
				t.Helper()
				var got [4][4]float32
				DotVec4x4(typ, rows, rowBytes, &vecs, &got)
				for k := 0; k < 4; k++ {
					for i, v := range vecs {
						want := DotVec(typ, rows[k*rowBytes:(k+1)*rowBytes], v)
						if math.Float32bits(got[k][i]) != math.Float32bits(want) {
							t.Errorf("%v n=%d %s row %d vector %d: DotVec4x4 %v, DotVec %v", typ, n, name, k, i, got[k][i], want)
						}
					}
				}
			}
			check("quantised", rows)
			if raw := rawScaleOffsets[typ]; raw != nil {
				blockBytes := rowBytes * BlockSize(typ) / n
				for trial := 0; trial < 10; trial++ {
					raw := make([]byte, 4*rowBytes)
					for i := range raw {
						raw[i] = byte(r.next() >> 56)
					}
					for b := 0; b < len(raw)/blockBytes; b++ {
						for _, o := range rawScaleOffsets[typ] {
							raw[b*blockBytes+o] &= 0x3f // finite float16 scale
						}
					}
					check("raw", raw)
				}
			}
		}
	}
}

// rawScaleOffsets are the bytes of each block holding the high byte of a
// float16 scale, for the types tested with arbitrary encoded bytes.
var rawScaleOffsets = map[gguf.Type][]int{
	gguf.TypeQ8_0: {1},
	gguf.TypeQ4_K: {1, 3},
}

// TestDotVec4x4F32Tail covers F32 rows whose length is not a multiple of 32.
func TestDotVec4x4F32Tail(t *testing.T) {
	r := lcg(12)
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
		w := make([]float32, 4*n)
		for j := range w {
			w[j] = r.uniform()
		}
		rows, err := Quantize(gguf.TypeF32, w)
		if err != nil {
			t.Fatal(err)
		}
		var got [4][4]float32
		DotVec4x4(gguf.TypeF32, rows, 4*n, &vecs, &got)
		for k := 0; k < 4; k++ {
			for i, v := range vecs {
				if want := DotVec(gguf.TypeF32, rows[k*4*n:(k+1)*4*n], v); math.Float32bits(got[k][i]) != math.Float32bits(want) {
					t.Errorf("n=%d row %d vector %d: DotVec4x4 %v, DotVec %v", n, k, i, got[k][i], want)
				}
			}
		}
	}
}

// TestDotVec4xN checks the four-row kernel over any number of vectors
// against DotVec bit for bit, for every type, on quantised rows and (for the
// types with tile kernels) arbitrary encoded bytes, writing with a stride.
func TestDotVec4xN(t *testing.T) {
	r := lcg(13)
	for _, n := range []int{1024, 17 * QKK} {
		for _, nv := range []int{1, 4, 7, 12, 23} {
			vs := make([]Vec, nv)
			for i := range vs {
				x := make([]float32, n)
				for j := range x {
					x[j] = r.uniform() * float32(1+i%5)
				}
				vs[i].Load(x)
			}
			w := make([]float32, 4*n)
			for j := range w {
				w[j] = r.uniform()
			}
			for _, typ := range allTypes {
				rows, err := Quantize(typ, w)
				if err != nil {
					t.Fatal(err)
				}
				rowBytes := len(rows) / 4
				cases := [][]byte{rows}
				if offs := rawScaleOffsets[typ]; offs != nil {
					blockBytes := rowBytes * BlockSize(typ) / n
					for trial := 0; trial < 3; trial++ {
						raw := make([]byte, len(rows))
						for i := range raw {
							raw[i] = byte(r.next() >> 56)
						}
						for b := 0; b < len(raw)/blockBytes; b++ {
							for _, o := range offs {
								raw[b*blockBytes+o] &= 0x3f // finite float16 scale
							}
						}
						cases = append(cases, raw)
					}
				}
				for ci, rows := range cases {
					const stride = 6
					out := make([]float32, nv*stride)
					DotVec4xN(typ, rows, rowBytes, vs, out, stride)
					for b := range vs {
						for k := 0; k < 4; k++ {
							want := DotVec(typ, rows[k*rowBytes:(k+1)*rowBytes], &vs[b])
							if got := out[b*stride+k]; math.Float32bits(got) != math.Float32bits(want) {
								t.Errorf("%v n=%d vectors=%d case %d vector %d row %d: DotVec4xN %v, DotVec %v", typ, n, nv, ci, b, k, got, want)
							}
						}
					}
				}
			}
		}
	}
}

// TestF16Rows checks the attention kernels over positions against one
// DotF16 / AxpyF16 call per position, bit for bit, for head sizes with and
// without the assembly path.
func TestF16Rows(t *testing.T) {
	r := lcg(14)
	for _, hd := range []int{8, 40, 64, 128} {
		for _, npos := range []int{1, 3, 33} {
			const heads = 3
			stride := heads * hd
			k := make([]uint16, npos*stride)
			for i := range k {
				k[i] = FP32ToFP16(r.uniform() * 3)
			}
			q := make([]float32, hd)
			for i := range q {
				q[i] = r.uniform()
			}
			off := hd // second head
			got := make([]float32, npos)
			DotF16Rows(k[off:], stride, q, got)
			p := make([]float32, npos)
			for j := range got {
				want := DotF16(k[off+j*stride:off+j*stride+hd], q)
				if math.Float32bits(got[j]) != math.Float32bits(want) {
					t.Errorf("DotF16Rows hd=%d npos=%d pos %d: %v, DotF16 %v", hd, npos, j, got[j], want)
				}
				p[j] = r.uniform()
			}
			gotOut := make([]float32, hd)
			wantOut := make([]float32, hd)
			for i := range gotOut {
				gotOut[i] = r.uniform()
				wantOut[i] = gotOut[i]
			}
			AxpyF16Rows(gotOut, k[off:], stride, p)
			for j := range p {
				AxpyF16(wantOut, k[off+j*stride:off+j*stride+hd], p[j])
			}
			for i := range gotOut {
				if math.Float32bits(gotOut[i]) != math.Float32bits(wantOut[i]) {
					t.Errorf("AxpyF16Rows hd=%d npos=%d element %d: %v, AxpyF16 %v", hd, npos, i, gotOut[i], wantOut[i])
				}
			}
		}
	}
}

// TestDotRows checks the many-rows single-vector kernel against DotVec bit
// for bit, for every type and for F32 rows with and without a 32-multiple
// length.
func TestDotRows(t *testing.T) {
	r := lcg(15)
	for _, n := range []int{40, 256, 1024} {
		x := make([]float32, n)
		for i := range x {
			x[i] = r.uniform()
		}
		var v Vec
		v.Load(x)
		w := make([]float32, 5*n)
		for i := range w {
			w[i] = r.uniform()
		}
		for _, typ := range allTypes {
			if n%BlockSize(typ) != 0 {
				continue
			}
			rows, err := Quantize(typ, w)
			if err != nil {
				t.Fatal(err)
			}
			rowBytes := len(rows) / 5
			got := make([]float32, 5)
			DotRows(typ, rows, rowBytes, &v, got)
			for k := range got {
				if want := DotVec(typ, rows[k*rowBytes:(k+1)*rowBytes], &v); math.Float32bits(got[k]) != math.Float32bits(want) {
					t.Errorf("%v n=%d row %d: DotRows %v, DotVec %v", typ, n, k, got[k], want)
				}
			}
		}
	}
}
