package verifier

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/mycel-network/mycel/internal/chat"
	"github.com/mycel-network/mycel/internal/tokenizer"
)

// Shopper requests must look like anyone else's: prompts come from a large
// generated pool, parameters from the distribution ordinary clients use.

var (
	poolOpeners = []string{
		"Explain", "Write a short note about", "Summarise", "Give an example of", "What is",
		"Describe", "How do I use", "Compare", "List the steps to", "Why does Go have",
		"Show a function that uses", "Tell me about", "Draft documentation for", "Fix a bug in code using",
		"Outline a test for", "When should I avoid",
	}
	poolTopics = []string{
		"goroutines", "channels", "the sync package", "interfaces", "error wrapping", "slices",
		"maps", "the context package", "HTTP servers", "JSON encoding", "generics", "the io.Reader interface",
		"defer", "select statements", "struct embedding", "the time package", "string builders",
		"byte buffers", "the testing package", "benchmarks", "file paths", "the os package", "runtime panics",
		"closures", "method sets", "type switches", "atomic counters", "mutexes", "worker pools", "rate limiting",
		"the flag package", "templates",
	}
	poolStyles = []string{
		"", " briefly", " for a beginner", " with an example", " in one paragraph", " step by step",
		" as a list", " and its pitfalls",
	}
	poolSystems = []string{
		"", "You are a helpful assistant.", "You are a concise Go expert.", "Answer briefly.",
	}
)

// PoolSize is the number of distinct prompts the pool generates.
func PoolSize() int {
	return len(poolOpeners) * len(poolTopics) * len(poolStyles) * len(poolSystems)
}

// PoolPrompt returns prompt i of the pool (any i; it wraps): a system
// message (possibly empty) and a user message.
func PoolPrompt(i uint64) (system, user string) {
	n := uint64(PoolSize())
	i %= n
	o := i % uint64(len(poolOpeners))
	i /= uint64(len(poolOpeners))
	t := i % uint64(len(poolTopics))
	i /= uint64(len(poolTopics))
	s := i % uint64(len(poolStyles))
	i /= uint64(len(poolStyles))
	sys := poolSystems[i%uint64(len(poolSystems))]
	return sys, fmt.Sprintf("%s %s%s?", poolOpeners[o], poolTopics[t], poolStyles[s])
}

// ShopperParams are the OpenAI parameters of one generated request.
type ShopperParams struct {
	PoolIndex   uint64
	Temperature *float64 // nil: client default
	TopP        *float64
	Seed        *int64
	MaxTokens   int
	Logprobs    bool
	Stream      bool
}

// Sampling returns the request's sampling after OpenAI defaults.
func (p ShopperParams) Sampling() Sampling {
	s := Sampling{Temperature: 1, TopP: 1, Seed: p.Seed, MaxTokens: p.MaxTokens}
	if p.Temperature != nil {
		s.Temperature = *p.Temperature
	}
	if p.TopP != nil {
		s.TopP = *p.TopP
	}
	return s
}

// Mix is the distribution of request parameters clients send. Users and
// shoppers draw from the same Mix, which is what makes shoppers
// indistinguishable.
type Mix struct {
	GreedyShare   float64 // temperature 0
	DefaultShare  float64 // temperature left unset (1)
	TopPShare     float64 // top_p 0.9
	SeedShare     float64 // a seed is set
	LogprobsShare float64 // logprobs asked
	StreamShare   float64
	MaxTokens     []int // drawn uniformly
}

// DefaultMix is the mix the benchmark assumes of ordinary clients: half
// leave temperature unset, a fifth are greedy, a fifth set a seed, 30% ask
// for logprobs, most stream.
func DefaultMix() Mix {
	return Mix{GreedyShare: 0.2, DefaultShare: 0.5, TopPShare: 0.1, SeedShare: 0.2, LogprobsShare: 0.3,
		StreamShare: 0.7, MaxTokens: []int{16, 32, 48, 64}}
}

