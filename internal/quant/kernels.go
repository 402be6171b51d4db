package quant

// Kernels with one definition and two implementations: AVX2 assembly
// (amd64 with AVX2 and F16C, chosen once at start) and the portable Go below.
// Both give bit-identical results: float sums follow the same fixed order
// (dotF32x32's 32 lanes and reduction tree), integer block sums are exact.

// dotF32x32Generic returns Σ w[i]*x[i] for len(x) a multiple of 32: element
// i goes to lane i%32 (mul then add, no fusion); lanes reduce as reduce32.
func dotF32x32Generic(w, x []float32) float32 {
	var acc [32]float32
	w = w[:len(x)]
	for i := 0; i+32 <= len(x); i += 32 {
		ww := w[i : i+32 : i+32]
		xx := x[i : i+32 : i+32]
		for l := range acc {
			acc[l] += float32(ww[l] * xx[l])
		}
	}
	return reduce32(&acc)
}

func dotF16x32Generic(w []uint16, x []float32) float32 {
	tab := fp16Table()
	var acc [32]float32
	w = w[:len(x)]
	for i := 0; i+32 <= len(x); i += 32 {
		ww := w[i : i+32 : i+32]
		xx := x[i : i+32 : i+32]
		for l := range acc {
			acc[l] += float32(tab[ww[l]] * xx[l])
		}
	}
	return reduce32(&acc)
}

// reduce32 is the reduction tree of the AVX2 kernel: four 8-lane vectors
// added as (v0+v1)+(v2+v3), then halves 4+4, 2+2, 1+1.
func reduce32(acc *[32]float32) float32 {
	var h [8]float32
	for l := range h {
		h[l] = (acc[l] + acc[8+l]) + (acc[16+l] + acc[24+l])
	}
	t0, t1, t2, t3 := h[0]+h[4], h[1]+h[5], h[2]+h[6], h[3]+h[7]
	u0, u1 := t0+t2, t1+t3
	return u0 + u1
}

// q80SumsGeneric writes, for each of len(out) Q8_0 weight blocks, the exact
// integer dot product of its 32 int8 values with the matching 32 of x.
func q80SumsGeneric(w []byte, x []int8, out []int32) {
	for b := range out {
		qs := w[b*q8_0Bytes+2 : (b+1)*q8_0Bytes : (b+1)*q8_0Bytes]
		q := x[b*32 : b*32+32 : b*32+32]
		var s int32
		for j := range qs {
			s += int32(int8(qs[j])) * int32(q[j])
		}
		out[b] = s
	}
}

// q40SumsGeneric: per Q4_0 block, Σ nibble*x with the nibbles unsigned
// (0..15); the -8 offset is applied by the caller.
func q40SumsGeneric(w []byte, x []int8, out []int32) {
	for b := range out {
		qs := w[b*q4_0Bytes+2 : (b+1)*q4_0Bytes : (b+1)*q4_0Bytes]
		q := x[b*32 : b*32+32 : b*32+32]
		var s int32
		for j := 0; j < 16; j++ {
			s += int32(qs[j]&0xF)*int32(q[j]) + int32(qs[j]>>4)*int32(q[j+16])
		}
		out[b] = s
	}
}

// q4KSumsGeneric: per Q4_K super-block, 8 sums of nibble*x over its 32-value
// sub-blocks (out has 8 entries per super-block).
func q4KSumsGeneric(w []byte, x []int8, out []int32) {
	for b := 0; b < len(out)/8; b++ {
		qs := w[b*q4KBytes+16 : (b+1)*q4KBytes : (b+1)*q4KBytes]
		q8 := x[b*QKK : (b+1)*QKK : (b+1)*QKK]
		for j := 0; j < 4; j++ {
			q := qs[32*j : 32*j+32 : 32*j+32]
			lo := q8[64*j : 64*j+32 : 64*j+32]
			hi := q8[64*j+32 : 64*j+64 : 64*j+64]
			var a, c int32
			for l := range q {
				a += int32(q[l]&0xF) * int32(lo[l])
				c += int32(q[l]>>4) * int32(hi[l])
			}
			out[b*8+2*j] = a
			out[b*8+2*j+1] = c
		}
	}
}

// q6KSumsGeneric: per Q6_K super-block, 16 sums of q*x over its 16-value
// groups with q the unsigned 6-bit value (0..63); the -32 offset is applied
// by the caller through the activation group sums.
func q6KSumsGeneric(w []byte, x []int8, out []int32) {
	for b := 0; b < len(out)/16; b++ {
		blk := w[b*q6KBytes : (b+1)*q6KBytes : (b+1)*q6KBytes]
		q8 := x[b*QKK : (b+1)*QKK : (b+1)*QKK]
		o := out[b*16 : b*16+16 : b*16+16]
		for n := 0; n < 2; n++ {
			ql := blk[64*n : 64*n+64 : 64*n+64]
			qh := blk[128+32*n : 128+32*n+32 : 128+32*n+32]
			y := q8[128*n : 128*n+128 : 128*n+128]
			var g [8]int32
			for l := 0; l < 32; l++ {
				h := qh[l]
				half := l / 16
				g[0+half] += int32((ql[l]&0xF)|(h&3)<<4) * int32(y[l])
				g[2+half] += int32((ql[l+32]&0xF)|((h>>2)&3)<<4) * int32(y[l+32])
				g[4+half] += int32((ql[l]>>4)|((h>>4)&3)<<4) * int32(y[l+64])
				g[6+half] += int32((ql[l+32]>>4)|((h>>6)&3)<<4) * int32(y[l+96])
			}
			copy(o[8*n:8*n+8], g[:])
		}
	}
}

// axpyF16Generic adds p*v[i] (v float16) to out[i], rounding the product.
func axpyF16Generic(out []float32, v []uint16, p float32) {
	tab := fp16Table()
	out = out[:len(v)]
	for i, h := range v {
		out[i] += float32(p * tab[h])
	}
}
