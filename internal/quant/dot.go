package quant

import (
	"math"
	"unsafe"

	"github.com/mycel-network/mycel/internal/gguf"
)

// Vec is an activation vector prepared for dot products with weight rows.
// Load sets the values; Prepare(t) builds the quantised form that rows of
// type t are multiplied with (Q8_0 blocks for Q4_0/Q8_0, Q8_K blocks for
// Q4_K/Q6_K, the float32 values themselves for float types). Prepare must be
// called before DotVec is used from several goroutines at once; afterwards a
// Vec is read-only and safe for concurrent use until the next Load.
type Vec struct {
	x []float32
	// Q8_0 form.
	q80D   []float32
	q80Q   []int8
	q80Sum []int32 // per-block sum of q80Q (for Q4_0's -8 offset)
	// q80Aux: per block 16 int32 for the tile kernel: -128 times the sum
	// of each group of four q80Q values, then the bits of q80D (only when
	// that kernel is in use).
	q80Aux  []int32
	q80OK   bool
	q8KD    []float32
	q8KQ    []int8
	q8KBsum []int16
	// q8KBpair: per block the eight sums of adjacent q8KBsum pairs (the
	// 32-value sub-block sums) for the Q4_K tile kernel, only when in use.
	q8KBpair []int32
	q8KOK    bool
}

// Load copies x into v and invalidates any prepared forms.
func (v *Vec) Load(x []float32) {
	v.x = append(v.x[:0], x...)
	v.q80OK, v.q8KOK = false, false
}

// Len returns the number of values in v.
func (v *Vec) Len() int { return len(v.x) }

// Values returns the float32 values of v (read-only).
func (v *Vec) Values() []float32 { return v.x }

// Prepare builds the form of v used with rows of type t. It is a no-op if the
// form is already built or t is a float type. len must be a multiple of the
// type's block size (checked by the caller when shapes are validated).
func (v *Vec) Prepare(t gguf.Type) {
	switch t {
	case gguf.TypeQ4_0, gguf.TypeQ8_0:
		if !v.q80OK {
			v.prepareQ80()
		}
	case gguf.TypeQ4_K, gguf.TypeQ6_K:
		if !v.q8KOK {
			v.prepareQ8K()
		}
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// prepareQ80 quantises v.x to Q8_0 blocks as ggml's x86 quantize_row_q8_0
// (the one llama.cpp uses for activations on AVX2 machines: scale 127/max,
// round half to even), keeping the scale rounded through float16 as ggml
// stores it.
func (v *Vec) prepareQ80() {
	nb := len(v.x) / QK8_0
	v.q80D = grow(v.q80D, nb)
	v.q80Q = grow(v.q80Q, nb*QK8_0)
	v.q80Sum = grow(v.q80Sum, nb)
	tab := fp16Table()
	for b := 0; b < nb; b++ {
		x := v.x[b*QK8_0 : (b+1)*QK8_0]
		q := v.q80Q[b*QK8_0 : (b+1)*QK8_0]
		var amax float32
		for _, f := range x {
			amax = max(amax, abs32(f))
		}
		d := amax / 127
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		v.q80D[b] = tab[FP32ToFP16(d)]
		var s int32
		for j, f := range x {
			q[j] = int8(math.RoundToEven(float64(f * id)))
			s += int32(q[j])
		}
		v.q80Sum[b] = s
	}
	if tileQ80Aux() {
		v.q80Aux = grow(v.q80Aux, nb*16)
		for b := 0; b < nb; b++ {
			q := v.q80Q[b*QK8_0 : (b+1)*QK8_0]
			a := v.q80Aux[b*16 : b*16+16]
			for k := 0; k < 8; k++ {
				a[k] = -128 * (int32(q[4*k]) + int32(q[4*k+1]) + int32(q[4*k+2]) + int32(q[4*k+3]))
			}
			a[8] = int32(math.Float32bits(v.q80D[b]))
		}
	}
	v.q80OK = true
}

// prepareQ8K quantises v.x to Q8_K blocks as ggml's quantize_row_q8_K_ref.
func (v *Vec) prepareQ8K() {
	nb := len(v.x) / QKK
	v.q8KD = grow(v.q8KD, nb)
	v.q8KQ = grow(v.q8KQ, nb*QKK)
	v.q8KBsum = grow(v.q8KBsum, nb*QKK/16)
	for b := 0; b < nb; b++ {
		x := v.x[b*QKK : (b+1)*QKK]
		q := v.q8KQ[b*QKK : (b+1)*QKK]
		var mx, amax float32
		for _, f := range x {
			if a := abs32(f); a > amax {
				amax, mx = a, f
			}
		}
		if amax == 0 {
			v.q8KD[b] = 0
			clear(q)
			clear(v.q8KBsum[b*16 : b*16+16])
			continue
		}
		iscale := -127 / mx
		for j, f := range x {
			q[j] = int8(min(127, nearestInt(iscale*f)))
		}
		for j := 0; j < 16; j++ {
			var s int32
			for _, qq := range q[j*16 : j*16+16] {
				s += int32(qq)
			}
			v.q8KBsum[b*16+j] = int16(s)
		}
		v.q8KD[b] = 1 / iscale
	}
	if tileQ80Aux() {
		v.q8KBpair = grow(v.q8KBpair, nb*8)
		for i := range v.q8KBpair {
			v.q8KBpair[i] = int32(v.q8KBsum[2*i]) + int32(v.q8KBsum[2*i+1])
		}
	}
	v.q8KOK = true
}

// Dot returns the dot product of one encoded row of type t with x. It
// prepares x on every call; use a Vec and DotVec in loops.
func Dot(t gguf.Type, row []byte, x []float32) float32 {
	var v Vec
	v.Load(x)
	v.Prepare(t)
	return DotVec(t, row, &v)
}

// DotVec returns the dot product of one encoded row of type t with v.
// len(row) must be RowBytes(t, v.Len()); the engine guarantees this by
// validating tensor shapes at load time.
func DotVec(t gguf.Type, row []byte, v *Vec) float32 {
	v.Prepare(t)
	switch t {
	case gguf.TypeF32:
		return dotF32(bytesAsF32(row), v.x)
	case gguf.TypeF16:
		return dotF16(bytesAsU16(row), v.x)
	case gguf.TypeBF16:
		return dotBF16(bytesAsU16(row), v.x)
	case gguf.TypeQ4_0:
		return dotQ4_0(row, v)
	case gguf.TypeQ8_0:
		return dotQ8_0(row, v)
	case gguf.TypeQ4_K:
		return dotQ4K(row, v)
	case gguf.TypeQ6_K:
		return dotQ6K(row, v)
	}
	return float32(math.NaN())
}

func bytesAsF32(b []byte) []float32 {
	if len(b) < 4 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&b[0])), len(b)/4)
}