// Draw draws the parameters of request number i of a stream seeded by seed.
func (m Mix) Draw(seed uint64, i int) ShopperParams {
	u := func(k int) float64 { return uniform(seed^uint64(k)*0x9e37, i) }
	p := ShopperParams{PoolIndex: splitmix64(seed ^ uint64(i)*0x51ed27)}
	switch t := u(1); {
	case t < m.DefaultShare:
	case t < m.DefaultShare+m.GreedyShare:
		z := 0.0
		p.Temperature = &z
	default:
		v := math.Round((0.3+u(2)*0.9)*10) / 10
		p.Temperature = &v
	}
	if u(3) < m.TopPShare {
		v := 0.9
		p.TopP = &v
	}
	if u(4) < m.SeedShare {
		s := int64(splitmix64(seed^uint64(i)) >> 33)
		p.Seed = &s
	}
	if len(m.MaxTokens) > 0 {
		p.MaxTokens = m.MaxTokens[int(u(5)*float64(len(m.MaxTokens)))%len(m.MaxTokens)]
	}
	p.Logprobs = u(6) < m.LogprobsShare
	p.Stream = u(7) < m.StreamShare
	return p
}

// DrawParams draws request i of a stream from DefaultMix.
func DrawParams(seed uint64, i int) ShopperParams { return DefaultMix().Draw(seed, i) }

// Prompt renders a pool prompt with the model's chat template and tokenises
// it as every engine does (special tokens parsed, no extra BOS).
func Prompt(f chat.Format, tok *tokenizer.Tokenizer, system, user string) ([]int32, error) {
	text, err := PromptText(f, system, user)
	if err != nil {
		return nil, err
	}
	ids, err := tok.Encode(text, tokenizer.EncodeOptions{ParseSpecial: true})
	if err != nil {
		return nil, fmt.Errorf("prompt: %w", err)
	}
	return ids, nil
}

// PromptText renders a pool prompt with the chat template.
func PromptText(f chat.Format, system, user string) (string, error) {
	var msgs []chat.Message
	if system != "" {
		msgs = append(msgs, chat.Message{Role: "system", Content: system})
	}
	msgs = append(msgs, chat.Message{Role: "user", Content: user})
	text, err := f.Render(msgs, true)
	if err != nil {
		return "", fmt.Errorf("prompt: %w", err)
	}
	return text, nil
}

// RequestBody is the OpenAI chat completion body of a shopper request. It
// asks for logprobs and a stream exactly when the drawn parameters do, as
// the clients of the Mix would: an answer without logprobs carries no token
// ids and is re-checked on the tokenizer's own tokenisation of its text
// (see Verifier.recheck).
func RequestBody(model string, p ShopperParams, system, user string) []byte {
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	body := struct {
		Model       string   `json:"model"`
		Messages    []msg    `json:"messages"`
		Temperature *float64 `json:"temperature,omitempty"`
		TopP        *float64 `json:"top_p,omitempty"`
		Seed        *int64   `json:"seed,omitempty"`
		MaxTokens   int      `json:"max_tokens,omitempty"`
		Logprobs    bool     `json:"logprobs,omitempty"`
		Stream      bool     `json:"stream,omitempty"`
	}{Model: model, Temperature: p.Temperature, TopP: p.TopP, Seed: p.Seed, MaxTokens: p.MaxTokens, Logprobs: p.Logprobs, Stream: p.Stream}
	if system != "" {
		body.Messages = append(body.Messages, msg{"system", system})
	}
	body.Messages = append(body.Messages, msg{"user", user})
	b, err := json.Marshal(body)
	if err != nil {
		// Marshalling plain structs of strings and numbers cannot fail.
		return nil
	}
	return b
}

// ParseRequestBody reads back a chat completion body of the shape
// RequestBody writes (an optional system message, one user message, the
// sampling parameters), also as a gateway sends it upstream (with
// "stream", "stream_options" {"include_usage"} and a "seed" of its own
// added): what a verifier needs to re-check a request it did not send, or
// that a gateway forwarded for it. Other fields and shapes are an error.
func ParseRequestBody(body []byte) (model, system, user string, p ShopperParams, err error) {
	var b struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
		Temperature   *float64 `json:"temperature"`
		TopP          *float64 `json:"top_p"`
		Seed          *int64   `json:"seed"`
		MaxTokens     int      `json:"max_tokens"`
		Logprobs      bool     `json:"logprobs"`
		Stream        bool     `json:"stream"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return "", "", "", p, fmt.Errorf("parse request body: %w", err)
	}
	ms := b.Messages
	if len(ms) == 2 && ms[0].Role == "system" {
		system, ms = ms[0].Content, ms[1:]
	}
	if len(ms) != 1 || ms[0].Role != "user" {
		return "", "", "", p, errors.New("parse request body: want an optional system message and one user message")
	}
	p = ShopperParams{Temperature: b.Temperature, TopP: b.TopP, Seed: b.Seed, MaxTokens: b.MaxTokens, Logprobs: b.Logprobs, Stream: b.Stream}
	return b.Model, system, ms[0].Content, p, nil
}
