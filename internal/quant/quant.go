// Package quant implements ggml's tensor block formats (F32, F16, BF16,
// Q8_0, Q4_0, Q4_K, Q6_K): reference quantisers that produce exactly the bytes
// ggml's *_ref quantisers produce (so llama.cpp reads our files), dequantisers
// and dot-product kernels used by the inference engine.
//
// # Dot products and determinism
//
// A weight row is multiplied with an activation vector through a [Vec], which
// holds the activations prepared for the weight type, as ggml does:
//
//   - F32, F16, BF16 rows: the activations stay float32. For the first
//     n - n%32 elements, element i is multiplied (rounded to float32) and
//     added to lane i%32; lane l of four 8-lane vectors v0..v3 is lane
//     8k+l; they reduce as h = (v0+v1)+(v2+v3), then h[l]+h[l+4],
//     then t[l]+t[l+2], then u[0]+u[1]. The remaining elements are added
//     to that result one by one in order.
//   - Q4_0 and Q8_0 rows: the activations are quantised to Q8_0 blocks (32
//     int8 values and one scale rounded through float16, as ggml's x86
//     quantize_row_q8_0 that llama.cpp uses for activations). Within a block
//     the exact integer sums of each run of four elements go to eight float
//     lanes, scaled by the block's two scales; lanes accumulate in block
//     order and reduce as h[l]+h[l+4], t[l]+t[l+2], u[0]+u[1].
//   - Q4_K and Q6_K rows: the activations are quantised to Q8_K blocks (256
//     int8 values, a float32 scale and 16 partial sums), as ggml's
//     quantize_row_q8_K_ref. Integer parts are exact; per-block float
//     contributions are summed in block order.
//
// On amd64 with AVX2 and F16C, assembly kernels compute exactly this (plain
// multiply and add, no FMA; integer sums are exact); elsewhere portable Go
// does. With AVX-512 F/BW/VL and VNNI as well, the batched entry points
// (DotVec4x4, DotVec4xN) use register-blocked kernels for F32, Q8_0 and
// Q4_K rows — four rows times four vectors per step — that keep, for every
// output element, the same lanes, block order and final reduction (Q8_0's
// lane sums come from VPDPBUSD on weights^0x80 with a -128·Σx correction:
// the same exact integers). All paths give bit-identical results, which the
// tests check on random data and arbitrary encoded bytes.
//
// Every result is therefore a pure function of the row bytes and the
// activation values: it does not depend on the caller's thread count or on
// which other rows or vectors are processed in the same call. No operation
// relies on fused multiply-add: products are rounded to float32 before they
// are added (explicit conversions forbid fusion on every architecture).
package quant

import (
	"errors"
	"fmt"
	"math"

	"github.com/mycel-network/mycel/internal/gguf"
)

// Block sizes (elements per block) and block byte sizes of the supported types.
const (
	QK4_0 = 32
	QK8_0 = 32
	QKK   = 256

	q4_0Bytes = 2 + QK4_0/2
	q8_0Bytes = 2 + QK8_0
	q4KBytes  = 2 + 2 + 12 + QKK/2
	q6KBytes  = QKK/2 + QKK/4 + QKK/16 + 2
)

// ErrUnsupported is returned for tensor types this package does not implement.
var ErrUnsupported = errors.New("unsupported tensor type")

// Supported reports whether t is implemented by this package.
func Supported(t gguf.Type) bool {
	_, _, ok := layout(t)
	return ok
}

func layout(t gguf.Type) (blockSize, blockBytes int, ok bool) {
	switch t {
	case gguf.TypeF32:
		return 1, 4, true
	case gguf.TypeF16, gguf.TypeBF16:
		return 1, 2, true
	case gguf.TypeQ4_0:
		return QK4_0, q4_0Bytes, true
	case gguf.TypeQ8_0:
		return QK8_0, q8_0Bytes, true
	case gguf.TypeQ4_K:
		return QKK, q4KBytes, true
	case gguf.TypeQ6_K:
		return QKK, q6KBytes, true
	}
	return 0, 0, false
}

// BlockSize returns the number of elements per block of t (1 for float types).
func BlockSize(t gguf.Type) int { b, _, _ := layout(t); return b }

// RowBytes returns the encoded size of n elements of type t. n must be a
// multiple of the type's block size.
func RowBytes(t gguf.Type, n int) (int, error) {
	bs, bb, ok := layout(t)
	if !ok {
		return 0, fmt.Errorf("type %v: %w", t, ErrUnsupported)
	}
	if n < 0 || n%bs != 0 {
		return 0, fmt.Errorf("type %v: %d elements is not a multiple of block size %d", t, n, bs)
	}
	return n / bs * bb, nil
}

