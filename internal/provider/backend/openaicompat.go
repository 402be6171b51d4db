package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mycel-network/mycel/internal/chat"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/tokenizer"
)

// Profile describes what an OpenAI-compatible engine supports.
type Profile struct {
	Name string
	// HealthPath is probed with GET, relative to the server root (the base URL without /v1).
	HealthPath string
	// Logprobs: the engine returns per-token logprobs when asked.
	Logprobs bool
	// MaxTopLogprobs is the most alternatives the engine reports per token.
	MaxTopLogprobs int
	// IncludeUsage: the engine honours stream_options.include_usage.
	IncludeUsage bool
	// ContinueFields: the engine reads continue_final_message and add_generation_prompt
	// (vLLM, SGLang, and llama.cpp's server since 2026-05, ggml-org/llama.cpp#23012; older
	// llama.cpp servers ignore them and, since ggml-org/llama.cpp#13174 unless started with
	// --no-prefill-assistant, continue a trailing assistant message by default).
	ContinueFields bool
	// RawContinue: Ollama. Its chat endpoints close a trailing assistant message and its
	// OpenAI endpoints leave its own sampling defaults (repeat penalty, top-k) in force, so
	// requests go to its native /api/generate as raw prompts (chats rendered by the adapter
	// with OpenAIConfig.ChatFormat; without one, chats use /v1/chat/completions).
	RawContinue bool
}

// Profiles are the engines the adapter knows.
var profiles = map[string]Profile{
	"ollama": {Name: "ollama", HealthPath: "/api/version", Logprobs: true, MaxTopLogprobs: 20, IncludeUsage: true, RawContinue: true},
	// llama.cpp: the fields force the prefill even under --no-prefill-assistant where the
	// server knows them; older servers ignore unknown fields and prefill by default.
	"llamacpp": {Name: "llamacpp", HealthPath: "/health", Logprobs: true, MaxTopLogprobs: 20, IncludeUsage: true, ContinueFields: true},
	"vllm":     {Name: "vllm", HealthPath: "/health", Logprobs: true, MaxTopLogprobs: 20, IncludeUsage: true, ContinueFields: true},
	"sglang":   {Name: "sglang", HealthPath: "/health", Logprobs: true, MaxTopLogprobs: 20, IncludeUsage: true, ContinueFields: true},
}

// LookupProfile returns the profile of an engine name: ollama, llamacpp, vllm or sglang.
func LookupProfile(name string) (Profile, bool) {
	p, ok := profiles[name]
	return p, ok
}

// ProfileNames lists the known profiles.
func ProfileNames() []string { return []string{"ollama", "llamacpp", "vllm", "sglang"} }

// OpenAIConfig configures an OpenAI-compatible backend.
type OpenAIConfig struct {
	// BaseURL is the engine's OpenAI base, e.g. http://127.0.0.1:11434/v1.
	BaseURL string
	Profile Profile
	// Model is the engine's name for the model.
	Model string
	// APIKey, if set, is sent as a bearer token.
	APIKey string
	// Tokenizer, if set, counts prompt tokens exactly (and output tokens when the engine
	// reports no usage); without it prompts are estimated at one token per 3 bytes.
	Tokenizer *tokenizer.Tokenizer
	// ContextLength, if known, rejects prompts that cannot fit.
	ContextLength int
	// SHA256 of the model file the engine serves, when known.
	SHA256 string
	// ChatFormat is the model file's chat template when known (0 otherwise): with a
	// RawContinue profile a continuation is rendered with it.
	ChatFormat chat.Format
	// Client is the HTTP client (nil: one without overall timeout; generation is bounded by ctx).
	Client *http.Client
	// HealthTimeout bounds a health probe (default 2 s).
	HealthTimeout time.Duration
}

// OpenAI is an OpenAI-compatible engine reached over HTTP.
type OpenAI struct {
	cfg  OpenAIConfig
	base string
	root string

	vocabOnce sync.Once
	vocab     map[string]int32 // token text (bytes) → id
}

// NewOpenAI returns an adapter for cfg.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("openai backend: base url %q: want http(s)://host[:port][/v1]", cfg.BaseURL)
	}
	if cfg.Profile.Name == "" {
		return nil, errors.New("openai backend: no profile")
	}
	if cfg.Model == "" {
		return nil, errors.New("openai backend: no model name")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = 2 * time.Second
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	root := strings.TrimSuffix(base, "/v1")
	return &OpenAI{cfg: cfg, base: base, root: root}, nil
}

// Info implements Backend.
func (o *OpenAI) Info() Info {
	return Info{ContextLength: o.cfg.ContextLength, SHA256: o.cfg.SHA256, Tokenizer: o.cfg.Tokenizer}
}

// Health implements Backend: GET of the profile's health path must answer 2xx.
func (o *OpenAI) Health(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, o.cfg.HealthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.root+o.cfg.Profile.HealthPath, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	o.auth(req)
	resp, err := o.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w: %w", ErrUnavailable, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("health: %s answered %s: %w", o.cfg.Profile.HealthPath, resp.Status, ErrUnavailable)
	}
	return nil
}