func bytesAsU16(b []byte) []uint16 {
	if len(b) < 2 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&b[0])), len(b)/2)
}

// DotF16 is the dot product of float16 values w with x, in the order of
// F16 weight rows (see the package doc).
func DotF16(w []uint16, x []float32) float32 { return dotF16(w, x) }

// AxpyF16 adds p*v[i] to out[i] for float16 values v (the attention value
// sum), with the product rounded to float32 before the addition.
func AxpyF16(out []float32, v []uint16, p float32) { axpyF16(out, v, p) }

// DotRows sets out[r] = DotVec(t, rows[r*rowBytes:(r+1)*rowBytes], v) for
// r < len(out), with the same bits; for F32 rows one kernel call covers
// them all (single-token decode).
func DotRows(t gguf.Type, rows []byte, rowBytes int, v *Vec, out []float32) {
	v.Prepare(t)
	if t == gguf.TypeF32 && len(out) > 0 && rowBytes == 4*len(v.x) && len(rows) >= len(out)*rowBytes &&
		dotF32Rows(bytesAsF32(rows[:len(out)*rowBytes]), v.x, out) {
		return
	}
	for r := range out {
		out[r] = DotVec(t, rows[r*rowBytes:(r+1)*rowBytes], v)
	}
}

// DotF16Rows sets out[j] = DotF16(k[j*stride:j*stride+len(x)], x) for
// every j < len(out) (attention scores of one head over positions), with
// the same bits as those DotF16 calls.
func DotF16Rows(k []uint16, stride int, x, out []float32) {
	if len(out) == 0 {
		return
	}
	_ = k[(len(out)-1)*stride+len(x)-1]
	dotF16Rows(k, stride, x, out)
}

