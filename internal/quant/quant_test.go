package quant

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mycel-network/mycel/internal/gguf"
)

var writeInput = flag.Bool("write-input", false, "rewrite testdata/ggmlref_input.f32")

var allTypes = []gguf.Type{gguf.TypeF32, gguf.TypeF16, gguf.TypeBF16, gguf.TypeQ4_0, gguf.TypeQ8_0, gguf.TypeQ4_K, gguf.TypeQ6_K}

// lcg is a tiny deterministic generator for test inputs.
type lcg uint64

func (r *lcg) next() uint64 {
	*r = *r*6364136223846793005 + 1442695040888963407
	return uint64(*r)
}

// uniform returns a value in [-1, 1) that is exactly representable, so the
// same inputs are produced by any implementation.
func (r *lcg) uniform() float32 {
	return float32(int32(r.next()>>43)-(1<<20)) / (1 << 20)
}

// testInput returns 16 super-blocks (4096 values) of varied shapes.
func testInput() []float32 {
	r := lcg(42)
	x := make([]float32, 16*QKK)
	for c := 0; c < 16; c++ {
		blk := x[c*QKK : (c+1)*QKK]
		for i := range blk {
			u := r.uniform()
			switch c {
			case 0: // all zero
			case 1:
				blk[i] = u
			case 2: // all positive
				blk[i] = abs32(u) + 0.25
			case 3: // one outlier
				blk[i] = u * 0.01
				if i == 77 {
					blk[i] = -3
				}
			case 4: // tiny values
				blk[i] = u / (1 << 20)
			case 5: // zero sub-blocks
				if (i/32)%2 == 0 {
					blk[i] = u
				}
			case 6: // large values
				blk[i] = u * 1024
			case 7: // all negative
				blk[i] = -abs32(u) - 1
			default: // roughly gaussian
				blk[i] = (u + r.uniform() + r.uniform() + r.uniform()) / 2
			}
		}
	}
	return x
}

// TestGGMLReference compares Quantize with bytes produced by ggml's own C
// reference quantisers (testdata/gen_ggmlref.sh).
func TestGGMLReference(t *testing.T) {
	in := testInput()
	if *writeInput {
		var buf bytes.Buffer
		if err := binary.Write(&buf, binary.LittleEndian, in); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "ggmlref_input.f32"), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "ggmlref_input.f32"))
	if err != nil {
		t.Fatal(err)
	}
	var stored []float32 = make([]float32, len(raw)/4)
	if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, stored); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, stored); diff != "" {
		t.Fatalf("test input changed; rerun with -write-input and gen_ggmlref.sh (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		name string
		typ  gguf.Type
	}{{"q4_0", gguf.TypeQ4_0}, {"q8_0", gguf.TypeQ8_0}, {"q4_K", gguf.TypeQ4_K}, {"q6_K", gguf.TypeQ6_K}, {"f16", gguf.TypeF16}, {"bf16", gguf.TypeBF16}} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join("testdata", "ggmlref_"+tc.name+".bin"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Quantize(tc.typ, in)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("len = %d, want %d", len(got), len(want))
			}
			_, bb, _ := layout(tc.typ)
			for off := 0; off < len(got); off += bb {
				if !bytes.Equal(got[off:off+bb], want[off:off+bb]) {
					t.Errorf("block at byte %d differs from ggml:\n got %x\nwant %x", off, got[off:off+bb], want[off:off+bb])
					return
				}
			}
		})
	}
}

// naiveFP16 decodes a half-precision value from its definition.
func naiveFP16(h uint16) float32 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	e := int(h>>10) & 0x1f
	m := float64(h & 0x3ff)
	switch e {
	case 0:
		return float32(sign * m * math.Pow(2, -24))
	case 31:
		if m != 0 {
			return float32(math.NaN())
		}
		return float32(sign * math.Inf(1))
	}
	return float32(sign * (1 + m/1024) * math.Pow(2, float64(e-15)))
}

func TestFP16(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got, want := FP16ToFP32(h), naiveFP16(h)
		if math.IsNaN(float64(want)) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("FP16ToFP32(%#x) = %v, want NaN", h, got)
			}
			continue
		}
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("FP16ToFP32(%#x) = %v, want %v", h, got, want)
		}
		if back := FP32ToFP16(got); back != h {
			t.Fatalf("FP32ToFP16(%v) = %#x, want %#x", got, back, h)
		}
	}
	// Round to nearest even between two halves.
	one := float32(1)
	halfULP := float32(math.Pow(2, -11))
	if got := FP32ToFP16(one + halfULP); got != 0x3c00 {
		t.Errorf("1+half ulp -> %#x, want 0x3c00 (ties to even)", got)
	}
	if got := FP32ToFP16(one + 3*halfULP); got != 0x3c02 {
		t.Errorf("1+3 half ulp -> %#x, want 0x3c02", got)
	}
}