func (o *OpenAI) auth(r *http.Request) {
	if o.cfg.APIKey != "" {
		r.Header.Set("Authorization", "Bearer "+o.cfg.APIKey)
	}
}

// Prepare implements Backend.
func (o *OpenAI) Prepare(req *Request) error {
	n := 0
	exact := o.cfg.Tokenizer != nil
	count := func(s string) int {
		if exact {
			if ids, err := o.cfg.Tokenizer.Encode(s, tokenizer.EncodeOptions{}); err == nil {
				return len(ids)
			}
		}
		return (len(s) + 2) / 3
	}
	if req.Chat {
		for _, m := range req.Messages {
			n += count(m.Content) + 4 // role markers
		}
		if !req.ContinueFinal && !req.NoGenerationPrompt {
			n += 3 // generation prompt
		}
	} else {
		n = count(req.Prompt) + 1
	}
	if !exact {
		// An estimate must not reject a prompt that would fit.
		ctx := o.cfg.ContextLength
		req.PromptTokens = n
		if req.MaxTokens <= 0 && ctx > 0 {
			req.MaxTokens = max(1, ctx-n)
		}
		return nil
	}
	return fitContext(req, n, o.cfg.ContextLength, nil)
}

// Generate implements Backend: it always streams from the engine and passes each chunk on
// as it arrives.
func (o *OpenAI) Generate(ctx context.Context, req *Request, emit func(Chunk) error) (Result, error) {
	if o.cfg.Profile.RawContinue && (!req.Chat || o.cfg.ChatFormat != 0) {
		return o.generateOllamaRaw(ctx, req, emit)
	}
	body, path, err := o.upstreamBody(req)
	if err != nil {
		return Result{}, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, o.base+path, bytes.NewReader(body))
	if err != nil {
		return Result{}, fmt.Errorf("backend request: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")
	o.auth(hreq)
	resp, err := o.cfg.Client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		return Result{}, &Error{Status: http.StatusServiceUnavailable, Type: openai.TypeUnavailable, Code: openai.CodeModelUnhealthy,
			Message: fmt.Sprintf("the model's engine (%s) does not answer", o.cfg.Profile.Name)}
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		up := openai.ParseError(resp.StatusCode, b)
		status := http.StatusBadGateway
		if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
			status = resp.StatusCode // the request itself was refused: tell the client
		}
		return Result{}, &Error{Status: status, Type: up.Type, Param: up.Param, Code: openai.CodeBackendError,
			Message: fmt.Sprintf("engine (%s) answered %d: %s", o.cfg.Profile.Name, resp.StatusCode, up.Message)}
	}
	var res Result
	var out strings.Builder
	delivered := 0
	haveUsage := false
	r := openai.NewSSEReader(resp.Body)
	for {
		data, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			return res, &Error{Status: http.StatusBadGateway, Type: openai.TypeServer, Code: openai.CodeBackendError,
				Message: fmt.Sprintf("engine (%s) stream broke: %v", o.cfg.Profile.Name, err)}
		}
		c, fin, usage, perr := parseChunk(data, req.Chat)
		if perr != nil {
			return res, &Error{Status: http.StatusBadGateway, Type: openai.TypeServer, Code: openai.CodeBackendError,
				Message: fmt.Sprintf("engine (%s) sent a bad event: %v", o.cfg.Profile.Name, perr)}
		}
		if usage != nil {
			res.PromptTokens, res.CompletionTokens, haveUsage = usage.PromptTokens, usage.CompletionTokens, true
		}
		if fin != "" {
			res.FinishReason = fin
		}
		if c.Text == "" && len(c.Tokens) == 0 {
			continue
		}
		c.N = max(1, len(c.Tokens))
		for i := range c.Tokens {
			c.Tokens[i].ID = o.tokenID(c.Tokens[i].Text)
			for j := range c.Tokens[i].Top {
				c.Tokens[i].Top[j].ID = o.tokenID(c.Tokens[i].Top[j].Text)
			}
		}
		if err := emit(c); err != nil {
			return res, err
		}
		delivered += c.N
		out.WriteString(c.Text)
	}
	if !haveUsage {
		res.PromptTokens = 0
		res.CompletionTokens = delivered
		if o.cfg.Tokenizer != nil {
			if ids, err := o.cfg.Tokenizer.Encode(out.String(), tokenizer.EncodeOptions{}); err == nil {
				res.CompletionTokens = len(ids)
			}
		}
	}
	if res.FinishReason != openai.FinishStop {
		res.FinishReason = openai.FinishLength
	}
	return res, nil
}

// tokenID maps a token's text as the engine reports it to its id in the model's vocabulary.
func (o *OpenAI) tokenID(text string) int32 {
	if o.cfg.Tokenizer == nil {
		return -1
	}
	o.vocabOnce.Do(func() { o.vocab = ByteVocab(o.cfg.Tokenizer) })
	if id, ok := o.vocab[text]; ok {
		return id
	}
	return -1
}