// AxpyF16Rows calls AxpyF16(out, v[j*stride:j*stride+len(out)], p[j]) for
// j = 0, 1, ... len(p)-1 in order (the attention value sum of one head),
// with the same bits.
func AxpyF16Rows(out []float32, v []uint16, stride int, p []float32) {
	if len(p) == 0 {
		return
	}
	_ = v[(len(p)-1)*stride+len(out)-1]
	axpyF16Rows(out, v, stride, p)
}

func dotF16RowsGeneric(k []uint16, stride int, x, out []float32) {
	for j := range out {
		out[j] = dotF16(k[j*stride:j*stride+len(x)], x)
	}
}

func axpyF16RowsGeneric(out []float32, v []uint16, stride int, p []float32) {
	for j, pj := range p {
		axpyF16(out, v[j*stride:j*stride+len(out)], pj)
	}
}

// FP16ToFP32Slice converts src to dst (len(dst) >= len(src)).
func FP16ToFP32Slice(dst []float32, src []uint16) {
	tab := fp16Table()
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = tab[h]
	}
}

// DotF32 is the float32 dot product used for activations (attention scores),
// in the order described in the package doc.
func DotF32(a, b []float32) float32 { return dotF32(a, b) }

func dotF32(w, x []float32) float32 {
	n := len(x)
	w = w[:n]
	n32 := n &^ 31
	var r float32
	if n32 > 0 {
		r = dotF32x32(w[:n32], x[:n32])
	}
	for i := n32; i < n; i++ {
		r += float32(w[i] * x[i])
	}
	return r
}

func dotF16(w []uint16, x []float32) float32 {
	n := len(x)
	w = w[:n]
	n32 := n &^ 31
	var r float32
	if n32 > 0 {
		r = dotF16x32(w[:n32], x[:n32])
	}
	tab := fp16Table()
	for i := n32; i < n; i++ {
		r += float32(tab[w[i]] * x[i])
	}
	return r
}

func dotBF16(w []uint16, x []float32) float32 {
	n := len(x)
	w = w[:n]
	var acc [32]float32
	n32 := n &^ 31
	for i := 0; i < n32; i += 32 {
		for l := range acc {
			acc[l] += float32(BF16ToFP32(w[i+l]) * x[i+l])
		}
	}
	r := reduce32(&acc)
	for i := n32; i < n; i++ {
		r += float32(BF16ToFP32(w[i]) * x[i])
	}
	return r
}

// sumChunk is how many integer sums the quantised kernels compute per call.
const sumChunk = 256

// Q4_0 and Q8_0 rows: per block b, lane k (0..7) gets the exact integer
// sum p_k of w[i]*x[i] over i in 4k..4k+3 (w = nibble-8 for Q4_0), and
// acc[k] += float32(p_k) * float32(fp16(w.d)*xd[b]); the eight lanes reduce
// as reduce8. This is the lane structure of the AVX2 kernels.

func dotQ4_0(row []byte, v *Vec) float32 {
	if r, ok := dotQ40Fused(row, v); ok {
		return r
	}
	return dotQ4_0Generic(row, v)
}

func dotQ4_0Generic(row []byte, v *Vec) float32 {
	tab := fp16Table()
	nb := len(v.q80D)
	row = row[:nb*q4_0Bytes]
	var acc [8]float32
	var w [32]int32
	for b := 0; b < nb; b++ {
		blk := row[b*q4_0Bytes : (b+1)*q4_0Bytes : (b+1)*q4_0Bytes]
		q := v.q80Q[b*QK8_0 : (b+1)*QK8_0 : (b+1)*QK8_0]
		for j := 0; j < 16; j++ {
			w[j] = int32(blk[2+j]&0xF) - 8
			w[j+16] = int32(blk[2+j]>>4) - 8
		}
		d := float32(tab[uint16(blk[0])|uint16(blk[1])<<8] * v.q80D[b])
		for k := 0; k < 8; k++ {
			p := w[4*k]*int32(q[4*k]) + w[4*k+1]*int32(q[4*k+1]) + w[4*k+2]*int32(q[4*k+2]) + w[4*k+3]*int32(q[4*k+3])
			acc[k] += float32(float32(p) * d)
		}
	}
	return reduce8(&acc)
}

