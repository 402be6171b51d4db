package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/mycel-network/mycel/tools/llamapeer/internal/logits"
	"github.com/ollama/ollama/llama"
	"github.com/ollama/ollama/ml"
)

// ubatch is the number of tokens llama.cpp computes in one graph; llama.cpp's
// own default.
const ubatch = 512

// peer is one GGUF model loaded into llama.cpp on the CPU.
type peer struct {
	path  string
	model *llama.Model
}

// loadPeer loads the model at path; vocabOnly loads just the tokenizer.
func loadPeer(path string, vocabOnly bool) (*peer, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	llama.BackendInit()
	// A no-op progress callback replaces llama.cpp's default one, which
	// prints dots to stderr.
	m, err := llama.LoadModelFromFile(path, llama.ModelParams{UseMmap: true, VocabOnly: vocabOnly, Progress: func(float32) {}})
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	return &peer{path: path, model: m}, nil
}

func (p *peer) close() { llama.FreeModel(p.model) }

// tokenize runs llama.cpp's tokenizer; addSpecial adds BOS (and EOS) as the
// model's metadata asks.
func (p *peer) tokenize(text string, addSpecial, parseSpecial bool) ([]int, error) {
	ids, err := p.model.Tokenize(text, addSpecial, parseSpecial)
	if err != nil {
		return nil, fmt.Errorf("tokenize: %w", err)
	}
	return ids, nil
}

// session is a llama.cpp context with room for several sequences. ollama's
// llama package offers no way to free a context, so a process makes one
// session and lets exit reclaim it.
type session struct {
	ctx   *llama.Context
	batch *llama.Batch
}

// newSession makes a context for seqs sequences of up to ctxPerSeq tokens
// each.
func (p *peer) newSession(ctxPerSeq, seqs, threads int) (*session, error) {
	nctx := ((ctxPerSeq + 255) / 256) * 256 * seqs
	params := llama.NewContextParams(nctx, ubatch, seqs, threads, ml.FlashAttentionAuto, "")
	c, err := llama.NewContextWithModel(p.model, params)
	if err != nil {
		return nil, fmt.Errorf("new context: %w", err)
	}
	b, err := llama.NewBatch(ubatch, seqs, 0)
	if err != nil {
		return nil, fmt.Errorf("new batch: %w", err)
	}
	return &session{ctx: c, batch: b}, nil
}

func (s *session) close() { s.batch.Free() }

// prefill feeds ids at positions start.. into sequence seq, in chunks of
// ubatch tokens, asking for logits of the last token only.
func (s *session) prefill(seq int, ids []int, start int) error {
	if len(ids) == 0 {
		return errors.New("prefill: no tokens")
	}
	for off := 0; off < len(ids); off += ubatch {
		end := min(off+ubatch, len(ids))
		s.batch.Clear()
		for i := off; i < end; i++ {
			s.batch.Add(ids[i], nil, start+i, i == len(ids)-1, seq)
		}
		if err := s.ctx.Decode(s.batch); err != nil {
			return fmt.Errorf("prefill at %d: %w", start+off, err)
		}
	}
	return nil
}

// logits returns the logits of output row i of the last Decode.
func (s *session) logits(i int) ([]float32, error) {
	l := s.ctx.GetLogitsIth(i)
	if l == nil {
		return nil, fmt.Errorf("no logits for output %d", i)
	}
	return l, nil
}

// step decodes one token per sequence (tokens[i] into sequence i at
// position pos[i]) in one batch, asking for logits of every row.
func (s *session) step(tokens, pos []int) error {
	s.batch.Clear()
	for i, t := range tokens {
		s.batch.Add(t, nil, pos[i], true, i)
	}
	if err := s.ctx.Decode(s.batch); err != nil {
		return fmt.Errorf("decode at %d: %w", pos[0], err)
	}
	return nil
}

// completion is the JSON that `llamapeer generate` prints; the built-in
// engine's `mycel run --temperature 0 --logprobs K --output json` prints the
// same shape.
type completion struct {
	Model        string     `json:"model"`
	PromptTokens []int      `json:"prompt_tokens"`
	Tokens       []genToken `json:"tokens"`
	FinishReason string     `json:"finish_reason"`
}

type genToken struct {
	ID      int                  `json:"id"`
	Text    string               `json:"text"`
	Logprob float64              `json:"logprob"`
	Top     []logits.Alternative `json:"top"`
}

// generate greedy-decodes up to maxTokens tokens after prompt. An
// end-of-generation token ends the run with finish_reason "stop" and is not
// part of the output, as llama.cpp's server and the OpenAI API do.
func (p *peer) generate(prompt []int, maxTokens, topK, threads int) (completion, error) {
	out := completion{Model: p.path, PromptTokens: prompt, Tokens: []genToken{}, FinishReason: "length"}
	if len(prompt) == 0 {
		return out, errors.New("generate: empty prompt (the model adds no BOS and the text is empty)")
	}
	s, err := p.newSession(len(prompt)+maxTokens+1, 1, threads)
	if err != nil {
		return out, err
	}
	defer s.close()
	if maxTokens == 0 {
		return out, nil
	}
	if err := s.prefill(0, prompt, 0); err != nil {
		return out, err
	}
	row := s.batch.NumTokens() - 1
	pos := len(prompt)
	for {
		raw, err := s.logits(row)
		if err != nil {
			return out, err
		}
		st, err := logits.Greedy(raw, topK)
		if err != nil {
			return out, fmt.Errorf("position %d: %w", pos, err)
		}
		if p.model.TokenIsEog(st.ID) {
			out.FinishReason = "stop"
			return out, nil
		}
		top := st.Top
		if top == nil {
			top = []logits.Alternative{}
		}
		out.Tokens = append(out.Tokens, genToken{ID: st.ID, Text: p.model.TokenToPiece(st.ID), Logprob: st.Logprob, Top: top})
		if len(out.Tokens) == maxTokens {
			return out, nil
		}
		if err := s.step([]int{st.ID}, []int{pos}); err != nil {
			return out, err
		}
		row = 0
		pos++
	}
}
