package backend

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/mycel-network/mycel/internal/chat"
	"github.com/mycel-network/mycel/internal/openai"
)

// chatMessages converts OpenAI messages to chat template messages ("developer" is the
// system role of the templates).
func chatMessages(msgs []openai.ChatMessage) []chat.Message {
	out := make([]chat.Message, len(msgs))
	for i, m := range msgs {
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		out[i] = chat.Message{Role: role, Content: m.Content}
	}
	return out
}

// ollamaLine is one line of Ollama's streamed /api/generate answer.
type ollamaLine struct {
	Response        string `json:"response"`
	Done            bool   `json:"done"`
	DoneReason      string `json:"done_reason"`
	PromptEvalCount int    `json:"prompt_eval_count"`
	EvalCount       int    `json:"eval_count"`
	Error           string `json:"error"`
	Logprobs        []struct {
		Token       string  `json:"token"`
		Logprob     float64 `json:"logprob"`
		TopLogprobs []struct {
			Token   string  `json:"token"`
			Logprob float64 `json:"logprob"`
		} `json:"top_logprobs"`
	} `json:"logprobs"`
}

// generateOllamaRaw serves a request on Ollama's native /api/generate with raw: true, the
// prompt rendered here and the sampling options set to OpenAI's semantics.
//
// The prompt: Ollama's chat endpoints render messages with a template it infers from the
// GGUF's chat_template (chatml, llama3-instruct, … in v0.17), which closes every message —
// a trailing assistant message would be closed and the answer restart — and its
// /v1/completions wraps the prompt in that template as a user message. So a chat is
// rendered here with the model file's own template (chat.Render, or chat.RenderContinue for
// an open last turn: the prompt the reference engine and the verifiers render too) and a
// completion prompt is sent as it is.
//
// The options: Ollama's defaults are not OpenAI's (repeat_penalty 1.1 over the last 64
// tokens, top_k 40, temperature 0.8), and its OpenAI endpoints override only temperature
// and top_p; a "greedy" answer with a repeat penalty is not the model's greedy answer, and
// verifiers re-checking it against the reference would rightly reject it. So every
// sampling option is set: temperature and top_p as asked (OpenAI's default 1), no top-k,
// min-p, typical-p or penalties.
func (o *OpenAI) generateOllamaRaw(ctx context.Context, req *Request, emit func(Chunk) error) (Result, error) {
	var prompt string
	var err error
	switch {
	case !req.Chat:
		prompt = req.Prompt
	case req.ContinueFinal:
		prompt, err = o.cfg.ChatFormat.RenderContinue(chatMessages(req.Messages))
	default:
		prompt, err = o.cfg.ChatFormat.Render(chatMessages(req.Messages), !req.NoGenerationPrompt)
	}
	if err != nil {
		return Result{}, &Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Param: "messages", Message: fmt.Sprintf("render chat template: %v", err)}
	}
	opts := map[string]any{"temperature": 1.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "typical_p": 1.0,
		"repeat_penalty": 1.0, "frequency_penalty": 0.0, "presence_penalty": 0.0}
	if req.Temperature != nil {
		opts["temperature"] = *req.Temperature
	}
	if req.TopP != nil {
		opts["top_p"] = *req.TopP
	}
	if req.Seed != nil {
		opts["seed"] = *req.Seed
	}
	if req.MaxTokens > 0 {
		opts["num_predict"] = req.MaxTokens
	}
	if len(req.Stop) > 0 {
		opts["stop"] = req.Stop
	}
	body := map[string]any{"model": o.cfg.Model, "prompt": prompt, "raw": true, "stream": true, "options": opts,
		"logprobs": o.cfg.Profile.Logprobs} // per-token events, so that every token is counted
	if top := min(req.TopLogprobs, o.cfg.Profile.MaxTopLogprobs); req.Logprobs && top > 0 {
		body["top_logprobs"] = top
	}
	b, err := json.Marshal(body)
	if err != nil {
		return Result{}, fmt.Errorf("backend request: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, o.root+"/api/generate", bytes.NewReader(b))
	if err != nil {
		return Result{}, fmt.Errorf("backend request: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
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
	bad := func(format string, args ...any) error {
		return &Error{Status: http.StatusBadGateway, Type: openai.TypeServer, Code: openai.CodeBackendError,
			Message: fmt.Sprintf("engine (%s) ", o.cfg.Profile.Name) + fmt.Sprintf(format, args...)}
	}
	if resp.StatusCode/100 != 2 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct {
			Error string `json:"error"`
		}
		msg := string(raw)
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		status := http.StatusBadGateway
		if resp.StatusCode == http.StatusBadRequest {
			status = http.StatusBadRequest
		}
		return Result{}, &Error{Status: status, Type: openai.TypeServer, Code: openai.CodeBackendError,
			Message: fmt.Sprintf("engine (%s) answered %d: %s", o.cfg.Profile.Name, resp.StatusCode, msg)}
	}
	var res Result
	delivered := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var l ollamaLine
		if err := json.Unmarshal(line, &l); err != nil {
			return res, bad("sent a bad line: %v", err)
		}
		if l.Error != "" {
			return res, bad("failed: %s", l.Error)
		}
		c := Chunk{Text: l.Response}
		for _, lp := range l.Logprobs {
			t := Token{ID: o.tokenID(lp.Token), Text: lp.Token, Logprob: float32(lp.Logprob)}
			for _, a := range lp.TopLogprobs {
				t.Top = append(t.Top, TopToken{ID: o.tokenID(a.Token), Text: a.Token, Logprob: float32(a.Logprob)})
			}
			c.Tokens = append(c.Tokens, t)
		}
		if c.Text != "" || len(c.Tokens) > 0 {
			c.N = max(1, len(c.Tokens))
			if err := emit(c); err != nil {
				return res, err
			}
			delivered += c.N
		}
		if l.Done {
			res.PromptTokens, res.CompletionTokens = l.PromptEvalCount, l.EvalCount
			res.FinishReason = openai.FinishLength
			if l.DoneReason == "stop" {
				res.FinishReason = openai.FinishStop
			}
			if res.CompletionTokens == 0 {
				res.CompletionTokens = delivered
			}
			return res, nil
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if err := sc.Err(); err != nil {
		return res, bad("stream broke: %v", err)
	}
	return res, bad("stream ended before done")
}
