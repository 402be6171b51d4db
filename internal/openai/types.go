// Package openai holds the OpenAI wire types Mycel speaks (chat completions, completions,
// models, errors), their lenient-where-OpenAI-is-lenient decoders, the error envelope, and a
// server-sent-events writer and reader. It has no Mycel logic: the provider, the gateway and
// the verifier share it so that every hop speaks byte-compatible OpenAI JSON.
package openai

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Object names as the OpenAI API sends them.
const (
	ObjectChatCompletion      = "chat.completion"
	ObjectChatCompletionChunk = "chat.completion.chunk"
	ObjectTextCompletion      = "text_completion"
	ObjectModel               = "model"
	ObjectList                = "list"
)

// Finish reasons.
const (
	FinishStop   = "stop"
	FinishLength = "length"
)

// StreamOptions is the "stream_options" object of a streaming request.
type StreamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// ChatMessage is one message of a conversation. On input Content may be a string or an array
// of {"type":"text","text":…} parts (joined without separator); it is always marshalled as a
// string.
type ChatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	Name    string `json:"name,omitempty"`
}

// UnmarshalJSON accepts content as a string, an array of text parts, or null.
func (m *ChatMessage) UnmarshalJSON(b []byte) error {
	msg, e := decodeMessage(b, "message")
	if e != nil {
		return e
	}
	*m = msg
	return nil
}

// StopList is the "stop" parameter: a string or an array of strings on input, an array on output.
type StopList []string

// UnmarshalJSON accepts a string, an array of strings or null.
func (s *StopList) UnmarshalJSON(b []byte) error {
	l, e := decodeStop(b, "stop")
	if e != nil {
		return e
	}
	*s = l
	return nil
}

// PromptList is the "prompt" parameter of a completion: a string or an array of strings on
// input. Only a single prompt is served (n = 1), so a one-element array equals a string.
type PromptList []string

// UnmarshalJSON accepts a string or an array of strings.
func (p *PromptList) UnmarshalJSON(b []byte) error {
	l, e := decodePrompt(b, "prompt")
	if e != nil {
		return e
	}
	*p = l
	return nil
}

// MarshalJSON writes a single prompt as a string and several as an array.
func (p PromptList) MarshalJSON() ([]byte, error) {
	if len(p) == 1 {
		return json.Marshal(p[0])
	}
	return json.Marshal([]string(p))
}

// Text returns the prompts joined (the served prompt when there is one).
func (p PromptList) Text() string { return strings.Join(p, "") }

// ChatCompletionRequest is the body of POST /v1/chat/completions.
type ChatCompletionRequest struct {
	Model               string         `json:"model"`
	Messages            []ChatMessage  `json:"messages"`
	Stream              bool           `json:"stream,omitempty"`
	StreamOptions       *StreamOptions `json:"stream_options,omitempty"`
	Temperature         *float64       `json:"temperature,omitempty"`
	TopP                *float64       `json:"top_p,omitempty"`
	MaxTokens           *int           `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int           `json:"max_completion_tokens,omitempty"`
	Stop                StopList       `json:"stop,omitempty"`
	Seed                *int64         `json:"seed,omitempty"`
	Logprobs            bool           `json:"logprobs,omitempty"`
	TopLogprobs         *int           `json:"top_logprobs,omitempty"`
	User                string         `json:"user,omitempty"`
	N                   *int           `json:"n,omitempty"`
	// ContinueFinalMessage and AddGenerationPrompt are vLLM's and SGLang's extensions (not
	// OpenAI's): with continue_final_message the last message, an assistant message, is a
	// prefix the model continues (the turn is left open); add_generation_prompt (default
	// true) appends the header that starts a new assistant turn. Both true is an error.
	ContinueFinalMessage bool  `json:"continue_final_message,omitempty"`
	AddGenerationPrompt  *bool `json:"add_generation_prompt,omitempty"`
}

// GenerationPrompt reports whether the prompt ends with a new assistant turn's header:
// add_generation_prompt if given, else true unless the final message is continued.
func (r ChatCompletionRequest) GenerationPrompt() bool {
	if r.AddGenerationPrompt != nil {
		return *r.AddGenerationPrompt
	}
	return !r.ContinueFinalMessage
}

// MaxOutputTokens returns max_completion_tokens, else max_tokens, and whether either was set.
func (r ChatCompletionRequest) MaxOutputTokens() (int, bool) {
	return maxOut(r.MaxCompletionTokens, r.MaxTokens)
}

// IncludeUsage reports whether a streaming request asked for a final usage chunk.
func (r ChatCompletionRequest) IncludeUsage() bool {
	return r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

// CompletionRequest is the body of POST /v1/completions.
type CompletionRequest struct {
	Model               string         `json:"model"`
	Prompt              PromptList     `json:"prompt"`
	Stream              bool           `json:"stream,omitempty"`
	StreamOptions       *StreamOptions `json:"stream_options,omitempty"`
	Temperature         *float64       `json:"temperature,omitempty"`
	TopP                *float64       `json:"top_p,omitempty"`
	MaxTokens           *int           `json:"max_tokens,omitempty"`
	MaxCompletionTokens *int           `json:"max_completion_tokens,omitempty"`
	Stop                StopList       `json:"stop,omitempty"`
	Seed                *int64         `json:"seed,omitempty"`
	Logprobs            *int           `json:"logprobs,omitempty"`
	Echo                bool           `json:"echo,omitempty"`
	User                string         `json:"user,omitempty"`
	N                   *int           `json:"n,omitempty"`
}

// MaxOutputTokens returns max_completion_tokens, else max_tokens, and whether either was set.
// The OpenAI default for completions is 16; callers apply their own default when unset.
func (r CompletionRequest) MaxOutputTokens() (int, bool) {
	return maxOut(r.MaxCompletionTokens, r.MaxTokens)
}

// IncludeUsage reports whether a streaming request asked for a final usage chunk.
func (r CompletionRequest) IncludeUsage() bool {
	return r.StreamOptions != nil && r.StreamOptions.IncludeUsage
}

func maxOut(a, b *int) (int, bool) {
	if a != nil {
		return *a, true
	}
	if b != nil {
		return *b, true
	}
	return 0, false
}

// Usage counts the tokens of a request.
type Usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// TopLogprob is one alternative token with its log-probability.
type TopLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// TokenLogprob is the log-probability of one generated token (chat format).
type TokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float64      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []TopLogprob `json:"top_logprobs"`
}

// ChatLogprobs is a chat choice's "logprobs" object.
type ChatLogprobs struct {
	Content []TokenLogprob `json:"content"`
}

// ChatChoice is one choice of a ChatCompletion.
type ChatChoice struct {
	Index        int           `json:"index"`
	Message      ChatMessage   `json:"message"`
	Logprobs     *ChatLogprobs `json:"logprobs"`
	FinishReason string        `json:"finish_reason"`
}

// ChatCompletion is the non-streaming answer to a chat request.
type ChatCompletion struct {
	ID                string       `json:"id"`
	Object            string       `json:"object"`
	Created           int64        `json:"created"`
	Model             string       `json:"model"`
	SystemFingerprint string       `json:"system_fingerprint,omitempty"`
	Choices           []ChatChoice `json:"choices"`
	Usage             *Usage       `json:"usage,omitempty"`
}

// ChatDelta is the incremental message of a streaming chunk.
type ChatDelta struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content,omitempty"`
}

