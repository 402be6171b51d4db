package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func sampleWriter(t testing.TB) *Writer {
	t.Helper()
	w := NewWriter()
	w.SetString("general.architecture", "llama")
	w.SetUint32("llama.block_count", 2)
	w.SetUint64("llama.context_length", 4096)
	w.SetInt32("tokenizer.ggml.bos_token_id", 1)
	w.SetFloat32("llama.rope.freq_base", 10000)
	w.SetBool("tokenizer.ggml.add_bos_token", true)
	w.SetStrings("tokenizer.ggml.tokens", []string{"<s>", "a", "b", "ab"})
	w.SetInt32s("tokenizer.ggml.token_type", []int32{3, 1, 1, -1})
	w.SetFloat32s("tokenizer.ggml.scores", []float32{0, -1.5, -2, float32(math.Inf(-1))})
	w.Set("x.nested", Value{Type: ValueArray, ElemType: ValueArray, arrs: []Value{StringsValue([]string{"p", "q"}), Int32sValue([]int32{7})}})
	f32 := make([]byte, 4*8*2)
	for i := range f32 {
		f32[i] = byte(i)
	}
	if err := w.AddTensor("tok_embd.weight", TypeF32, []uint64{8, 2}, f32); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("q8", TypeQ8_0, []uint64{64}, bytes.Repeat([]byte{9}, 68)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("q4k", TypeQ4_K, []uint64{256, 1}, bytes.Repeat([]byte{5}, 144)); err != nil {
		t.Fatal(err)
	}
	return w
}

func encode(t testing.TB, w *Writer) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := w.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	data := encode(t, sampleWriter(t))
	if again := encode(t, sampleWriter(t)); !bytes.Equal(data, again) {
		t.Fatal("writer output is not deterministic")
	}
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || f.Alignment != 32 {
		t.Errorf("version %d alignment %d, want 3 and 32", f.Version, f.Alignment)
	}
	var keys []string
	for _, kv := range f.KV {
		keys = append(keys, kv.Key)
	}
	wantKeys := []string{"general.architecture", "llama.block_count", "llama.context_length", "tokenizer.ggml.bos_token_id",
		"llama.rope.freq_base", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
		"tokenizer.ggml.scores", "x.nested"}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
	if s, err := f.String("general.architecture"); err != nil || s != "llama" {
		t.Errorf("String = %q, %v", s, err)
	}
	for _, k := range []string{"llama.block_count", "llama.context_length", "tokenizer.ggml.bos_token_id"} {
		if _, err := f.Uint(k); err != nil {
			t.Errorf("Uint(%s): %v", k, err)
		}
	}
	if v, _ := f.Uint("llama.context_length"); v != 4096 {
		t.Errorf("context_length = %d", v)
	}
	if v, err := f.Float("llama.rope.freq_base"); err != nil || v != 10000 {
		t.Errorf("Float = %v, %v", v, err)
	}
	if v, err := f.Bool("tokenizer.ggml.add_bos_token"); err != nil || !v {
		t.Errorf("Bool = %v, %v", v, err)
	}
	toks, err := f.Strings("tokenizer.ggml.tokens")
	if diff := cmp.Diff([]string{"<s>", "a", "b", "ab"}, toks); diff != "" || err != nil {
		t.Errorf("Strings: %v (-want +got):\n%s", err, diff)
	}
	ints, err := f.Ints("tokenizer.ggml.token_type")
	if diff := cmp.Diff([]int64{3, 1, 1, -1}, ints); diff != "" || err != nil {
		t.Errorf("Ints: %v (-want +got):\n%s", err, diff)
	}
	fl, err := f.Floats("tokenizer.ggml.scores")
	if diff := cmp.Diff([]float32{0, -1.5, -2, float32(math.Inf(-1))}, fl); diff != "" || err != nil {
		t.Errorf("Floats: %v (-want +got):\n%s", err, diff)
	}
	nested, _ := f.Get("x.nested")
	arrs, ok := nested.Arrays()
	if !ok || len(arrs) != 2 {
		t.Fatalf("nested = %v", nested)
	}
	if s, _ := arrs[0].Strings(); !cmp.Equal(s, []string{"p", "q"}) {
		t.Errorf("nested[0] = %v", s)
	}

	wantTensors := []TensorInfo{
		{Name: "tok_embd.weight", Dims: []uint64{8, 2}, Type: TypeF32, Offset: 0, Size: 64},
		{Name: "q8", Dims: []uint64{64}, Type: TypeQ8_0, Offset: 64, Size: 68},
		{Name: "q4k", Dims: []uint64{256, 1}, Type: TypeQ4_K, Offset: 160, Size: 144},
	}
	if diff := cmp.Diff(wantTensors, f.Tensors); diff != "" {
		t.Errorf("tensors (-want +got):\n%s", diff)
	}
	ti, b, err := f.Tensor("tok_embd.weight")
	if err != nil || ti.Size != 64 || b[0] != 0 || b[63] != 63 {
		t.Errorf("Tensor: %v %v", ti, err)
	}
	if _, b, _ := f.Tensor("q8"); !bytes.Equal(b, bytes.Repeat([]byte{9}, 68)) {
		t.Error("q8 data differs")
	}
	if f.DataOffset()%32 != 0 {
		t.Errorf("data offset %d not aligned", f.DataOffset())
	}
}

