package engine

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"testing"

	"github.com/mycel-network/mycel/internal/gguf"
)

// TestGoldenLogprobs pins the exact bits of scored log-probabilities. The
// same hashes must come out on every amd64 machine, with the assembly
// kernels and with the portable Go ones (go test -tags purego), and on
// any thread count: verifiers compare these values across machines. A change
// to the numerics of the engine changes them on purpose; update the hashes
// only together with a note in the package doc.
func TestGoldenLogprobs(t *testing.T) {
	golden := map[string]string{
		"llama/F32":  "f9e7e3558f4bf46d",
		"qwen2/Q8_0": "85e07e1416318695",
		"llama/Q4_0": "c5ae6605ad9fa365",
		"qwen2/Q4_K": "179a4b2c9fbb3f04",
		"llama/Q6_K": "50a99f0097973735",
		"llama/F16":  "fbf9d2cc66963026",
	}
	specs := map[string]spec{
		"llama/F32":  defaultSpec("llama", gguf.TypeF32),
		"qwen2/Q8_0": defaultSpec("qwen2", gguf.TypeQ8_0),
		"llama/Q4_0": defaultSpec("llama", gguf.TypeQ4_0),
		"qwen2/Q4_K": defaultSpec("qwen2", gguf.TypeQ4_K),
		"llama/Q6_K": defaultSpec("llama", gguf.TypeQ6_K),
		"llama/F16":  defaultSpec("llama", gguf.TypeF16),
	}
	for name, s := range specs {
		t.Run(name, func(t *testing.T) {
			m, _ := s.load(t)
			e := New(m, Config{Threads: 3, PrefillChunk: 7})
			scores, err := e.Score(context.Background(), testPrompt(9, 1), testPrompt(30, 2), 4)
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			for _, sc := range scores {
				binary.Write(h, binary.LittleEndian, math.Float32bits(sc.Logprob))
				for _, tp := range sc.Top {
					binary.Write(h, binary.LittleEndian, tp.ID)
					binary.Write(h, binary.LittleEndian, math.Float32bits(tp.Logprob))
				}
			}
			got := hex.EncodeToString(h.Sum(nil))[:16]
			if got != golden[name] {
				t.Errorf("logprob hash %s, want %s", got, golden[name])
			}
		})
	}
}
