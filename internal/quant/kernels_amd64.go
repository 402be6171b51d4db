//go:build amd64 && !purego

package quant

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly kernels; it is decided once at start and never
// changes. F16C (CPUID.1:ECX bit 29) is checked directly.
var useAVX2 = cpu.X86.HasAVX2 && cpuid1ECX()&(1<<29) != 0

func cpuid1ECX() uint32

//go:noescape
func dotF32x32AVX2(w, x *float32, n int) float32

//go:noescape
func dotF16x32AVX2(w *uint16, x *float32, n int) float32

//go:noescape
func q80SumsAVX2(w *byte, x *int8, nb int, out *int32)

//go:noescape
func q40SumsAVX2(w *byte, x *int8, nb int, out *int32)

//go:noescape
func q4KSumsAVX2(w *byte, x *int8, nb int, out *int32)

//go:noescape
func q6KSumsAVX2(w *byte, x *int8, nb int, out *int32)

func dotF32x32(w, x []float32) float32 {
	if useAVX2 && len(x) > 0 {
		_ = w[len(x)-1]
		return dotF32x32AVX2(&w[0], &x[0], len(x))
	}
	return dotF32x32Generic(w, x)
}

func dotF16x32(w []uint16, x []float32) float32 {
	if useAVX2 && len(x) > 0 {
		_ = w[len(x)-1]
		return dotF16x32AVX2(&w[0], &x[0], len(x))
	}
	return dotF16x32Generic(w, x)
}

func q80Sums(w []byte, x []int8, out []int32) {
	if useAVX2 && len(out) > 0 {
		_ = w[len(out)*q8_0Bytes-1]
		_ = x[len(out)*32-1]
		q80SumsAVX2(&w[0], &x[0], len(out), &out[0])
		return
	}
	q80SumsGeneric(w, x, out)
}

func q40Sums(w []byte, x []int8, out []int32) {
	if useAVX2 && len(out) > 0 {
		_ = w[len(out)*q4_0Bytes-1]
		_ = x[len(out)*32-1]
		q40SumsAVX2(&w[0], &x[0], len(out), &out[0])
		return
	}
	q40SumsGeneric(w, x, out)
}

func q4KSums(w []byte, x []int8, out []int32) {
	nb := len(out) / 8
	if useAVX2 && nb > 0 {
		_ = w[nb*q4KBytes-1]
		_ = x[nb*QKK-1]
		q4KSumsAVX2(&w[0], &x[0], nb, &out[0])
		return
	}
	q4KSumsGeneric(w, x, out)
}

func q6KSums(w []byte, x []int8, out []int32) {
	nb := len(out) / 16
	if useAVX2 && nb > 0 {
		_ = w[nb*q6KBytes-1]
		_ = x[nb*QKK-1]
		q6KSumsAVX2(&w[0], &x[0], nb, &out[0])
		return
	}
	q6KSumsGeneric(w, x, out)
}

//go:noescape
func dotQ80AVX2(w *byte, xq *int8, xd *float32, nb int) float32

//go:noescape
func dotQ40AVX2(w *byte, xq *int8, xd *float32, nb int) float32

//go:noescape
func dotQ80x4AVX2(w *byte, xq *[4]*int8, xd *[4]*float32, nb int, out *[4]float32)

//go:noescape
func dotQ40x4AVX2(w *byte, xq *[4]*int8, xd *[4]*float32, nb int, out *[4]float32)

// dotQ80Fused and dotQ40Fused run the whole row in assembly; ok is false
// when the assembly kernels are not in use.
func dotQ80Fused(row []byte, v *Vec) (float32, bool) {
	nb := len(v.q80D)
	if !useAVX2 || nb == 0 {
		return 0, false
	}
	_ = row[nb*q8_0Bytes-1]
	_ = v.q80Q[nb*32-1]
	return dotQ80AVX2(&row[0], &v.q80Q[0], &v.q80D[0], nb), true
}

