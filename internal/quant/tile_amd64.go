//go:build amd64 && !purego

package quant

import "golang.org/x/sys/cpu"

// useAVX512 selects the AVX-512 tile kernels (register-blocked: several
// rows times four vectors per step). They need AVX-512 F/BW/VL and VNNI;
// decided once at start.
var useAVX512 = useAVX2 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VNNI

//go:noescape
func dotF32r2x4AVX512(w *float32, stride int, x *[4]*float32, n int, out *[8]float32)

//go:noescape
func dotQ80r4x4AVX512(w *byte, stride int, xq *[4]*int8, aux *[4]*int32, nb int, out *[16]float32)

// unpackScalesK4 decodes the 12 packed scale bytes of a Q4_K block into
// the eight 6-bit scales and mins (as scaleMinK4, with ggml's utmp trick).
func unpackScalesK4(q []byte, sc *[8]int16, mn *[8]int32) {
	q = q[:12]
	u0 := uint32(q[0]) | uint32(q[1])<<8 | uint32(q[2])<<16 | uint32(q[3])<<24
	u1 := uint32(q[4]) | uint32(q[5])<<8 | uint32(q[6])<<16 | uint32(q[7])<<24
	u2 := uint32(q[8]) | uint32(q[9])<<8 | uint32(q[10])<<16 | uint32(q[11])<<24
	s0 := u0 & 0x3f3f3f3f
	m0 := u1 & 0x3f3f3f3f
	s1 := u2&0x0f0f0f0f | (u0>>6&0x03030303)<<4
	m1 := u2>>4&0x0f0f0f0f | (u1>>6&0x03030303)<<4
	for j := 0; j < 4; j++ {
		sc[j], sc[4+j] = int16(s0>>(8*j)&0xff), int16(s1>>(8*j)&0xff)
		mn[j], mn[4+j] = int32(m0>>(8*j)&0xff), int32(m1>>(8*j)&0xff)
	}
}

// tileQ80Aux reports whether Q8_0 vectors need the aux records of the tile
// kernel.
func tileQ80Aux() bool { return useAVX512 }

// dotTileF32 computes the 4×4 tile for F32 rows (rows holds four rows of
// len(vs[i].x) floats each); ok is false when the kernel is not in use.
func dotTileF32(rows []float32, vs *[4]*Vec, out *[4][4]float32) bool {
	n := len(vs[0].x)
	n32 := n &^ 31
	if !useAVX512 || n32 == 0 || len(rows) < 4*n {
		return false
	}
	var xs [4]*float32
	for i, v := range vs {
		if len(v.x) != n {
			return false
		}
		xs[i] = &v.x[0]
	}
	var res [8]float32
	for r := 0; r < 4; r += 2 {
		dotF32r2x4AVX512(&rows[r*n], n*4, &xs, n32, &res)
		for i := 0; i < 4; i++ {
			out[r][i], out[r+1][i] = res[i], res[4+i]
		}
	}
	if n32 < n {
		for r := 0; r < 4; r++ {
			w := rows[r*n : (r+1)*n]
			for i, v := range vs {
				acc := out[r][i]
				for j := n32; j < n; j++ {
					acc += float32(w[j] * v.x[j])
				}
				out[r][i] = acc
			}
		}
	}
	return true
}

// dotTileQ80 computes the 4×4 tile for Q8_0 rows of rowBytes each.
func dotTileQ80(rows []byte, rowBytes int, vs *[4]*Vec, out *[4][4]float32) bool {
	if !useAVX512 {
		return false
	}
	nb := len(vs[0].q80D)
	if nb == 0 || rowBytes != nb*q8_0Bytes || len(rows) < 4*rowBytes {
		return false
	}
	var xq [4]*int8
	var aux [4]*int32
	for i, v := range vs {
		if len(v.q80D) != nb || len(v.q80Q) < nb*32 || len(v.q80Aux) < nb*16 {
			return false
		}
		xq[i], aux[i] = &v.q80Q[0], &v.q80Aux[0]
	}
	var res [16]float32
	dotQ80r4x4AVX512(&rows[0], rowBytes, &xq, &aux, nb, &res)
	for r := 0; r < 4; r++ {
		copy(out[r][:], res[r*4:r*4+4])
	}
	return true
}

