package tokenizer

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPreTokenize(t *testing.T) {
	tests := []struct {
		pre, text string
		want      []string
	}{
		{"gpt2", "Hello world's  test 123!!", []string{"Hello", " world", "'s", " ", " test", " 123", "!!"}},
		{"gpt2", "a\tb  \n", []string{"a", "\t", "b", "  \n"}},
		{"gpt2", "I'LL go", []string{"I", "'", "LL", " go"}},
		{"llama-bpe", "Hello world's  test 12345!!\n\n  x", []string{"Hello", " world", "'s", " ", " test", " ", "123", "45", "!!\n\n", " ", " x"}},
		{"llama-bpe", "I'LL go", []string{"I", "'LL", " go"}},
		{"llama-bpe", "x = 1;\n  \n\ty", []string{"x", " =", " ", "1", ";\n", "  \n", "\ty"}},
		{"llama-bpe", "  end  ", []string{" ", " end", "  "}},
		{"llama-bpe", "(hello)", []string{"(hello", ")"}},
		{"qwen2", "abc 12345 你好世界", []string{"abc", " ", "1", "2", "3", "4", "5", " 你好世界"}},
		{"deepseek-r1-qwen", "x\r\ny", []string{"x", "\r\n", "y"}},
		{"default", "a+b=3000!", []string{"a", "+", "b", "=", "300", "0", "!"}},
		{"deepseek-llm", "Hello, 世界 123\n", []string{"Hello", ",", " ", "世界", " ", "123", "\n"}},
		{"gpt2", "bad\xffbyte", []string{"bad", "\xff", "byte"}},
	}
	for _, tt := range tests {
		t.Run(tt.pre+"/"+tt.text, func(t *testing.T) {
			got, err := PreTokenize(tt.pre, tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("PreTokenize(%q, %q) (-want +got):\n%s", tt.pre, tt.text, diff)
			}
		})
	}
	if _, err := PreTokenize("no-such", "x"); err == nil {
		t.Error("unknown pre-tokenizer accepted")
	}
}

func TestByteToUnicode(t *testing.T) {
	seen := map[rune]bool{}
	for b := 0; b < 256; b++ {
		r := ByteToUnicode(byte(b))
		if seen[r] {
			t.Fatalf("rune %U used twice", r)
		}
		seen[r] = true
		back, ok := UnicodeToByte(r)
		if !ok || back != byte(b) {
			t.Errorf("UnicodeToByte(%U) = %d, %v; want %d", r, back, ok, b)
		}
	}
	for _, tt := range []struct {
		b byte
		r rune
	}{{' ', 'Ġ'}, {'\n', 'Ċ'}, {'a', 'a'}, {0, 'Ā'}, {0xAD, 'Ń'}, {0xFF, 'ÿ'}} {
		if got := ByteToUnicode(tt.b); got != tt.r {
			t.Errorf("ByteToUnicode(%#x) = %U, want %U", tt.b, got, tt.r)
		}
	}
	if _, ok := UnicodeToByte('Ġ' + 200); ok {
		t.Error("UnicodeToByte accepted a rune outside the table")
	}
}

func FuzzPreTokenize(f *testing.F) {
	for _, s := range []string{"Hello world's  test 123!!", "x\r\n\t y  ", "你好 🌍 ١٢٣", "bad\xff"} {
		f.Add(s)
	}
	pres := []string{"default", "gpt2", "llama-bpe", "qwen2", "deepseek-llm"}
	f.Fuzz(func(t *testing.T, s string) {
		for _, pre := range pres {
			words, err := PreTokenize(pre, s)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range words {
				if w == "" {
					t.Fatalf("%s: empty word in %q", pre, words)
				}
			}
			if got := strings.Join(words, ""); got != s {
				t.Fatalf("%s: words %q do not concatenate to %q", pre, words, s)
			}
		}
	})
}
