package quant

import (
	"math"
	"sync"
)

// FP16ToFP32 converts an IEEE half-precision value to float32 exactly as
// ggml's ggml_compute_fp16_to_fp32 does.
func FP16ToFP32(h uint16) float32 {
	w := uint32(h) << 16
	sign := w & 0x80000000
	twoW := w + w
	const expOffset = uint32(0xE0) << 23
	normalized := math.Float32frombits((twoW>>4)+expOffset) * float32(0x1.0p-112)
	const magicMask = uint32(126) << 23
	denormalized := math.Float32frombits((twoW>>17)|magicMask) - 0.5
	var bits uint32
	if twoW < 1<<27 {
		bits = math.Float32bits(denormalized)
	} else {
		bits = math.Float32bits(normalized)
	}
	return math.Float32frombits(sign | bits)
}

// FP32ToFP16 converts a float32 to IEEE half precision (round to nearest
// even) exactly as ggml's ggml_compute_fp32_to_fp16 does.
func FP32ToFP16(f float32) uint16 {
	abs := math.Float32frombits(math.Float32bits(f) &^ 0x80000000)
	base := float32(float32(abs*float32(0x1.0p+112)) * float32(0x1.0p-110))
	w := math.Float32bits(f)
	shl1W := w + w
	sign := w & 0x80000000
	bias := shl1W & 0xFF000000
	if bias < 0x71000000 {
		bias = 0x71000000
	}
	base = math.Float32frombits((bias>>1)+0x07800000) + base
	bits := math.Float32bits(base)
	expBits := (bits >> 13) & 0x00007C00
	mantissaBits := bits & 0x00000FFF
	nonsign := expBits + mantissaBits
	if shl1W > 0xFF000000 {
		return uint16(sign>>16) | 0x7E00
	}
	return uint16(sign>>16) | uint16(nonsign)
}

// BF16ToFP32 converts a bfloat16 value to float32 (exact).
func BF16ToFP32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// FP32ToBF16 converts a float32 to bfloat16 with round to nearest even and
// quiet NaNs, as ggml_compute_fp32_to_bf16 does.
func FP32ToBF16(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16) | 64
	}
	return uint16((u + (0x7fff + ((u >> 16) & 1))) >> 16)
}

// fp16Table maps every half-precision bit pattern to its float32 value. It is
// built once and never written afterwards.
var fp16Table = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = FP16ToFP32(uint16(i))
	}
	return &t
})