func TestAccessorErrors(t *testing.T) {
	w := NewWriter()
	w.SetString("s", "x")
	w.SetInt32("neg", -3)
	w.SetFloat32s("fl", []float32{1})
	f, err := Parse(encode(t, w))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"missing", func() error { _, err := f.String("nope"); return err }, "metadata key nope: missing"},
		{"string as uint", func() error { _, err := f.Uint("s"); return err }, "metadata key s: is string, want unsigned integer"},
		{"negative", func() error { _, err := f.Uint("neg"); return err }, "negative value -3"},
		{"floats as strings", func() error { _, err := f.Strings("fl"); return err }, "is array of float32, want array of string"},
		{"int as bool", func() error { _, err := f.Bool("neg"); return err }, "is int32, want bool"},
		{"no tensor", func() error { _, _, err := f.Tensor("w"); return err }, "tensor w: not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestWriterAlignment(t *testing.T) {
	w := NewWriter()
	w.SetUint32("general.alignment", 64)
	if err := w.AddTensor("a", TypeF32, []uint64{3}, make([]byte, 12)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("b", TypeF16, []uint64{5}, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(encode(t, w))
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 64 || f.DataOffset()%64 != 0 || f.Tensors[1].Offset != 64 {
		t.Errorf("alignment %d, data offset %d, second tensor at %d", f.Alignment, f.DataOffset(), f.Tensors[1].Offset)
	}
	w.SetUint32("general.alignment", 48)
	if _, err := w.WriteTo(&bytes.Buffer{}); err == nil {
		t.Error("alignment 48 accepted")
	}
}

func TestAddTensorErrors(t *testing.T) {
	tests := []struct {
		name  string
		tname string
		typ   Type
		dims  []uint64
		size  int
		want  string
	}{
		{"wrong size", "a", TypeF32, []uint64{4}, 15, "15 bytes of data"},
		{"zero dim", "a", TypeF32, []uint64{4, 0}, 0, "dimension 1 is zero"},
		{"five dims", "a", TypeF32, []uint64{1, 1, 1, 1, 1}, 4, "5 dimensions"},
		{"not block multiple", "a", TypeQ4_0, []uint64{33}, 18, "not a multiple of the Q4_0 block size 32"},
		{"unknown type", "a", Type(99), []uint64{1}, 1, "unknown type 99"},
		{"duplicate", "dup", TypeF32, []uint64{1}, 4, "duplicate"},
		{"long name", strings.Repeat("n", 64), TypeF32, []uint64{1}, 4, "name length 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWriter()
			if err := w.AddTensor("dup", TypeF32, []uint64{1}, make([]byte, 4)); err != nil {
				t.Fatal(err)
			}
			err := w.AddTensor(tt.tname, tt.typ, tt.dims, make([]byte, tt.size))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

// header builds the start of a GGUF file by hand for the corruption tests.
type header struct{ bytes.Buffer }

func (h *header) u32(v uint32) *header { binary.Write(h, binary.LittleEndian, v); return h }
func (h *header) u64(v uint64) *header { binary.Write(h, binary.LittleEndian, v); return h }
func (h *header) str(s string) *header { h.u64(uint64(len(s))); h.WriteString(s); return h }
func newHeader(version uint32, tensors, kvs uint64) *header {
	h := &header{}
	h.WriteString("GGUF")
	return h.u32(version).u64(tensors).u64(kvs)
}

func dupKey() []byte {
	h := newHeader(3, 0, 2)
	h.str("k").u32(0)
	h.WriteByte(1)
	h.str("k").u32(0)
	h.WriteByte(2)
	return h.Bytes()
}

func overlapping() []byte {
	h := newHeader(3, 2, 0)
	h.str("a").u32(1).u64(16).u32(0).u64(0)
	h.str("b").u32(1).u64(16).u32(0).u64(32)
	for h.Len()%32 != 0 {
		h.WriteByte(0)
	}
	h.Write(make([]byte, 128))
	return h.Bytes()
}

func TestParseErrors(t *testing.T) {
	good := encode(t, sampleWriter(t))
	// tensorFile returns a file with one tensor whose info is given by fn.
	tensorFile := func(fn func(h *header), dataLen int) []byte {
		h := newHeader(3, 1, 0)
		fn(h)
		for h.Len()%32 != 0 {
			h.WriteByte(0)
		}
		h.Write(make([]byte, dataLen))
		return h.Bytes()
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"magic", append([]byte("GGUX"), good[4:]...), "bad magic"},
		{"version 1", newHeader(1, 0, 0).Bytes(), "unsupported version 1"},
		{"huge kv count", newHeader(3, 0, 1<<60).Bytes(), "metadata count 1152921504606846976 cannot fit"},
		{"huge tensor count", newHeader(3, 1<<40, 0).Bytes(), "tensor count"},
		{"truncated", good[:len(good)-1], "extends past end of file"},
		{"truncated key", newHeader(3, 0, 1).str("k").Bytes()[:30], "metadata count 1 cannot fit"},
		{"string length", newHeader(3, 0, 1).str("k").u32(8).u64(1 << 50).Bytes(), "length 1125899906842624"},
		{"unknown value type", newHeader(3, 0, 1).str("k").u32(13).u64(0).Bytes(), "metadata key k: unknown value type 13"},
		{"array too long", newHeader(3, 0, 1).str("k").u32(9).u32(4).u64(1 << 40).Bytes(), "cannot fit"},
		{"string array too long", newHeader(3, 0, 1).str("k").u32(9).u32(8).u64(3).u64(0).u64(100).u64(0).Bytes(), "array element 1: length 100"},
		{"deep nesting", newHeader(3, 0, 1).str("k").u32(9).u32(9).u64(1).u32(9).u64(1).u32(9).u64(1).u32(4).u64(0).Bytes(), "nested deeper"},
		{"duplicate key", dupKey(), "metadata key k: duplicate"},
		{"bad bool", append(newHeader(3, 0, 1).str("k").u32(7).Bytes(), 2), "bool value 2"},
		{"alignment type", newHeader(3, 0, 1).str("general.alignment").u32(10).u64(32).Bytes(), "want uint32"},
		{"alignment value", newHeader(3, 0, 1).str("general.alignment").u32(4).u32(24).Bytes(), "not a power of two"},
		{"zero dims", tensorFile(func(h *header) { h.str("w").u32(0) }, 0), "tensor w: 0 dimensions"},
		{"zero dim", tensorFile(func(h *header) { h.str("w").u32(2).u64(4).u64(0) }, 0), "tensor w: dimension 1 is zero"},
		{"dims overflow", tensorFile(func(h *header) { h.str("w").u32(2).u64(1 << 40).u64(1 << 40) }, 0), "overflows"},
		{"unknown type", tensorFile(func(h *header) { h.str("w").u32(1).u64(4).u32(5).u64(0) }, 16), "tensor w: unknown type 5"},
		{"block multiple", tensorFile(func(h *header) { h.str("w").u32(1).u64(4).u32(2).u64(0) }, 64), "not a multiple"},
		{"misaligned", tensorFile(func(h *header) { h.str("w").u32(1).u64(4).u32(0).u64(8) }, 64), "tensor w: offset 8 is not a multiple of the alignment 32"},
		{"past end", tensorFile(func(h *header) { h.str("blk.3.attn_q.weight").u32(1).u64(100).u32(0).u64(0) }, 64), "tensor blk.3.attn_q.weight: data [offset 96, size 400] extends past end of file (size 160)"},
		{"overlap", overlapping(), "tensor b: data [offset 32, size 64] overlaps tensor a [offset 0, size 64]"},
		{"name too long", tensorFile(func(h *header) { h.str(strings.Repeat("x", 64)).u32(1).u64(4).u32(0).u64(0) }, 64), "name length 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	data := encode(t, sampleWriter(t))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var last, total int64
	f, err := Open(path, WithProgress(func(done, tot int64) { last, total = done, tot }))
	if err != nil {
		t.Fatal(err)
	}
	if last != int64(len(data)) || total != int64(len(data)) {
		t.Errorf("progress ended at %d/%d, want %d", last, total, len(data))
	}
	_, b, err := f.Tensor("q4k")
	if err != nil || !bytes.Equal(b, bytes.Repeat([]byte{5}, 144)) {
		t.Errorf("tensor q4k: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Tensor("q4k"); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Tensor after Close: %v, want a closed-file error", err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := os.WriteFile(path, data[:len(data)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("truncated file: got %v, want error naming the path", err)
	}
}

func TestTypeSizes(t *testing.T) {
	tests := []struct {
		t                 Type
		name              string
		blockSize, blockB int
	}{
		{TypeF32, "F32", 1, 4}, {TypeF16, "F16", 1, 2}, {TypeQ4_0, "Q4_0", 32, 18}, {TypeQ8_0, "Q8_0", 32, 34},
		{TypeQ4_K, "Q4_K", 256, 144}, {TypeQ6_K, "Q6_K", 256, 210}, {TypeBF16, "BF16", 1, 2},
	}
	for _, tt := range tests {
		if tt.t.String() != tt.name || tt.t.BlockSize() != tt.blockSize || tt.t.BlockBytes() != tt.blockB || !tt.t.Supported() {
			t.Errorf("%d: got %s %d %d %v", tt.t, tt.t, tt.t.BlockSize(), tt.t.BlockBytes(), tt.t.Supported())
		}
	}
	if n, err := TypeQ6_K.RowBytes(512); err != nil || n != 420 {
		t.Errorf("Q6_K.RowBytes(512) = %d, %v", n, err)
	}
	if _, err := TypeQ4_K.RowBytes(100); err == nil {
		t.Error("Q4_K.RowBytes(100) succeeded")
	}
	if TypeQ5_K.Supported() || TypeQ5_K.String() != "Q5_K" || Type(200).String() != "type(200)" {
		t.Error("unsupported type names wrong")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(encode(f, sampleWriter(f)))
	f.Add(encode(f, NewWriter()))
	w := NewWriter()
	w.SetUint32("general.alignment", 64)
	w.SetStrings("s", []string{"", "x"})
	f.Add(encode(f, w))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		for _, ti := range file.Tensors {
			_, b, err := file.Tensor(ti.Name)
			if err != nil || uint64(len(b)) != ti.Size {
				t.Fatalf("tensor %s: %v, %d bytes, want %d", ti.Name, err, len(b), ti.Size)
			}
		}
		for _, kv := range file.KV {
			_ = kv.Value.String()
		}
	})
}

func TestVersion2(t *testing.T) {
	data := encode(t, sampleWriter(t))
	binary.LittleEndian.PutUint32(data[4:], 2)
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 2 || len(f.Tensors) != 3 {
		t.Errorf("version %d, %d tensors", f.Version, len(f.Tensors))
	}
}

func TestValueString(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{StringValue("a\"b"), `"a\"b"`},
		{Int32Value(-5), "-5"},
		{Uint64Value(7), "7"},
		{BoolValue(true), "true"},
		{Float32Value(1.5), "1.5"},
		{Int32sValue([]int32{1, 2, 3, 4, 5, 6, 7, 8, 9}), "[1, 2, 3, 4, 5, 6, 7, 8, ... (9 elements)]"},
		{StringsValue([]string{"x"}), `["x"]`},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
	}
	if n, ok := Int64Value(-1).Uint(); ok {
		t.Errorf("Uint of -1 = %d, ok", n)
	}
	if n, ok := Uint64Value(1 << 63).Int(); ok {
		t.Errorf("Int of 1<<63 = %d, ok", n)
	}
}

// BenchmarkParseVocab parses a file whose metadata holds a 150,000-entry
// vocabulary and merge list, the bulk of a real model's header.
func BenchmarkParseVocab(b *testing.B) {
	const n = 150000
	tokens := make([]string, n)
	merges := make([]string, n)
	types := make([]int32, n)
	for i := range tokens {
		tokens[i] = "tok" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
		merges[i] = tokens[i] + " " + tokens[(i+1)%n]
		types[i] = 1
	}
	w := NewWriter()
	w.SetStrings("tokenizer.ggml.tokens", tokens)
	w.SetStrings("tokenizer.ggml.merges", merges)
	w.SetInt32s("tokenizer.ggml.token_type", types)
	data := encode(b, w)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