// TestRoundTrip bounds |dequant(quant(x)) - x| per super-block by each
// format's step size.
func TestRoundTrip(t *testing.T) {
	in := testInput()
	tests := []struct {
		typ gguf.Type
		// relative error bound against the block's max |x|
		tol float64
	}{
		{gguf.TypeF32, 0},
		{gguf.TypeF16, 1e-3},
		{gguf.TypeBF16, 8e-3},
		{gguf.TypeQ8_0, 1.0 / 127},
		{gguf.TypeQ4_0, 1.0 / 8},
		{gguf.TypeQ4_K, 0.15},
		{gguf.TypeQ6_K, 1.0 / 24},
	}
	for _, tc := range tests {
		t.Run(tc.typ.String(), func(t *testing.T) {
			enc, err := Quantize(tc.typ, in)
			if err != nil {
				t.Fatal(err)
			}
			out := make([]float32, len(in))
			if err := Dequantize(tc.typ, enc, out); err != nil {
				t.Fatal(err)
			}
			for c := 0; c < len(in)/QKK; c++ {
				var amax float64
				for _, v := range in[c*QKK : (c+1)*QKK] {
					amax = math.Max(amax, math.Abs(float64(v)))
				}
				// Scales are float16 (except F32/BF16): blocks of tiny values
				// lose precision to its subnormal range, hence the absolute term.
				for i := c * QKK; i < (c+1)*QKK; i++ {
					if e := math.Abs(float64(out[i] - in[i])); e > tc.tol*amax+1e-6 {
						t.Fatalf("element %d: got %v, want %v (err %g > %g)", i, out[i], in[i], e, tc.tol*amax)
					}
				}
			}
		})
	}
}

// TestDot checks every kernel against a float64 dot product of the
// dequantised row and the dequantised (quantised) activations, which the
// kernels must reproduce up to float32 rounding.
func TestDot(t *testing.T) {
	in := testInput()
	r := lcg(7)
	x := make([]float32, 2*QKK)
	for i := range x {
		x[i] = r.uniform() * 2
	}
	for _, typ := range allTypes {
		t.Run(typ.String(), func(t *testing.T) {
			var v Vec
			v.Load(x)
			v.Prepare(typ)
			xd := v.dequantized(typ)
			for c := 0; c+2*QKK <= len(in); c += 2 * QKK {
				row, err := Quantize(typ, in[c:c+2*QKK])
				if err != nil {
					t.Fatal(err)
				}
				w := make([]float32, 2*QKK)
				if err := Dequantize(typ, row, w); err != nil {
					t.Fatal(err)
				}
				var want, mag float64
				for i := range w {
					want += float64(w[i]) * float64(xd[i])
					mag += math.Abs(float64(w[i]) * float64(xd[i]))
				}
				got := DotVec(typ, row, &v)
				if math.Abs(float64(got)-want) > 1e-5*mag+1e-30 {
					t.Errorf("rows at %d: DotVec = %v, want %v", c, got, want)
				}
				if got2 := Dot(typ, row, x); got2 != got {
					t.Errorf("Dot = %v, DotVec = %v; want identical", got2, got)
				}
			}
		})
	}
}

// dequantized returns the activation values the kernels for t actually use.
func (v *Vec) dequantized(t gguf.Type) []float32 {
	out := make([]float32, len(v.x))
	switch t {
	case gguf.TypeQ4_0, gguf.TypeQ8_0:
		for i := range out {
			out[i] = v.q80D[i/QK8_0] * float32(v.q80Q[i])
		}
	case gguf.TypeQ4_K, gguf.TypeQ6_K:
		for i := range out {
			out[i] = v.q8KD[i/QKK] * float32(v.q8KQ[i])
		}
	default:
		copy(out, v.x)
	}
	return out
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		typ  gguf.Type
		data int
		n    int
	}{
		{"unsupported type", gguf.TypeQ5_0, 22, 32},
		{"not a block multiple", gguf.TypeQ4_K, 144, 100},
		{"short data", gguf.TypeQ8_0, 33, 32},
		{"long data", gguf.TypeF32, 12, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := Dequantize(tc.typ, make([]byte, tc.data), make([]float32, tc.n)); err == nil {
				t.Error("Dequantize: want error")
			}
		})
	}
	if _, err := Quantize(gguf.TypeQ4_0, make([]float32, 31)); err == nil {
		t.Error("Quantize 31 values as Q4_0: want error")
	}
}

func FuzzDequantize(f *testing.F) {
	f.Add(uint8(0), []byte{1, 2, 3, 4})
	f.Add(uint8(3), make([]byte, q4_0Bytes))
	f.Add(uint8(5), make([]byte, q4KBytes))
	f.Add(uint8(6), bytes.Repeat([]byte{0xff}, q6KBytes))
	f.Fuzz(func(t *testing.T, ti uint8, data []byte) {
		typ := allTypes[int(ti)%len(allTypes)]
		bs, bb, _ := layout(typ)
		n := len(data) / bb * bs
		out := make([]float32, n)
		err := Dequantize(typ, data, out)
		if (len(data)%bb == 0) != (err == nil) {
			t.Fatalf("Dequantize(%v, %d bytes) err = %v", typ, len(data), err)
		}
		if err == nil && n > 0 {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(i%7) - 3
			}
			_ = Dot(typ, data, x)
		}
		// Wrong element counts must be rejected, not read out of bounds.
		_ = Dequantize(typ, data, make([]float32, n+bs))
	})
}
