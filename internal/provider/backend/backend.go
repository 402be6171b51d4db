// Package backend runs inference for the provider daemon: the built-in engine (Builtin) or an
// OpenAI-compatible server already running on the host (OpenAI: Ollama, llama.cpp's server,
// vLLM, SGLang). Both stream generated tokens to a callback so the provider can bill and
// forward them one at a time.
package backend

import (
	"context"
	"errors"

	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/tokenizer"
)

// Backend serves one model.
type Backend interface {
	// Info describes the model served.
	Info() Info
	// Prepare validates req against the model and fills PromptTokens (exact when the
	// backend knows the tokenizer, an upper estimate otherwise) and MaxTokens (the
	// request's limit or what the context leaves). It returns an *Error for bad input.
	Prepare(req *Request) error
	// Generate runs a prepared request, calling emit for every chunk of output in order. An
	// error from emit stops generation within one chunk and is returned. Cancelling ctx
	// stops generation within one token.
	Generate(ctx context.Context, req *Request, emit func(Chunk) error) (Result, error)
	// Health probes the backend; nil means it answers.
	Health(ctx context.Context) error
}

// Info describes a backend's model.
type Info struct {
	ContextLength int
	// SHA256 is the hex sha256 of the model file when the backend knows it ("" otherwise).
	SHA256 string
	// Tokenizer is the model's tokenizer when known (nil otherwise).
	Tokenizer *tokenizer.Tokenizer
}

// Request is one generation request, in the terms of the OpenAI API.
type Request struct {
	Chat     bool
	Messages []openai.ChatMessage // chat
	// ContinueFinal: the last message, an assistant message, is a partial answer the model
	// continues (continue_final_message); its turn is left open.
	ContinueFinal bool
	// NoGenerationPrompt: add_generation_prompt was false (without ContinueFinal the prompt
	// ends after the last message's end of turn).
	NoGenerationPrompt bool
	Prompt             string // completion
	MaxTokens          int    // 0: up to the context; Prepare fills it
	Temperature        *float64
	TopP               *float64
	Seed               *int64
	Stop               []string
	Logprobs           bool // report per-token log-probabilities to the client
	TopLogprobs        int

	// Filled by Prepare.
	PromptTokens int
	PromptIDs    []int32 // builtin only

	limitless bool // MaxTokens was not given: the builtin engine may cap by its KV budget
}

// Token is one generated token with its log-probability.
type Token struct {
	ID      int32  // -1 when unknown (an OpenAI backend whose vocabulary is unknown)
	Text    string // the token's text (may be a partial UTF-8 character)
	Logprob float32
	Top     []TopToken
}

// TopToken is one likely alternative at a position.
type TopToken struct {
	ID      int32
	Text    string
	Logprob float32
}

// Chunk is a piece of output: its text, how many tokens it stands for (N, which is what
// the provider bills) and, when the backend reports them, those tokens with their
// log-probabilities (len(Tokens) == N then). A chunk with N == 0 releases text held back
// earlier (the tail of a stop-sequence prefix).
type Chunk struct {
	Text   string
	N      int
	Tokens []Token
}

// Result summarises a generation.
type Result struct {
	// PromptTokens and CompletionTokens are the backend's own counts (0 if it gave none).
	PromptTokens     int
	CompletionTokens int
	FinishReason     string // openai.FinishStop or openai.FinishLength
}

// Error is a failure with a status for the client: bad input (4xx) or a failing backend
// (502/503).
type Error = openai.Error

// ErrUnavailable is wrapped by errors of a backend that does not answer.
var ErrUnavailable = errors.New("backend unavailable")