func dotQ40Fused(row []byte, v *Vec) (float32, bool) {
	nb := len(v.q80D)
	if !useAVX2 || nb == 0 {
		return 0, false
	}
	_ = row[nb*q4_0Bytes-1]
	_ = v.q80Q[nb*32-1]
	return dotQ40AVX2(&row[0], &v.q80Q[0], &v.q80D[0], nb), true
}

// x4Args checks that the four vectors have the same prepared length and
// returns their pointers.
func x4Args(vs *[4]*Vec) (xq [4]*int8, xd [4]*float32, nb int, ok bool) {
	nb = len(vs[0].q80D)
	if nb == 0 {
		return xq, xd, 0, false
	}
	for i, v := range vs {
		if len(v.q80D) != nb || len(v.q80Q) < nb*32 {
			return xq, xd, 0, false
		}
		xq[i], xd[i] = &v.q80Q[0], &v.q80D[0]
	}
	return xq, xd, nb, true
}

func dotQ80x4Fused(row []byte, vs *[4]*Vec, out *[4]float32) bool {
	if !useAVX2 {
		return false
	}
	xq, xd, nb, ok := x4Args(vs)
	if !ok {
		return false
	}
	_ = row[nb*q8_0Bytes-1]
	dotQ80x4AVX2(&row[0], &xq, &xd, nb, out)
	return true
}

func dotQ40x4Fused(row []byte, vs *[4]*Vec, out *[4]float32) bool {
	if !useAVX2 {
		return false
	}
	xq, xd, nb, ok := x4Args(vs)
	if !ok {
		return false
	}
	_ = row[nb*q4_0Bytes-1]
	dotQ40x4AVX2(&row[0], &xq, &xd, nb, out)
	return true
}

//go:noescape
func dotQ4KAVX2(w *byte, xq *int8, xd *float32, bsums *int16, nb int) float32

//go:noescape
func dotQ6KAVX2(w *byte, xq *int8, xd *float32, bsums *int16, nb int) float32

func dotQ4KFused(row []byte, v *Vec) (float32, bool) {
	nb := len(v.q8KD)
	if !useAVX2 || nb == 0 {
		return 0, false
	}
	_ = row[nb*q4KBytes-1]
	_ = v.q8KQ[nb*QKK-1]
	_ = v.q8KBsum[nb*16-1]
	return dotQ4KAVX2(&row[0], &v.q8KQ[0], &v.q8KD[0], &v.q8KBsum[0], nb), true
}

func dotQ6KFused(row []byte, v *Vec) (float32, bool) {
	nb := len(v.q8KD)
	if !useAVX2 || nb == 0 {
		return 0, false
	}
	_ = row[nb*q6KBytes-1]
	_ = v.q8KQ[nb*QKK-1]
	_ = v.q8KBsum[nb*16-1]
	return dotQ6KAVX2(&row[0], &v.q8KQ[0], &v.q8KD[0], &v.q8KBsum[0], nb), true
}

//go:noescape
func dotQ4Kx4AVX2(w *byte, xq *[4]*int8, xd *[4]*float32, bs *[4]*int16, nb int, out *[4]float32)

func dotQ4Kx4Fused(row []byte, vs *[4]*Vec, out *[4]float32) bool {
	if !useAVX2 {
		return false
	}
	xq, xd, bs, nb, ok := kx4Args(vs)
	if !ok {
		return false
	}
	_ = row[nb*q4KBytes-1]
	dotQ4Kx4AVX2(&row[0], &xq, &xd, &bs, nb, out)
	return true
}

//go:noescape
func dotQ6Kx4AVX2(w *byte, xq *[4]*int8, xd *[4]*float32, bs *[4]*int16, nb int, out *[4]float32)