// ByteVocab maps the text (bytes) of every token to its id; the lowest id wins where two
// tokens have the same bytes.
func ByteVocab(tok *tokenizer.Tokenizer) map[string]int32 {
	m := make(map[string]int32, tok.VocabSize())
	for id := int32(0); id < int32(tok.VocabSize()); id++ {
		b, err := tok.TokenBytes(id)
		if err != nil {
			continue
		}
		if _, dup := m[string(b)]; !dup {
			m[string(b)] = id
		}
	}
	return m
}

func (o *OpenAI) upstreamBody(req *Request) ([]byte, string, error) {
	p := o.cfg.Profile
	var maxTok *int
	if req.MaxTokens > 0 {
		maxTok = openai.Ptr(req.MaxTokens)
	}
	var so *openai.StreamOptions
	if p.IncludeUsage {
		so = &openai.StreamOptions{IncludeUsage: true}
	}
	top := min(req.TopLogprobs, p.MaxTopLogprobs)
	if req.Chat {
		r := openai.ChatCompletionRequest{Model: o.cfg.Model, Messages: req.Messages, Stream: true, StreamOptions: so,
			Temperature: req.Temperature, TopP: req.TopP, MaxTokens: maxTok, Stop: req.Stop, Seed: req.Seed, Logprobs: p.Logprobs}
		if p.Logprobs && req.Logprobs && top > 0 {
			r.TopLogprobs = openai.Ptr(top)
		}
		if p.ContinueFields {
			// Without the fields (Ollama) the trailing assistant message is sent as it is:
			// Ollama library templates that leave the last message open ($last) continue it.
			r.ContinueFinalMessage = req.ContinueFinal
			if req.ContinueFinal || req.NoGenerationPrompt {
				r.AddGenerationPrompt = openai.Ptr(false)
			}
		}
		b, err := json.Marshal(r)
		return b, "/chat/completions", err
	}
	r := openai.CompletionRequest{Model: o.cfg.Model, Prompt: openai.PromptList{req.Prompt}, Stream: true, StreamOptions: so,
		Temperature: req.Temperature, TopP: req.TopP, MaxTokens: maxTok, Stop: req.Stop, Seed: req.Seed}
	if p.Logprobs {
		n := 0
		if req.Logprobs {
			n = min(top, openai.MaxLogprobs)
		}
		r.Logprobs = openai.Ptr(n)
	}
	b, err := json.Marshal(r)
	return b, "/completions", err
}

// parseChunk decodes one streamed event of a chat or completion answer.
func parseChunk(data []byte, chat bool) (Chunk, string, *openai.Usage, error) {
	var c Chunk
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte(`{"error"`)) {
		e := openai.ParseError(http.StatusBadGateway, data)
		return c, "", nil, fmt.Errorf("error event: %s", e.Message)
	}
	if chat {
		var ch openai.ChatCompletionChunk
		if err := json.Unmarshal(data, &ch); err != nil {
			return c, "", nil, err
		}
		fin := ""
		if len(ch.Choices) > 0 {
			choice := ch.Choices[0]
			c.Text = choice.Delta.Content
			if choice.Logprobs != nil {
				for _, t := range choice.Logprobs.Content {
					tk := Token{Text: t.Token, Logprob: float32(t.Logprob)}
					for _, tl := range t.TopLogprobs {
						tk.Top = append(tk.Top, TopToken{Text: tl.Token, Logprob: float32(tl.Logprob)})
					}
					c.Tokens = append(c.Tokens, tk)
				}
			}
			if choice.FinishReason != nil {
				fin = *choice.FinishReason
			}
		}
		return c, fin, ch.Usage, nil
	}
	var ch openai.CompletionChunk
	if err := json.Unmarshal(data, &ch); err != nil {
		return c, "", nil, err
	}
	fin := ""
	if len(ch.Choices) > 0 {
		choice := ch.Choices[0]
		c.Text = choice.Text
		if lp := choice.Logprobs; lp != nil {
			for i, t := range lp.Tokens {
				tk := Token{Text: t}
				if i < len(lp.TokenLogprobs) {
					tk.Logprob = float32(lp.TokenLogprobs[i])
				}
				if i < len(lp.TopLogprobs) {
					for txt, l := range lp.TopLogprobs[i] {
						tk.Top = append(tk.Top, TopToken{Text: txt, Logprob: float32(l)})
					}
					sortTop(tk.Top)
				}
				c.Tokens = append(c.Tokens, tk)
			}
		}
		if choice.FinishReason != nil {
			fin = *choice.FinishReason
		}
	}
	return c, fin, ch.Usage, nil
}

// sortTop orders alternatives by descending logprob, then text (maps have no order).
func sortTop(t []TopToken) {
	for i := 1; i < len(t); i++ {
		for j := i; j > 0 && (t[j].Logprob > t[j-1].Logprob || t[j].Logprob == t[j-1].Logprob && t[j].Text < t[j-1].Text); j-- {
			t[j], t[j-1] = t[j-1], t[j]
		}
	}
}