// ChatChunkChoice is one choice of a ChatCompletionChunk. FinishReason is null until the last
// content chunk.
type ChatChunkChoice struct {
	Index        int           `json:"index"`
	Delta        ChatDelta     `json:"delta"`
	Logprobs     *ChatLogprobs `json:"logprobs"`
	FinishReason *string       `json:"finish_reason"`
}

// ChatCompletionChunk is one SSE event of a streaming chat answer. The usage chunk
// (stream_options.include_usage) has no choices.
type ChatCompletionChunk struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	Created           int64             `json:"created"`
	Model             string            `json:"model"`
	SystemFingerprint string            `json:"system_fingerprint,omitempty"`
	Choices           []ChatChunkChoice `json:"choices"`
	Usage             *Usage            `json:"usage,omitempty"`
}

// CompletionLogprobs is a completion choice's "logprobs" object (legacy format).
type CompletionLogprobs struct {
	Tokens        []string             `json:"tokens"`
	TokenLogprobs []float64            `json:"token_logprobs"`
	TopLogprobs   []map[string]float64 `json:"top_logprobs"`
	TextOffset    []int                `json:"text_offset"`
}

// CompletionChoice is one choice of a Completion.
type CompletionChoice struct {
	Text         string              `json:"text"`
	Index        int                 `json:"index"`
	Logprobs     *CompletionLogprobs `json:"logprobs"`
	FinishReason string              `json:"finish_reason"`
}

// Completion is the non-streaming answer to a completion request.
type Completion struct {
	ID                string             `json:"id"`
	Object            string             `json:"object"`
	Created           int64              `json:"created"`
	Model             string             `json:"model"`
	SystemFingerprint string             `json:"system_fingerprint,omitempty"`
	Choices           []CompletionChoice `json:"choices"`
	Usage             *Usage             `json:"usage,omitempty"`
}

// CompletionChunkChoice is one choice of a CompletionChunk.
type CompletionChunkChoice struct {
	Text         string              `json:"text"`
	Index        int                 `json:"index"`
	Logprobs     *CompletionLogprobs `json:"logprobs"`
	FinishReason *string             `json:"finish_reason"`
}

// CompletionChunk is one SSE event of a streaming completion (object "text_completion").
type CompletionChunk struct {
	ID                string                  `json:"id"`
	Object            string                  `json:"object"`
	Created           int64                   `json:"created"`
	Model             string                  `json:"model"`
	SystemFingerprint string                  `json:"system_fingerprint,omitempty"`
	Choices           []CompletionChunkChoice `json:"choices"`
	Usage             *Usage                  `json:"usage,omitempty"`
}

// Model is one entry of GET /v1/models.
type Model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

// ModelList is the answer to GET /v1/models.
type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}

// Ptr returns a pointer to v (for FinishReason and optional request fields).
func Ptr[T any](v T) *T { return &v }

// TokenBytes returns the bytes of a token as the ints OpenAI puts in "bytes".
func TokenBytes(s string) []int {
	b := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		b[i] = int(s[i])
	}
	return b
}

func errorf(param, format string, args ...any) *Error {
	return &Error{Status: 400, Type: TypeInvalidRequest, Param: param, Message: fmt.Sprintf(format, args...)}
}