// Quantize encodes src as type t with ggml's reference quantisers.
func Quantize(t gguf.Type, src []float32) ([]byte, error) {
	size, err := RowBytes(t, len(src))
	if err != nil {
		return nil, fmt.Errorf("quantize: %w", err)
	}
	dst := make([]byte, size)
	switch t {
	case gguf.TypeF32:
		for i, v := range src {
			putU32(dst[4*i:], math.Float32bits(v))
		}
	case gguf.TypeF16:
		for i, v := range src {
			putU16(dst[2*i:], FP32ToFP16(v))
		}
	case gguf.TypeBF16:
		for i, v := range src {
			putU16(dst[2*i:], FP32ToBF16(v))
		}
	case gguf.TypeQ4_0:
		for b := 0; b < len(src)/QK4_0; b++ {
			quantizeBlockQ4_0(src[b*QK4_0:(b+1)*QK4_0], dst[b*q4_0Bytes:(b+1)*q4_0Bytes])
		}
	case gguf.TypeQ8_0:
		for b := 0; b < len(src)/QK8_0; b++ {
			quantizeBlockQ8_0(src[b*QK8_0:(b+1)*QK8_0], dst[b*q8_0Bytes:(b+1)*q8_0Bytes])
		}
	case gguf.TypeQ4_K:
		for b := 0; b < len(src)/QKK; b++ {
			quantizeBlockQ4K(src[b*QKK:(b+1)*QKK], dst[b*q4KBytes:(b+1)*q4KBytes])
		}
	case gguf.TypeQ6_K:
		for b := 0; b < len(src)/QKK; b++ {
			quantizeBlockQ6K(src[b*QKK:(b+1)*QKK], dst[b*q6KBytes:(b+1)*q6KBytes])
		}
	}
	return dst, nil
}

// Dequantize decodes data of type t into dst. len(data) must be exactly the
// encoded size of len(dst) elements.
func Dequantize(t gguf.Type, data []byte, dst []float32) error {
	size, err := RowBytes(t, len(dst))
	if err != nil {
		return fmt.Errorf("dequantize: %w", err)
	}
	if len(data) != size {
		return fmt.Errorf("dequantize %v: %d bytes for %d elements, want %d", t, len(data), len(dst), size)
	}
	switch t {
	case gguf.TypeF32:
		for i := range dst {
			dst[i] = math.Float32frombits(getU32(data[4*i:]))
		}
	case gguf.TypeF16:
		tab := fp16Table()
		for i := range dst {
			dst[i] = tab[getU16(data[2*i:])]
		}
	case gguf.TypeBF16:
		for i := range dst {
			dst[i] = BF16ToFP32(getU16(data[2*i:]))
		}
	case gguf.TypeQ4_0:
		for b := 0; b < len(dst)/QK4_0; b++ {
			dequantBlockQ4_0(data[b*q4_0Bytes:(b+1)*q4_0Bytes], dst[b*QK4_0:(b+1)*QK4_0])
		}
	case gguf.TypeQ8_0:
		for b := 0; b < len(dst)/QK8_0; b++ {
			dequantBlockQ8_0(data[b*q8_0Bytes:(b+1)*q8_0Bytes], dst[b*QK8_0:(b+1)*QK8_0])
		}
	case gguf.TypeQ4_K:
		for b := 0; b < len(dst)/QKK; b++ {
			dequantBlockQ4K(data[b*q4KBytes:(b+1)*q4KBytes], dst[b*QKK:(b+1)*QKK])
		}
	case gguf.TypeQ6_K:
		for b := 0; b < len(dst)/QKK; b++ {
			dequantBlockQ6K(data[b*q6KBytes:(b+1)*q6KBytes], dst[b*QKK:(b+1)*QKK])
		}
	}
	return nil
}

func putU16(b []byte, v uint16) { _ = b[1]; b[0] = byte(v); b[1] = byte(v >> 8) }
func putU32(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
func getU16(b []byte) uint16 { _ = b[1]; return uint16(b[0]) | uint16(b[1])<<8 }
func getU32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func abs32(f float32) float32 { return math.Float32frombits(math.Float32bits(f) &^ 0x80000000) }

// nearestInt is ggml's nearest_int: round half to even via the magic-number
// trick, valid for |f| <= 4194303.
func nearestInt(f float32) int32 {
	v := float32(f) + 12582912 // the conversion keeps a caller's product from fusing
	i := int32(math.Float32bits(v))
	return (i & 0x007fffff) - 0x00400000
}
