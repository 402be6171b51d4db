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

// generateOllamaRaw continues a final assistant message on Ollama. Ollama's chat endpoints
// close every message with the model's template — the templates it infers from a GGUF's
// chat_template (chatml, llama3-instruct, … in v0.17) end an assistant message with its
// end-of-turn marker and open a new turn, so the answer would restart — and its
// /v1/completions wraps the prompt in the template as a user message. So the open turn is
// rendered here (chat.RenderContinue, the model file's template) and sent to the native
// /api/generate with raw: true.
func (o *OpenAI) generateOllamaRaw(ctx context.Context, req *Request, emit func(Chunk) error) (Result, error) {
	prompt, err := o.cfg.ChatFormat.RenderContinue(chatMessages(req.Messages))
	if err != nil {
		return Result{}, &Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Param: "messages", Message: fmt.Sprintf("render chat template: %v", err)}
	}
	opts := map[string]any{}
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
