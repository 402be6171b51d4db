package tokenizer

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/mycel-network/mycel/internal/gguf"
)

// tinyBPE is a small byte-level BPE vocabulary: all 256 byte symbols, a few
// merges, and special tokens.
func tinyBPE(t testing.TB, set func(w *gguf.Writer)) (*Tokenizer, error) {
	t.Helper()
	var tokens []string
	var types []int32
	for b := 0; b < 256; b++ {
		tokens = append(tokens, string(ByteToUnicode(byte(b))))
		types = append(types, 1)
	}
	merges := []string{"h e", "l l", "he ll", "hell o", "Ġ w", "Ġw o"}
	for _, m := range merges {
		tokens = append(tokens, strings.ReplaceAll(m, " ", ""))
		types = append(types, 1)
	}
	tokens = append(tokens, "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool>")
	types = append(types, 3, 3, 3, 4)
	w := gguf.NewWriter()
	w.SetString("tokenizer.ggml.model", "gpt2")
	w.SetString("tokenizer.ggml.pre", "qwen2")
	w.SetStrings("tokenizer.ggml.tokens", tokens)
	w.SetInt32s("tokenizer.ggml.token_type", types)
	w.SetStrings("tokenizer.ggml.merges", merges)
	w.SetUint32("tokenizer.ggml.bos_token_id", 262)
	w.SetUint32("tokenizer.ggml.eos_token_id", 262)
	if set != nil {
		set(w)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return FromGGUF(f)
}

func TestTinyBPE(t *testing.T) {
	tok, err := tinyBPE(t, func(w *gguf.Writer) { w.SetBool("tokenizer.ggml.add_bos_token", true) })
	if err != nil {
		t.Fatal(err)
	}
	const hello, wo = 259, 261
	im0, im1, tool := int32(263), int32(264), int32(265)
	tests := []struct {
		name string
		text string
		opts EncodeOptions
		want []int32
	}{
		{"merges", "hello wo", EncodeOptions{}, []int32{hello, wo}},
		{"bos", "hello", EncodeOptions{AddSpecial: true}, []int32{262, hello}},
		{"control parsed", "<|im_start|>hello<|im_end|>", EncodeOptions{ParseSpecial: true}, []int32{im0, hello, im1}},
		{"control as text", "<|im_end|>", EncodeOptions{}, []int32{'<', '|', 'i', 'm', '_', 'e', 'n', 'd', '|', '>'}},
		{"user-defined always", "a<tool>b", EncodeOptions{}, []int32{'a', tool, 'b'}},
		{"invalid utf8", "\xff", EncodeOptions{}, []int32{int32(0xff)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tok.Encode(tt.text, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Encode(%q) (-want +got):\n%s", tt.text, diff)
			}
		})
	}
	if !tok.IsEOG(262) || !tok.IsEOG(im1) || tok.IsEOG(im0) || tok.IsEOG(hello) {
		t.Error("IsEOG: want eos and <|im_end|> only")
	}
	if tok.BOS() != 262 || tok.EOS() != 262 || tok.VocabSize() != 266 || !tok.AddBOS() {
		t.Errorf("BOS %d EOS %d VocabSize %d", tok.BOS(), tok.EOS(), tok.VocabSize())
	}
	if b, err := tok.TokenBytes(wo); err != nil || string(b) != " wo" {
		t.Errorf("TokenBytes(Ġwo) = %q, %v", b, err)
	}
	if _, err := tok.TokenBytes(9999); err == nil {
		t.Error("TokenBytes out of range succeeded")
	}
	if tok.TokenText(hello) != "hello" || tok.TokenText(-1) != "" {
		t.Error("TokenText")
	}
}

func TestFromGGUFErrors(t *testing.T) {
	tests := []struct {
		name string
		set  func(w *gguf.Writer)
		want string
	}{
		{"model", func(w *gguf.Writer) { w.SetString("tokenizer.ggml.model", "bert") }, `unsupported tokenizer model "bert"`},
		{"pre", func(w *gguf.Writer) { w.SetString("tokenizer.ggml.pre", "klingon") }, `unknown pre-tokenizer "klingon"`},
		{"types length", func(w *gguf.Writer) { w.SetInt32s("tokenizer.ggml.token_type", []int32{1}) }, "token_type has 1 entries for 266 tokens"},
		{"bos range", func(w *gguf.Writer) { w.SetUint32("tokenizer.ggml.bos_token_id", 266) }, "bos_token_id: 266 is outside"},
		{"merges type", func(w *gguf.Writer) { w.SetInt32s("tokenizer.ggml.merges", []int32{1}) }, "tokenizer.ggml.merges: is array of int32"},
		{"bad merge", func(w *gguf.Writer) { w.SetStrings("tokenizer.ggml.merges", []string{"nospace"}) }, "not two tokens"},
		{"empty vocab", func(w *gguf.Writer) {
			w.SetStrings("tokenizer.ggml.tokens", nil)
			w.SetInt32s("tokenizer.ggml.token_type", nil)
		}, "vocabulary of 0 tokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tinyBPE(t, tt.set)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

// TestSPMByteFallback covers a SentencePiece vocabulary without the
// characters of the input: they fall back to <0xXX> tokens.
func TestSPMByteFallback(t *testing.T) {
	tokens := []string{"<unk>", "<s>", "</s>"}
	types := []int32{2, 3, 3}
	for b := 0; b < 256; b++ {
		tokens = append(tokens, fmt.Sprintf("<0x%02X>", b))
		types = append(types, 6)
	}
	tokens = append(tokens, "▁", "a", "b", "▁a", "ab", "▁ab")
	types = append(types, 1, 1, 1, 1, 1, 1)
	scores := make([]float32, len(tokens))
	for i := range scores {
		scores[i] = -float32(i)
	}
	w := gguf.NewWriter()
	w.SetString("tokenizer.ggml.model", "llama")
	w.SetStrings("tokenizer.ggml.tokens", tokens)
	w.SetInt32s("tokenizer.ggml.token_type", types)
	w.SetFloat32s("tokenizer.ggml.scores", scores)
	w.SetUint32("tokenizer.ggml.bos_token_id", 1)
	w.SetUint32("tokenizer.ggml.eos_token_id", 2)
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	base := int32(259)
	got, err := tok.Encode("ab é", EncodeOptions{AddSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	want := []int32{1, base + 5, base, 3 + 0xC3, 3 + 0xA9}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Encode (-want +got):\n%s", diff)
	}
	dec, err := tok.Decode(got)
	if err != nil || dec != "<s>ab é" {
		t.Errorf("Decode = %q, %v", dec, err)
	}
}

// FuzzRoundTrip checks Decode(Encode(s)) == s for the Qwen3 and Llama 3
// vocabularies, and that Encode never produces an out-of-range id.
func FuzzRoundTrip(f *testing.F) {
	for _, s := range []string{"Hello world", "  \n\t x", "你好 🌍", "<|im_start|>user", "a'LL 123456", "\xff\xfe", strings.Repeat("ab", 300)} {
		f.Add(s)
	}
	toks := []*Tokenizer{loadTokenizer(f, "qwen3"), loadTokenizer(f, "llama3")}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range toks {
			ids, err := tok.Encode(s, EncodeOptions{ParseSpecial: true})
			if err != nil {
				t.Fatal(err)
			}
			var raw []byte
			for _, id := range ids {
				b, err := tok.TokenBytes(id)
				if err != nil {
					t.Fatal(err)
				}
				raw = append(raw, b...)
			}
			if string(raw) != s {
				t.Fatalf("token bytes of %q concatenate to %q", s, raw)
			}
			if utf8.ValidString(s) {
				dec, err := tok.Decode(ids)
				if err != nil || dec != s {
					t.Fatalf("Decode(Encode(%q)) = %q, %v", s, dec, err)
				}
			}
		}
	})
}

func BenchmarkEncode(b *testing.B) {
	text := strings.Repeat("The quick brown fox jumps over the lazy dog; 你好，世界！ func main() { return 42 }\n", 40)
	for _, name := range goldenSets {
		tok := loadTokenizer(b, name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				tok.mu.Lock()
				clear(tok.cache)
				tok.mu.Unlock()
				if _, err := tok.Encode(text, EncodeOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLongWord encodes one 64 KiB word: the BPE merge loop must stay
// near-linear (heap and linked list), not quadratic.
func BenchmarkLongWord(b *testing.B) {
	tok := loadTokenizer(b, "qwen3")
	for _, n := range []int{1 << 12, 1 << 16} {
		word := strings.Repeat("abcdefghij", n/10)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(len(word)))
			for b.Loop() {
				if _, err := tok.Encode(word, EncodeOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestConcurrentEncode runs Encode from several goroutines on one
// Tokenizer (the word cache is shared); run with -race.
func TestConcurrentEncode(t *testing.T) {
	tok := loadTokenizer(t, "qwen3")
	texts := []string{"Hello world", "你好，世界", "func main() {}", "Hello world"}
	want := make([][]int32, len(texts))
	for i, s := range texts {
		want[i], _ = tok.Encode(s, EncodeOptions{})
	}
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for k := 0; k < 200; k++ {
				i := (g + k) % len(texts)
				got, err := tok.Encode(texts[i], EncodeOptions{})
				if err == nil && !cmp.Equal(want[i], got) {
					err = fmt.Errorf("Encode(%q) = %v, want %v", texts[i], got, want[i])
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// BenchmarkFromGGUF builds the Qwen3 tokenizer (151,669 tokens, 151,387
// merges) from parsed metadata.
func BenchmarkFromGGUF(b *testing.B) {
	fd, err := os.Open("testdata/qwen3.vocab.json.gz")
	if err != nil {
		b.Fatal(err)
	}
	defer fd.Close()
	zr, err := gzip.NewReader(fd)
	if err != nil {
		b.Fatal(err)
	}
	var v vocabFile
	if err := json.NewDecoder(zr).Decode(&v); err != nil {
		b.Fatal(err)
	}
	f := ggufFromVocab(b, v)
	for b.Loop() {
		if _, err := FromGGUF(f); err != nil {
			b.Fatal(err)
		}
	}
}
