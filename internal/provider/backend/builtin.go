package backend

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"

	"github.com/mycel-network/mycel/internal/chat"
	"github.com/mycel-network/mycel/internal/engine"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/tokenizer"
)

// Builtin serves a model with the built-in engine. Its Run must be running.
type Builtin struct {
	e      *engine.Engine
	tok    *tokenizer.Tokenizer
	format chat.Format
	fmtErr error
	info   Info
}

// NewBuiltin wraps an engine over a loaded model; sha256 is the model file's hash.
func NewBuiltin(e *engine.Engine, sha256 string) (*Builtin, error) {
	m := e.Model()
	tok := m.Tokenizer()
	if tok == nil {
		return nil, errors.New("builtin backend: model has no tokenizer")
	}
	f, ferr := m.ChatFormat()
	return &Builtin{e: e, tok: tok, format: f, fmtErr: ferr,
		info: Info{ContextLength: m.Info().ContextLength, SHA256: sha256, Tokenizer: tok}}, nil
}

// Run runs the engine's scheduler until ctx ends.
func (b *Builtin) Run(ctx context.Context) error { return b.e.Run(ctx) }

// Info implements Backend.
func (b *Builtin) Info() Info { return b.info }

// Health implements Backend: the engine is in-process and always answers.
func (b *Builtin) Health(context.Context) error { return nil }

// Prepare implements Backend: it renders the chat template and tokenizes the prompt.
func (b *Builtin) Prepare(req *Request) error {
	req.limitless = req.MaxTokens <= 0
	var ids []int32
	var err error
	if req.Chat {
		if b.fmtErr != nil {
			return &Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Param: "messages",
				Message: fmt.Sprintf("this model has no supported chat template (%v); use /v1/completions", b.fmtErr)}
		}
		msgs := chatMessages(req.Messages)
		var text string
		var rerr error
		if req.ContinueFinal {
			text, rerr = b.format.RenderContinue(msgs)
		} else {
			text, rerr = b.format.Render(msgs, !req.NoGenerationPrompt)
		}
		if rerr != nil {
			return &Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Param: "messages", Message: fmt.Sprintf("render chat template: %v", rerr)}
		}
		ids, err = b.tok.Encode(text, tokenizer.EncodeOptions{ParseSpecial: true})
		if err == nil && b.tok.AddBOS() && b.tok.BOS() >= 0 && (len(ids) == 0 || ids[0] != b.tok.BOS()) {
			ids = append([]int32{b.tok.BOS()}, ids...)
		}
	} else {
		ids, err = b.tok.Encode(req.Prompt, tokenizer.EncodeOptions{AddSpecial: true})
	}
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Message: fmt.Sprintf("tokenize prompt: %v", err)}
	}
	if len(ids) == 0 {
		return &Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Param: "prompt", Message: "empty prompt"}
	}
	return fitContext(req, len(ids), b.info.ContextLength, ids)
}

// fitContext checks the prompt against the context and sets PromptTokens and MaxTokens.
func fitContext(req *Request, n, ctxLen int, ids []int32) error {
	if ctxLen > 0 && n >= ctxLen {
		return &Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Param: "messages", Code: openai.CodeContextLength,
			Message: fmt.Sprintf("This model's maximum context length is %d tokens. However, your prompt has %d tokens.", ctxLen, n)}
	}
	req.PromptTokens, req.PromptIDs = n, ids
	room := ctxLen - n
	if ctxLen <= 0 {
		room = req.MaxTokens
	}
	if req.MaxTokens <= 0 || (room > 0 && req.MaxTokens > room) {
		req.MaxTokens = room
	}
	return nil
}

// Generate implements Backend.
func (b *Builtin) Generate(ctx context.Context, req *Request, emit func(Chunk) error) (Result, error) {
	sp := engine.Sampling{Temperature: 1, TopP: 1}
	if req.Temperature != nil {
		sp.Temperature = float32(*req.Temperature)
	}
	if req.TopP != nil {
		sp.TopP = float32(*req.TopP)
	}
	if req.Seed != nil {
		sp.Seed = uint64(*req.Seed)
	} else {
		sp.Seed = rand.Uint64()
	}
	er := engine.Request{Prompt: req.PromptIDs, MaxTokens: req.MaxTokens, Sampling: sp, Stop: req.Stop}
	if req.limitless {
		er.MaxTokens = 0 // up to the context or what the KV budget holds
	}
	if req.Logprobs {
		er.TopLogprobs = req.TopLogprobs
	}
	res, err := b.e.Generate(ctx, er, func(t engine.Token) error {
		if t.ID < 0 {
			return emit(Chunk{Text: t.Text})
		}
		tk := Token{ID: t.ID, Text: b.tokenText(t.ID), Logprob: t.Logprob}
		if len(t.Top) > 0 {
			tk.Top = make([]TopToken, len(t.Top))
			for i, tl := range t.Top {
				tk.Top[i] = TopToken{ID: tl.ID, Text: b.tokenText(tl.ID), Logprob: tl.Logprob}
			}
		}
		return emit(Chunk{Text: t.Text, N: 1, Tokens: []Token{tk}})
	})
	out := Result{PromptTokens: res.PromptTokens, CompletionTokens: res.CompletionTokens, FinishReason: res.FinishReason}
	if err != nil {
		if errors.Is(err, engine.ErrKVBudget) {
			return out, &Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Param: "max_tokens", Code: openai.CodeContextLength,
				Message: "the prompt plus max_tokens need more KV cache than this provider's budget for the model; lower max_tokens"}
		}
		return out, err
	}
	if out.FinishReason != engine.FinishStop {
		out.FinishReason = openai.FinishLength
	}
	return out, nil
}

func (b *Builtin) tokenText(id int32) string {
	bs, err := b.tok.TokenBytes(id)
	if err != nil {
		return ""
	}
	return string(bs)
}