// kx4Args checks that the four vectors have the same Q8_K length and returns
// their pointers.
func kx4Args(vs *[4]*Vec) (xq [4]*int8, xd [4]*float32, bs [4]*int16, nb int, ok bool) {
	nb = len(vs[0].q8KD)
	if nb == 0 {
		return xq, xd, bs, 0, false
	}
	for i, v := range vs {
		if len(v.q8KD) != nb || len(v.q8KQ) < nb*QKK || len(v.q8KBsum) < nb*16 {
			return xq, xd, bs, 0, false
		}
		xq[i], xd[i], bs[i] = &v.q8KQ[0], &v.q8KD[0], &v.q8KBsum[0]
	}
	return xq, xd, bs, nb, true
}

func dotQ6Kx4Fused(row []byte, vs *[4]*Vec, out *[4]float32) bool {
	if !useAVX2 {
		return false
	}
	xq, xd, bs, nb, ok := kx4Args(vs)
	if !ok {
		return false
	}
	_ = row[nb*q6KBytes-1]
	dotQ6Kx4AVX2(&row[0], &xq, &xd, &bs, nb, out)
	return true
}

//go:noescape
func axpyF16AVX2(out *float32, v *uint16, p float32, n int)

func axpyF16(out []float32, v []uint16, p float32) {
	n8 := len(v) &^ 7
	if useAVX2 && n8 > 0 {
		_ = out[n8-1]
		axpyF16AVX2(&out[0], &v[0], p, n8)
		axpyF16Generic(out[n8:], v[n8:], p)
		return
	}
	axpyF16Generic(out, v, p)
}

//go:noescape
func dotF32x32x4AVX2(w *float32, x *[4]*float32, n int, out *[4]float32)

// dotF32x4 computes dotF32(w, vs[i].x) for the four vectors; ok is false
// when the assembly kernels are not in use or the lengths differ.
func dotF32x4(w []float32, vs *[4]*Vec, out *[4]float32) bool {
	n := len(vs[0].x)
	n32 := n &^ 31
	if !useAVX2 || n32 == 0 || len(w) < n {
		return false
	}
	var xs [4]*float32
	for i, v := range vs {
		if len(v.x) != n {
			return false
		}
		xs[i] = &v.x[0]
	}
	dotF32x32x4AVX2(&w[0], &xs, n32, out)
	for i, v := range vs {
		r := out[i]
		for j := n32; j < n; j++ {
			r += float32(w[j] * v.x[j])
		}
		out[i] = r
	}
	return true
}

//go:noescape
func dotF16RowsAVX2(k *uint16, stride int, npos int, x *float32, n int, out *float32)

//go:noescape
func axpyF16RowsAVX2(out *float32, v *uint16, stride int, npos int, p *float32, n int)

func dotF16Rows(k []uint16, stride int, x, out []float32) {
	n := len(x)
	if useAVX2 && n > 0 && n%32 == 0 && len(out) > 0 {
		_ = k[(len(out)-1)*stride+n-1]
		dotF16RowsAVX2(&k[0], stride*2, len(out), &x[0], n, &out[0])
		return
	}
	dotF16RowsGeneric(k, stride, x, out)
}

func axpyF16Rows(out []float32, v []uint16, stride int, p []float32) {
	n := len(out)
	if useAVX2 && n > 0 && n%32 == 0 && len(p) > 0 {
		_ = v[(len(p)-1)*stride+n-1]
		axpyF16RowsAVX2(&out[0], &v[0], stride*2, len(p), &p[0], n)
		return
	}
	axpyF16RowsGeneric(out, v, stride, p)
}

//go:noescape
func dotF32RowsAVX2(w *float32, stride int, nrows int, x *float32, n int, out *float32)

// dotF32Rows sets out[r] = dotF32(w[r*len(x):(r+1)*len(x)], x); ok is false
// when the assembly kernel is not in use or len(x) is not a multiple of 32.
func dotF32Rows(w, x, out []float32) bool {
	n := len(x)
	if !useAVX2 || n == 0 || n%32 != 0 || len(out) == 0 {
		return false
	}
	_ = w[len(out)*n-1]
	dotF32RowsAVX2(&w[0], n*4, len(out), &x[0], n, &out[0])
	return true
}
