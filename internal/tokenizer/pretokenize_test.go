package tokenizer

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"os"
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

// TestPreTokenizeGolden compares PreTokenize with llama.cpp's pre-tokenizer
// regular expressions run by JavaScript's regex engine
// (scripts/tokgolden/gen.mjs).
func TestPreTokenizeGolden(t *testing.T) {
	fd, err := os.Open("testdata/pretokenize.golden.jsonl.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	zr, err := gzip.NewReader(fd)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	n, failed := 0, 0
	for sc.Scan() {
		var c struct {
			Pre   string   `json:"pre"`
			Text  string   `json:"text"`
			Words []string `json:"words"`
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		n++
		got, err := PreTokenize(c.Pre, c.Text)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Words) == 0 {
			c.Words = nil
		}
		if diff := cmp.Diff(c.Words, got); diff != "" {
			failed++
			if failed <= 10 {
				t.Errorf("PreTokenize(%q, %q) (-want +got):\n%s", c.Pre, c.Text, diff)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 5000 || failed > 0 {
		t.Errorf("%d of %d cases failed", failed, n)
	}
}

func TestDeepSeekTablesOrdered(t *testing.T) {
	for name, table := range map[string][]rune{"letters": deepSeekLetters, "punct": deepSeekPunct, "cjk": deepSeekCJK} {
		if len(table)%2 != 0 {
			t.Fatalf("%s: odd length", name)
		}
		for i := 0; i < len(table); i += 2 {
			if table[i] > table[i+1] {
				t.Errorf("%s: range %U-%U is reversed", name, table[i], table[i+1])
			}
		}
	}
}
