package tokenizer

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mycel-network/mycel/internal/gguf"
)

// vocabFile is the JSON form of tokenizer.ggml.* metadata written by
// scripts/tokgolden/gen.mjs.
type vocabFile struct {
	Model       string    `json:"model"`
	Pre         string    `json:"pre"`
	Tokens      []string  `json:"tokens"`
	TokenType   []int32   `json:"token_type"`
	Merges      []string  `json:"merges"`
	Scores      []float32 `json:"scores"`
	BOS         *int32    `json:"bos_token_id"`
	EOS         *int32    `json:"eos_token_id"`
	AddBOSToken bool      `json:"add_bos_token"`
}

type goldenCase struct {
	Text       string  `json:"text"`
	Special    bool    `json:"special"`
	AddSpecial bool    `json:"add_special"`
	IDs        []int32 `json:"ids"`
}

// ggufFromVocab writes the vocabulary into a GGUF file with the package's
// own writer and parses it back, so that the test covers FromGGUF.
func ggufFromVocab(t testing.TB, v vocabFile) *gguf.File {
	t.Helper()
	w := gguf.NewWriter()
	w.SetString("general.architecture", "llama")
	w.SetString("tokenizer.ggml.model", v.Model)
	w.SetString("tokenizer.ggml.pre", v.Pre)
	w.SetStrings("tokenizer.ggml.tokens", v.Tokens)
	w.SetInt32s("tokenizer.ggml.token_type", v.TokenType)
	if v.Merges != nil {
		w.SetStrings("tokenizer.ggml.merges", v.Merges)
	}
	if v.Scores != nil {
		w.SetFloat32s("tokenizer.ggml.scores", v.Scores)
	}
	if v.BOS != nil {
		w.SetUint32("tokenizer.ggml.bos_token_id", uint32(*v.BOS))
	}
	if v.EOS != nil {
		w.SetUint32("tokenizer.ggml.eos_token_id", uint32(*v.EOS))
	}
	w.SetBool("tokenizer.ggml.add_bos_token", v.AddBOSToken)
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

var (
	loadOnce sync.Map // name → func() (*Tokenizer, error)
)

// loadTokenizer loads testdata/<name>.vocab.json.gz once per test binary.
func loadTokenizer(t testing.TB, name string) *Tokenizer {
	t.Helper()
	fn, _ := loadOnce.LoadOrStore(name, sync.OnceValues(func() (*Tokenizer, error) {
		fd, err := os.Open(filepath.Join("testdata", name+".vocab.json.gz"))
		if err != nil {
			return nil, err
		}
		defer fd.Close()
		zr, err := gzip.NewReader(fd)
		if err != nil {
			return nil, err
		}
		var v vocabFile
		if err := json.NewDecoder(zr).Decode(&v); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return FromGGUF(ggufFromVocab(t, v))
	}))
	tok, err := fn.(func() (*Tokenizer, error))()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func loadGolden(t testing.TB, name string) []goldenCase {
	t.Helper()
	fd, err := os.Open(filepath.Join("testdata", name+".golden.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	var cases []goldenCase
	sc := bufio.NewScanner(fd)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c goldenCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

var goldenSets = []string{"qwen3", "llama3", "llama2"}

func TestGolden(t *testing.T) {
	for _, name := range goldenSets {
		t.Run(name, func(t *testing.T) {
			tok := loadTokenizer(t, name)
			cases := loadGolden(t, name)
			if len(cases) < 1000 {
				t.Fatalf("only %d golden cases", len(cases))
			}
			failed := 0
			for _, c := range cases {
				got, err := tok.Encode(c.Text, EncodeOptions{AddSpecial: c.AddSpecial, ParseSpecial: true})
				if err != nil {
					t.Fatalf("Encode(%q): %v", c.Text, err)
				}
				if c.IDs == nil {
					c.IDs = []int32{}
				}
				if diff := cmp.Diff(c.IDs, got); diff != "" {
					failed++
					if failed <= 10 {
						t.Errorf("Encode(%q) (-want +got):\n%s", c.Text, diff)
					}
					continue
				}
				if c.AddSpecial {
					continue
				}
				dec, err := tok.Decode(got)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if dec != c.Text {
					failed++
					if failed <= 10 {
						t.Errorf("Decode(Encode(%q)) = %q", c.Text, dec)
					}
				}
			}
			if failed > 0 {
				t.Errorf("%d of %d cases failed", failed, len(cases))
			}
		})
	}
}
