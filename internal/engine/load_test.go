package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mycel-network/mycel/internal/chat"
	"github.com/mycel-network/mycel/internal/gguf"
	"github.com/mycel-network/mycel/internal/tokenizer"
)

func TestLoadFile(t *testing.T) {
	s := defaultSpec("qwen2", gguf.TypeQ8_0)
	data, _ := s.build(t)
	path := filepath.Join(t.TempDir(), "m.gguf")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var calls int
	m, err := Load(path, LoadOptions{Progress: func(done, total int64) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if calls == 0 {
		t.Error("progress was never reported")
	}
	info := m.Info()
	want := ModelInfo{
		Path: path, Name: "test-qwen2", Arch: "qwen2", Quant: "Q8_0", ContextLength: 96, EmbeddingDim: 256,
		Layers: 2, Heads: 4, KVHeads: 2, VocabSize: 260, FileBytes: int64(len(data)),
	}
	info.Params, info.WeightBytesPerToken = 0, 0
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("Info (-want +got):\n%s", diff)
	}
	sum := sha256.Sum256(data)
	if got, err := m.SHA256(); err != nil || got != hex.EncodeToString(sum[:]) {
		t.Errorf("SHA256 = %q, %v; want %x", got, err, sum)
	}
	if f, err := m.ChatFormat(); err != nil || f != chat.ChatML {
		t.Errorf("ChatFormat = %v, %v; want ChatML (no template, no family tokens)", f, err)
	}
	tok := m.Tokenizer()
	if tok == nil {
		t.Fatal("no tokenizer")
	}
	ids, err := tok.Encode("the cat", tokenizer.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Generation decodes text through the same tokenizer.
	e := startEngine(t, m, Config{Threads: 2})
	res := generate(t, e, Request{Prompt: ids, MaxTokens: 8})
	var want2 []byte
	for _, tk := range res.Tokens {
		b, err := tok.TokenBytes(tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		want2 = append(want2, b...)
	}
	if res.Text != string(want2) {
		t.Errorf("Text = %q, want the tokens' bytes %q", res.Text, want2)
	}
}

func TestScoreCancelled(t *testing.T) {
	m, _ := defaultSpec("llama", gguf.TypeF32).load(t)
	e := New(m, Config{Threads: 1, PrefillChunk: 4})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Score(ctx, testPrompt(10, 1), testPrompt(10, 2), 0); !errors.Is(err, context.Canceled) {
		t.Errorf("Score with a cancelled context: %v, want context.Canceled", err)
	}
}

func TestGenerateAfterStop(t *testing.T) {
	m, _ := defaultSpec("llama", gguf.TypeF32).load(t)
	e := New(m, Config{Threads: 1})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := e.Generate(context.Background(), Request{Prompt: []int32{1}, MaxTokens: 1}, func(Token) error { return nil })
	if !errors.Is(err, ErrStopped) {
		t.Errorf("Generate after Run returned: %v, want ErrStopped", err)
	}
}

// FuzzLoad damages a valid model file: loading must fail cleanly or give a
// model whose forward pass runs without panicking.
func FuzzLoad(f *testing.F) {
	s := defaultSpec("qwen2", gguf.TypeQ4_0)
	s.embd, s.ff, s.heads, s.kvHeads, s.layers = 64, 64, 2, 1, 1
	data, _ := s.build(f)
	f.Add(data, uint32(0), byte(0))
	f.Fuzz(func(t *testing.T, data []byte, at uint32, val byte) {
		if len(data) > 0 {
			data = append([]byte(nil), data...)
			data[int(at)%len(data)] ^= val
		}
		gf, err := gguf.Parse(data)
		if err != nil {
			return
		}
		m, err := FromFile(gf, LoadOptions{ContextLength: 8})
		if err != nil {
			return
		}
		kv := newKVCache(m, 2)
		var sc scratch
		m.forward(&sc, &pool{threads: 2}, []fwdToken{{id: 1, pos: 0, kv: kv}, {id: int32(m.hp.nVocab - 1), pos: 1, kv: kv, logits: true}})
	})
}