// q4KTileChunk is how many super-blocks of row information one
// q4KTile2AVX512 call gets.
const q4KTileChunk = 16

// q4KRowInfo is one Q4_K super-block of four rows, decoded for
// q4KTile2AVX512 (layout fixed by the assembly): scales as int16 [r][j],
// mins as int16 pairs per lane r*4+i (i the vector), and the float16
// scales as float32 per lane.
type q4KRowInfo struct {
	sc   [4][8]int16
	mins [4][16][2]int16
	wd   [16]float32
	wmin [16]float32
}

// q4KVecInfo is one super-block of four vectors: their Q8_K scales and the
// sums of their 32-value sub-blocks as int16 pairs [t][i][2].
type q4KVecInfo struct {
	dx [4]float32
	bp [4][4][2]int16
}

//go:noescape
func q4KTile2AVX512(w *byte, stride int, xq *[4]*int8, ri *q4KRowInfo, vi *q4KVecInfo, nb int, out *[16]float32)

// q4KTileMaxVecs is the most vectors one dotTileQ4KN call covers.
const q4KTileMaxVecs = 16

// dotTileQ4KN computes, for the four consecutive Q4_K rows of rowBytes
// each at the start of rows and the first min(len(vs)&^3, 16) vectors of vs,
// out[b*stride+k] = dotQ4K(row k, vs[b]) entirely in assembly, the rows'
// scales decoded once for all vectors. It returns how many vectors it
// covered (0 when the kernel is not in use).
func dotTileQ4KN(rows []byte, rowBytes int, vs []Vec, out []float32, stride int) int {
	n4 := min(len(vs)&^3, q4KTileMaxVecs)
	if !useAVX512 || n4 == 0 {
		return 0
	}
	nb := len(vs[0].q8KD)
	if nb == 0 || rowBytes != nb*q4KBytes || len(rows) < 4*rowBytes {
		return 0
	}
	for i := range vs[:n4] {
		v := &vs[i]
		if len(v.q8KD) != nb || len(v.q8KQ) < nb*QKK || len(v.q8KBpair) < nb*8 {
			return 0
		}
	}
	_ = out[(n4-1)*stride+3]
	tab := fp16Table()
	var (
		ri   [q4KTileChunk]q4KRowInfo
		vi   [q4KTileChunk]q4KVecInfo
		sums [q4KTileMaxVecs / 4][16]float32
		xq   [4]*int8
		mn   [8]int32
	)
	for c := 0; c < nb; c += q4KTileChunk {
		n := min(q4KTileChunk, nb-c)
		for i := 0; i < n; i++ {
			inf := &ri[i]
			for r := 0; r < 4; r++ {
				off := r*rowBytes + (c+i)*q4KBytes
				blk := rows[off : off+q4KBytes : off+q4KBytes]
				wd := tab[uint16(blk[0])|uint16(blk[1])<<8]
				wmin := tab[uint16(blk[2])|uint16(blk[3])<<8]
				unpackScalesK4(blk[4:16], &inf.sc[r], &mn)
				for k := 0; k < 4; k++ {
					l := r*4 + k
					inf.wd[l], inf.wmin[l] = wd, wmin
					for t := 0; t < 4; t++ {
						inf.mins[t][l] = [2]int16{int16(mn[2*t]), int16(mn[2*t+1])}
					}
				}
			}
		}
		for g := 0; g < n4; g += 4 {
			vg := vs[g : g+4 : g+4]
			for k := range vg {
				v := &vg[k]
				xq[k] = &v.q8KQ[c*QKK]
				for i := 0; i < n; i++ {
					b := c + i
					vi[i].dx[k] = v.q8KD[b]
					p := v.q8KBpair[b*8 : b*8+8 : b*8+8]
					for t := 0; t < 4; t++ {
						vi[i].bp[t][k] = [2]int16{int16(p[2*t]), int16(p[2*t+1])}
					}
				}
			}
			q4KTile2AVX512(&rows[c*q4KBytes], rowBytes, &xq, &ri[0], &vi[0], n, &sums[g/4])
		}
	}
	for g := 0; g < n4; g += 4 {
		for k := 0; k < 4; k++ {
			o := out[(g+k)*stride : (g+k)*stride+4 : (g+k)*stride+4]
			for r := 0; r < 4; r++ {
				o[r] = sums[g/4][r*4+k]
			}
		}
	}
	return n4
}