func dotQ8_0(row []byte, v *Vec) float32 {
	if r, ok := dotQ80Fused(row, v); ok {
		return r
	}
	return dotQ8_0Generic(row, v)
}

func dotQ8_0Generic(row []byte, v *Vec) float32 {
	tab := fp16Table()
	nb := len(v.q80D)
	row = row[:nb*q8_0Bytes]
	var acc [8]float32
	for b := 0; b < nb; b++ {
		blk := row[b*q8_0Bytes : (b+1)*q8_0Bytes : (b+1)*q8_0Bytes]
		q := v.q80Q[b*QK8_0 : (b+1)*QK8_0 : (b+1)*QK8_0]
		qs := blk[2:34]
		d := float32(tab[uint16(blk[0])|uint16(blk[1])<<8] * v.q80D[b])
		for k := 0; k < 8; k++ {
			p := int32(int8(qs[4*k]))*int32(q[4*k]) + int32(int8(qs[4*k+1]))*int32(q[4*k+1]) +
				int32(int8(qs[4*k+2]))*int32(q[4*k+2]) + int32(int8(qs[4*k+3]))*int32(q[4*k+3])
			acc[k] += float32(float32(p) * d)
		}
	}
	return reduce8(&acc)
}

// reduce8 is the tail of reduce32: h[l]+h[l+4], then t[l]+t[l+2], then
// u[0]+u[1].
func reduce8(h *[8]float32) float32 {
	t0, t1, t2, t3 := h[0]+h[4], h[1]+h[5], h[2]+h[6], h[3]+h[7]
	u0, u1 := t0+t2, t1+t3
	return u0 + u1
}

// DotVec4 computes out[i] = DotVec(t, row, vs[i]) for the four vectors,
// bit-identical to four DotVec calls; for Q8_0, Q4_0, Q4_K and Q6_K rows it
// decodes the row once for all four (batched prefill and decode).
func DotVec4(t gguf.Type, row []byte, vs *[4]*Vec, out *[4]float32) {
	for _, v := range vs {
		v.Prepare(t)
	}
	switch t {
	case gguf.TypeF32:
		if dotF32x4(bytesAsF32(row), vs, out) {
			return
		}
	case gguf.TypeQ8_0:
		if dotQ80x4Fused(row, vs, out) {
			return
		}
	case gguf.TypeQ4_0:
		if dotQ40x4Fused(row, vs, out) {
			return
		}
	case gguf.TypeQ4_K:
		if dotQ4Kx4Fused(row, vs, out) {
			return
		}
	case gguf.TypeQ6_K:
		if dotQ6Kx4Fused(row, vs, out) {
			return
		}
	}
	for i, v := range vs {
		out[i] = DotVec(t, row, v)
	}
}

// DotVec4x4 computes out[r][i] = DotVec(t, row r, vs[i]) for the four
// consecutive rows of rowBytes bytes at the start of rows, bit-identical to
// sixteen DotVec calls. For F32 and Q8_0 rows on machines with AVX-512 it
// runs a register-blocked kernel that loads each weight block once for the
// four vectors and each activation block once for the four rows (batched
// prefill and scoring); otherwise it is four DotVec4 calls.
func DotVec4x4(t gguf.Type, rows []byte, rowBytes int, vs *[4]*Vec, out *[4][4]float32) {
	for _, v := range vs {
		v.Prepare(t)
	}
	switch t {
	case gguf.TypeF32:
		if len(rows) >= 4*rowBytes && rowBytes == 4*len(vs[0].x) && dotTileF32(bytesAsF32(rows[:4*rowBytes]), vs, out) {
			return
		}
	case gguf.TypeQ8_0:
		if dotTileQ80(rows, rowBytes, vs, out) {
			return
		}
	}
	for r := 0; r < 4; r++ {
		DotVec4(t, rows[r*rowBytes:(r+1)*rowBytes], vs, &out[r])
	}
}

