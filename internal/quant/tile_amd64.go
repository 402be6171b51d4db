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

//go:noescape
func q4KTileAVX512(w *byte, stride int, xq *[4]*int8, sc *int16, nb int, out *int32)

// q4KTileChunk is how many super-blocks one q4KTileAVX512 call covers.
const q4KTileChunk = 16

// dotTileQ4K computes the 4×4 tile for Q4_K rows of rowBytes each: the
// integer sums in assembly, then per block, in block order, exactly the
// float steps of dotQ4KGeneric.
func dotTileQ4K(rows []byte, rowBytes int, vs *[4]*Vec, out *[4][4]float32) bool {
	if !useAVX512 {
		return false
	}
	nb := len(vs[0].q8KD)
	if nb == 0 || rowBytes != nb*q4KBytes || len(rows) < 4*rowBytes {
		return false
	}
	for _, v := range vs {
		if len(v.q8KD) != nb || len(v.q8KQ) < nb*QKK || len(v.q8KBsum) < nb*16 {
			return false
		}
	}
	tab := fp16Table()
	var (
		sums [4][4]float32
		sc   [q4KTileChunk][4][8]int16
		mn   [q4KTileChunk][4][8]int32
		isum [q4KTileChunk][4][4]int32
		xq   [4]*int8
	)
	for c := 0; c < nb; c += q4KTileChunk {
		n := min(q4KTileChunk, nb-c)
		for i := 0; i < n; i++ {
			for r := 0; r < 4; r++ {
				off := r*rowBytes + (c+i)*q4KBytes
				blk := rows[off : off+q4KBytes : off+q4KBytes]
				for j := 0; j < 8; j++ {
					s, m := scaleMinK4(j, blk[4:16])
					sc[i][r][j], mn[i][r][j] = int16(s), int32(m)
				}
			}
		}
		for i, v := range vs {
			xq[i] = &v.q8KQ[c*QKK]
		}
		q4KTileAVX512(&rows[c*q4KBytes], rowBytes, &xq, &sc[0][0][0], n, &isum[0][0][0])
		for i := 0; i < n; i++ {
			b := c + i
			for r := 0; r < 4; r++ {
				off := r*rowBytes + b*q4KBytes
				blk := rows[off : off+4 : off+4]
				wd := tab[uint16(blk[0])|uint16(blk[1])<<8]
				wmin := tab[uint16(blk[2])|uint16(blk[3])<<8]
				m := &mn[i][r]
				for k, v := range vs {
					bs := v.q8KBsum[b*16 : b*16+16 : b*16+16]
					var msum int32
					for j := 0; j < 8; j++ {
						msum += m[j] * (int32(bs[2*j]) + int32(bs[2*j+1]))
					}
					dx := v.q8KD[b]
					d := float32(wd * dx)
					dmin := float32(wmin * dx)
					sums[r][k] += float32(d*float32(isum[i][r][k])) - float32(dmin*float32(msum))
				}
			}
		}
	}
	*out = sums
	return true
}
