package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/chat"
	"github.com/mycel-network/mycel/internal/openai"
)

// fakeEngine imitates an OpenAI-compatible engine of one profile.
type fakeEngine struct {
	profile   string
	usage     bool          // honours include_usage
	lastBody  chan []byte   // request bodies
	step      chan struct{} // if set, the server waits on it after the first chunk
	stepWaits bool
}

func (f *fakeEngine) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	p, _ := LookupProfile(f.profile)
	mux.HandleFunc("GET "+p.HealthPath, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	serve := func(w http.ResponseWriter, r *http.Request, chat bool) {
		body, _ := io.ReadAll(r.Body)
		select {
		case f.lastBody <- body:
		default:
		}
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		if req["model"] != "engine-model" {
			w.WriteHeader(404)
			fmt.Fprint(w, `{"error":{"message":"model not found","type":"invalid_request_error"}}`)
			return
		}
		if strings.Contains(string(body), "too long") {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"error":{"message":"prompt exceeds context","type":"invalid_request_error","param":"messages"}}`)
			return
		}
		if strings.Contains(string(body), "crash") {
			w.WriteHeader(500)
			fmt.Fprint(w, `{"error":{"message":"CUDA out of memory","type":"server_error"}}`)
			return
		}
		sw, err := openai.NewSSEWriter(w)
		if err != nil {
			t.Error(err)
			return
		}
		words := []string{"Hello", " world", "!"}
		for i, wd := range words {
			lp := &openai.ChatLogprobs{Content: []openai.TokenLogprob{{Token: wd, Logprob: -0.5 * float64(i), TopLogprobs: []openai.TopLogprob{{Token: wd, Logprob: -0.5 * float64(i)}}}}}
			if chat {
				_ = sw.WriteJSON(openai.ChatCompletionChunk{ID: "x", Object: "chat.completion.chunk", Choices: []openai.ChatChunkChoice{{Delta: openai.ChatDelta{Content: wd}, Logprobs: lp}}})
			} else {
				_ = sw.WriteJSON(openai.CompletionChunk{ID: "x", Object: "text_completion", Choices: []openai.CompletionChunkChoice{{Text: wd,
					Logprobs: &openai.CompletionLogprobs{Tokens: []string{wd}, TokenLogprobs: []float64{-0.5 * float64(i)}, TopLogprobs: []map[string]float64{{wd: -0.5 * float64(i), "zz": -9}}}}}})
			}
			if i == 0 && f.step != nil {
				select {
				case <-f.step:
				case <-time.After(10 * time.Second):
					t.Error("the adapter did not pass the first chunk on before the rest arrived (buffering)")
					return
				}
			}
		}
		if chat {
			_ = sw.WriteJSON(openai.ChatCompletionChunk{ID: "x", Choices: []openai.ChatChunkChoice{{FinishReason: openai.Ptr("stop")}}})
		} else {
			_ = sw.WriteJSON(openai.CompletionChunk{ID: "x", Choices: []openai.CompletionChunkChoice{{FinishReason: openai.Ptr("stop")}}})
		}
		if so, ok := req["stream_options"].(map[string]any); ok && so["include_usage"] == true && f.usage {
			_ = sw.WriteJSON(map[string]any{"id": "x", "choices": []any{}, "usage": map[string]int{"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}})
		}
		_ = sw.WriteDone()
	}
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) { serve(w, r, true) })
	mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) { serve(w, r, false) })
	return mux
}

func newAdapter(t *testing.T, f *fakeEngine) (*OpenAI, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(f.handler(t))
	t.Cleanup(srv.Close)
	p, ok := LookupProfile(f.profile)
	if !ok {
		t.Fatalf("no profile %s", f.profile)
	}
	o, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL + "/v1", Profile: p, Model: "engine-model"})
	if err != nil {
		t.Fatal(err)
	}
	return o, srv
}

func TestOpenAIProfiles(t *testing.T) {
	for _, prof := range ProfileNames() {
		for _, chat := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/chat=%v", prof, chat), func(t *testing.T) {
				if prof == "ollama" && !chat {
					t.Skip("Ollama completions go to its native /api/generate: TestOllamaRawRequests")
				}
				f := &fakeEngine{profile: prof, usage: prof != "sglang", lastBody: make(chan []byte, 1), step: make(chan struct{})}
				o, _ := newAdapter(t, f)
				req := &Request{Chat: chat, Messages: []openai.ChatMessage{{Role: "user", Content: "hi"}}, Prompt: "hi", MaxTokens: 8, Logprobs: true, TopLogprobs: 1}
				if err := o.Prepare(req); err != nil {
					t.Fatal(err)
				}
				var chunks []Chunk
				res, err := o.Generate(context.Background(), req, func(c Chunk) error {
					if len(chunks) == 0 {
						f.step <- struct{}{} // the engine sends the rest only after we saw the first chunk
					}
					chunks = append(chunks, c)
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				var text strings.Builder
				n := 0
				for _, c := range chunks {
					text.WriteString(c.Text)
					n += c.N
					if len(c.Tokens) != 1 || c.Tokens[0].Text != c.Text {
						t.Errorf("chunk %+v: want one token with its logprob", c)
					}
				}
				if text.String() != "Hello world!" || n != 3 {
					t.Errorf("text %q in %d tokens", text.String(), n)
				}
				wantRes := Result{PromptTokens: 9, CompletionTokens: 3, FinishReason: "stop"}
				if !f.usage {
					wantRes.PromptTokens = 0 // counted by the provider: no usage from the engine
				}
				if diff := cmp.Diff(wantRes, res); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
				var up map[string]any
				_ = json.Unmarshal(<-f.lastBody, &up)
				if up["stream"] != true || up["model"] != "engine-model" || up["max_tokens"] != 8.0 {
					t.Errorf("upstream request %v", up)
				}
				if chat && (up["logprobs"] != true || up["top_logprobs"] != 1.0) || !chat && up["logprobs"] != 1.0 {
					t.Errorf("upstream request does not ask for logprobs: %v", up)
				}
			})
		}
	}
}

func TestOpenAIErrors(t *testing.T) {
	f := &fakeEngine{profile: "vllm", usage: true, lastBody: make(chan []byte, 8)}
	o, srv := newAdapter(t, f)
	gen := func(content string) error {
		req := &Request{Chat: true, Messages: []openai.ChatMessage{{Role: "user", Content: content}}}
		if err := o.Prepare(req); err != nil {
			return err
		}
		_, err := o.Generate(context.Background(), req, func(Chunk) error { return nil })
		return err
	}
	tests := []struct {
		content string
		status  int
		msg     string
	}{
		{"too long", 400, "prompt exceeds context"},
		{"crash", 502, "CUDA out of memory"},
	}
	for _, tt := range tests {
		var e *Error
		if err := gen(tt.content); !errors.As(err, &e) || e.Status != tt.status || !strings.Contains(e.Message, tt.msg) {
			t.Errorf("%s: error %v, want status %d mentioning %q", tt.content, err, tt.status, tt.msg)
		}
	}
	// emit's error stops generation and is returned as is.
	stop := errors.New("client gone")
	req := &Request{Chat: true, Messages: []openai.ChatMessage{{Role: "user", Content: "hi"}}}
	_ = o.Prepare(req)
	if _, err := o.Generate(context.Background(), req, func(Chunk) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("emit error: %v", err)
	}
	if err := o.Health(context.Background()); err != nil {
		t.Errorf("health: %v", err)
	}
	srv.Close()
	if err := o.Health(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("health of a stopped engine: %v, want ErrUnavailable", err)
	}
	var e *Error
	if err := gen("hi"); !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable {
		t.Errorf("generate on a stopped engine: %v, want 503", err)
	}
}

func TestOpenAIBadStream(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {not json\n\n")
	}))
	defer srv.Close()
	p, _ := LookupProfile("llamacpp")
	o, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL + "/v1", Profile: p, Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	req := &Request{Chat: true, Messages: []openai.ChatMessage{{Role: "user", Content: "hi"}}}
	_ = o.Prepare(req)
	n := 0
	_, err = o.Generate(context.Background(), req, func(Chunk) error { n++; return nil })
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusBadGateway || n != 1 {
		t.Errorf("bad event: err %v after %d chunks; want 502 after 1", err, n)
	}
}

// TestOpenAIContinue checks what a continuation (the gateway's failover) sends each engine:
// the trailing assistant message always, with continue_final_message and
// add_generation_prompt=false where the engine reads them, and nothing more to Ollama, which
// continues a trailing assistant message by default.
func TestOpenAIContinue(t *testing.T) {
	type fields struct {
		Messages             []openai.ChatMessage `json:"messages"`
		ContinueFinalMessage *bool                `json:"continue_final_message"`
		AddGenerationPrompt  *bool                `json:"add_generation_prompt"`
	}
	msgs := []openai.ChatMessage{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "Hel"}}
	withFields := fields{Messages: msgs, ContinueFinalMessage: openai.Ptr(true), AddGenerationPrompt: openai.Ptr(false)}
	tests := []struct {
		profile string
		want    fields
	}{
		{"vllm", withFields},
		{"sglang", withFields},
		{"llamacpp", withFields},
		{"ollama", fields{Messages: msgs}},
	}
	for _, tt := range tests {
		t.Run(tt.profile, func(t *testing.T) {
			f := &fakeEngine{profile: tt.profile, usage: true, lastBody: make(chan []byte, 1)}
			o, _ := newAdapter(t, f)
			req := &Request{Chat: true, Messages: msgs, ContinueFinal: true, MaxTokens: 8}
			if err := o.Prepare(req); err != nil {
				t.Fatal(err)
			}
			if _, err := o.Generate(context.Background(), req, func(Chunk) error { return nil }); err != nil {
				t.Fatal(err)
			}
			var got fields
			if err := json.Unmarshal(<-f.lastBody, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("upstream request (-want +got):\n%s", diff)
			}
		})
	}
	// A plain request carries neither field.
	f := &fakeEngine{profile: "vllm", usage: true, lastBody: make(chan []byte, 1)}
	o, _ := newAdapter(t, f)
	req := &Request{Chat: true, Messages: msgs[:1], MaxTokens: 8}
	if err := o.Prepare(req); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Generate(context.Background(), req, func(Chunk) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if body := string(<-f.lastBody); strings.Contains(body, "continue_final_message") || strings.Contains(body, "add_generation_prompt") {
		t.Errorf("plain request sent %s", body)
	}
}

// TestOllamaRawContinue: with the model's chat format known, a continuation on Ollama is the
// open turn rendered by the adapter and sent raw to /api/generate; its NDJSON answer is
// passed on token by token with the engine's counts.
func TestOllamaRawContinue(t *testing.T) {
	msgs := []openai.ChatMessage{{Role: "developer", Content: "S"}, {Role: "user", Content: "hi"}, {Role: "assistant", Content: "Hel"}}
	bodies := make(chan map[string]any, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/generate", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		bodies <- body
		for _, l := range []string{
			`{"response":"lo","done":false,"logprobs":[{"token":"lo","logprob":-0.5,"top_logprobs":[{"token":"lo","logprob":-0.5},{"token":"p","logprob":-2}]}]}`,
			`{"response":" you","done":false,"logprobs":[{"token":" you","logprob":-1}]}`,
			`{"response":"","done":true,"done_reason":"length","prompt_eval_count":12,"eval_count":2}`,
		} {
			fmt.Fprintln(w, l)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		t.Error("the continuation went to the chat endpoint")
		w.WriteHeader(500)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p, _ := LookupProfile("ollama")
	o, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL + "/v1", Profile: p, Model: "engine-model", ChatFormat: chat.Qwen2})
	if err != nil {
		t.Fatal(err)
	}
	req := &Request{Chat: true, Messages: msgs, ContinueFinal: true, MaxTokens: 2, Temperature: openai.Ptr(0.0), Seed: openai.Ptr(int64(7)),
		Stop: []string{"\n"}, Logprobs: true, TopLogprobs: 2}
	if err := o.Prepare(req); err != nil {
		t.Fatal(err)
	}
	var chunks []Chunk
	res, err := o.Generate(context.Background(), req, func(c Chunk) error { chunks = append(chunks, c); return nil })
	if err != nil {
		t.Fatal(err)
	}
	wantChunks := []Chunk{
		{Text: "lo", N: 1, Tokens: []Token{{ID: -1, Text: "lo", Logprob: -0.5, Top: []TopToken{{ID: -1, Text: "lo", Logprob: -0.5}, {ID: -1, Text: "p", Logprob: -2}}}}},
		{Text: " you", N: 1, Tokens: []Token{{ID: -1, Text: " you", Logprob: -1}}},
	}
	if diff := cmp.Diff(wantChunks, chunks); diff != "" {
		t.Errorf("chunks (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Result{PromptTokens: 12, CompletionTokens: 2, FinishReason: "length"}, res); diff != "" {
		t.Errorf("result (-want +got):\n%s", diff)
	}
	wantPrompt, _ := chat.Qwen2.RenderContinue([]chat.Message{{Role: "system", Content: "S"}, {Role: "user", Content: "hi"}, {Role: "assistant", Content: "Hel"}})
	want := map[string]any{"model": "engine-model", "prompt": wantPrompt, "raw": true, "stream": true, "logprobs": true, "top_logprobs": 2.0,
		"options": neutralOptions(map[string]any{"temperature": 0.0, "seed": 7.0, "num_predict": 2.0, "stop": []any{"\n"}})}
	if diff := cmp.Diff(want, <-bodies); diff != "" {
		t.Errorf("upstream request (-want +got):\n%s", diff)
	}
}

// neutralOptions is what the adapter sends Ollama besides the request's own options: OpenAI's
// sampling (temperature and top_p 1 unless asked, nothing else) instead of Ollama's defaults.
func neutralOptions(set map[string]any) map[string]any {
	o := map[string]any{"temperature": 1.0, "top_p": 1.0, "top_k": 0.0, "min_p": 0.0, "typical_p": 1.0,
		"repeat_penalty": 1.0, "frequency_penalty": 0.0, "presence_penalty": 0.0}
	for k, v := range set {
		o[k] = v
	}
	return o
}

// TestOllamaRawRequests: on Ollama a plain chat is rendered with the model file's template
// (generation prompt open) and a completion prompt is sent as it is, both raw to
// /api/generate with OpenAI's sampling options, never Ollama's defaults.
func TestOllamaRawRequests(t *testing.T) {
	bodies := make(chan map[string]any, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/generate", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		bodies <- body
		fmt.Fprintln(w, `{"response":"ok","done":false}`)
		fmt.Fprintln(w, `{"response":"","done":true,"done_reason":"stop","prompt_eval_count":5,"eval_count":2}`)
	})
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request went to %s", r.URL.Path)
		w.WriteHeader(500)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p, _ := LookupProfile("ollama")
	o, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL + "/v1", Profile: p, Model: "engine-model", ChatFormat: chat.Qwen2})
	if err != nil {
		t.Fatal(err)
	}
	msgs := []openai.ChatMessage{{Role: "user", Content: "hi"}}
	rendered, _ := chat.Qwen2.Render([]chat.Message{{Role: "user", Content: "hi"}}, true)
	for _, tc := range []struct {
		name   string
		req    Request
		prompt string
		opts   map[string]any
	}{
		{"chat", Request{Chat: true, Messages: msgs, TopP: openai.Ptr(0.5)}, rendered, neutralOptions(map[string]any{"top_p": 0.5})},
		{"completion", Request{Prompt: "func main() {", Temperature: openai.Ptr(0.0), MaxTokens: 3}, "func main() {",
			neutralOptions(map[string]any{"temperature": 0.0, "num_predict": 3.0})},
	} {
		req := tc.req
		if _, err := o.Generate(context.Background(), &req, func(Chunk) error { return nil }); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body := <-bodies
		if body["prompt"] != tc.prompt || body["raw"] != true {
			t.Errorf("%s: prompt %q raw %v, want %q raw", tc.name, body["prompt"], body["raw"], tc.prompt)
		}
		if diff := cmp.Diff(tc.opts, body["options"]); diff != "" {
			t.Errorf("%s: options (-want +got):\n%s", tc.name, diff)
		}
	}
}