// DotVec4xN computes out[b*stride+k] = DotVec(t, row k, &vs[b]) for the
// four consecutive rows of rowBytes bytes at the start of rows and every
// vector of vs, bit-identical to DotVec. Vectors go through DotVec4x4 in
// groups of four (for Q4_K with AVX-512, a kernel that decodes the rows'
// scales once for all groups), the rest through DotVec.
func DotVec4xN(t gguf.Type, rows []byte, rowBytes int, vs []Vec, out []float32, stride int) {
	for i := range vs {
		vs[i].Prepare(t)
	}
	g := 0
	for t == gguf.TypeQ4_K && g < len(vs) {
		k := dotTileQ4KN(rows, rowBytes, vs[g:], out[g*stride:], stride)
		if k == 0 {
			break
		}
		g += k
	}
	var tile [4][4]float32
	for ; g+4 <= len(vs); g += 4 {
		p := [4]*Vec{&vs[g], &vs[g+1], &vs[g+2], &vs[g+3]}
		DotVec4x4(t, rows, rowBytes, &p, &tile)
		for k := 0; k < 4; k++ {
			o := out[(g+k)*stride : (g+k)*stride+4 : (g+k)*stride+4]
			for r := 0; r < 4; r++ {
				o[r] = tile[r][k]
			}
		}
	}
	for ; g < len(vs); g++ {
		for r := 0; r < 4; r++ {
			out[g*stride+r] = DotVec(t, rows[r*rowBytes:(r+1)*rowBytes], &vs[g])
		}
	}
}

// dotQ4K: per block, isum = Σ_j scale_j Σ q4*q8 and msum = Σ_j min_j bsum_j
// (both exact), then sum += dx*d*isum - dx*dmin*msum, blocks in order.
func dotQ4K(row []byte, v *Vec) float32 {
	if r, ok := dotQ4KFused(row, v); ok {
		return r
	}
	return dotQ4KGeneric(row, v)
}

func dotQ4KGeneric(row []byte, v *Vec) float32 {
	tab := fp16Table()
	nb := len(v.q8KD)
	row = row[:nb*q4KBytes]
	var sums [sumChunk]int32
	const per = sumChunk / 8
	var sum float32
	for c := 0; c < nb; c += per {
		n := min(per, nb-c)
		q4KSums(row[c*q4KBytes:], v.q8KQ[c*QKK:], sums[:n*8])
		for i := 0; i < n; i++ {
			b := c + i
			blk := row[b*q4KBytes : (b+1)*q4KBytes : (b+1)*q4KBytes]
			bs := v.q8KBsum[b*16 : b*16+16 : b*16+16]
			sc := blk[4:16]
			s8 := sums[i*8 : i*8+8 : i*8+8]
			var isum, msum int32
			for j := 0; j < 8; j++ {
				s, m := scaleMinK4(j, sc)
				isum += int32(s) * s8[j]
				msum += int32(m) * (int32(bs[2*j]) + int32(bs[2*j+1]))
			}
			dx := v.q8KD[b]
			d := float32(tab[uint16(blk[0])|uint16(blk[1])<<8] * dx)
			dmin := float32(tab[uint16(blk[2])|uint16(blk[3])<<8] * dx)
			sum += float32(d*float32(isum)) - float32(dmin*float32(msum))
		}
	}
	return sum
}

// dotQ6K: per block, isum = Σ_16-groups scale_g Σ (q6-32)*q8 (exact), then
// sum += (d*dx)*isum, blocks in order.
func dotQ6K(row []byte, v *Vec) float32 {
	if r, ok := dotQ6KFused(row, v); ok {
		return r
	}
	return dotQ6KGeneric(row, v)
}

func dotQ6KGeneric(row []byte, v *Vec) float32 {
	tab := fp16Table()
	nb := len(v.q8KD)
	row = row[:nb*q6KBytes]
	var sums [sumChunk]int32
	const per = sumChunk / 16
	var sum float32
	for c := 0; c < nb; c += per {
		n := min(per, nb-c)
		q6KSums(row[c*q6KBytes:], v.q8KQ[c*QKK:], sums[:n*16])
		for i := 0; i < n; i++ {
			b := c + i
			blk := row[b*q6KBytes : (b+1)*q6KBytes : (b+1)*q6KBytes]
			bs := v.q8KBsum[b*16 : b*16+16 : b*16+16]
			sc := blk[192:208]
			g := sums[i*16 : i*16+16 : i*16+16]
			var isum int32
			for j := 0; j < 16; j++ {
				isum += int32(int8(sc[j])) * (g[j] - 32*int32(bs[j]))
			}
			d := float32(tab[uint16(blk[208])|uint16(blk[209])<<8] * v.q8KD[b])
			sum += float32(d * float32(isum))
		}
	}
	return sum
}
