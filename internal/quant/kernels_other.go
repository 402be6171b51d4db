//go:build !amd64 || purego

package quant

const useAVX2 = false

func dotF32x32(w, x []float32) float32          { return dotF32x32Generic(w, x) }
func dotF16x32(w []uint16, x []float32) float32 { return dotF16x32Generic(w, x) }
func q80Sums(w []byte, x []int8, out []int32)   { q80SumsGeneric(w, x, out) }
func q40Sums(w []byte, x []int8, out []int32)   { q40SumsGeneric(w, x, out) }
func q4KSums(w []byte, x []int8, out []int32)   { q4KSumsGeneric(w, x, out) }
func q6KSums(w []byte, x []int8, out []int32)   { q6KSumsGeneric(w, x, out) }

func dotQ80Fused(row []byte, v *Vec) (float32, bool)              { return 0, false }
func dotQ40Fused(row []byte, v *Vec) (float32, bool)              { return 0, false }
func dotQ4KFused(row []byte, v *Vec) (float32, bool)              { return 0, false }
func dotQ6KFused(row []byte, v *Vec) (float32, bool)              { return 0, false }
func dotQ80x4Fused(row []byte, vs *[4]*Vec, out *[4]float32) bool { return false }
func dotQ40x4Fused(row []byte, vs *[4]*Vec, out *[4]float32) bool { return false }
func dotQ4Kx4Fused(row []byte, vs *[4]*Vec, out *[4]float32) bool { return false }
func axpyF16(out []float32, v []uint16, p float32)                { axpyF16Generic(out, v, p) }
func dotQ6Kx4Fused(row []byte, vs *[4]*Vec, out *[4]float32) bool { return false }
func dotF32x4(w []float32, vs *[4]*Vec, out *[4]float32) bool     { return false }

func dotF16Rows(k []uint16, stride int, x, out []float32) { dotF16RowsGeneric(k, stride, x, out) }

func axpyF16Rows(out []float32, v []uint16, stride int, p []float32) {
	axpyF16RowsGeneric(out, v, stride, p)
}

func dotF32Rows(w, x, out []float32) bool { return false }
