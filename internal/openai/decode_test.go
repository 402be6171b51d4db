package openai

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDecodeChatRequest(t *testing.T) {
	tests := []struct {
		name string
		body string
		want ChatCompletionRequest
	}{
		{"minimal", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
			ChatCompletionRequest{Model: "m", Messages: []ChatMessage{{Role: "user", Content: "hi"}}}},
		{"content parts and unknown fields", `{"model":"m","frequency_penalty":0.5,"tools":[],"messages":[{"role":"system","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},{"role":"assistant","content":null},{"role":"user","content":"q","name":"bob"}]}`,
			ChatCompletionRequest{Model: "m", Messages: []ChatMessage{{Role: "system", Content: "ab"}, {Role: "assistant"}, {Role: "user", Content: "q", Name: "bob"}}}},
		{"all parameters", `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"temperature":0.7,"top_p":1,"max_tokens":10,"max_completion_tokens":20,"stop":"\n","seed":-3,"logprobs":true,"top_logprobs":2,"user":"u","n":1}`,
			ChatCompletionRequest{Model: "m", Messages: []ChatMessage{{Role: "user", Content: "hi"}}, Stream: true, StreamOptions: &StreamOptions{IncludeUsage: true},
				Temperature: Ptr(0.7), TopP: Ptr(1.0), MaxTokens: Ptr(10), MaxCompletionTokens: Ptr(20), Stop: StopList{"\n"}, Seed: Ptr(int64(-3)),
				Logprobs: true, TopLogprobs: Ptr(2), User: "u", N: Ptr(1)}},
		{"nulls are absent", `{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":null,"temperature":null,"stop":null,"n":null,"logprobs":null}`,
			ChatCompletionRequest{Model: "m", Messages: []ChatMessage{{Role: "user", Content: "hi"}}}},
		{"stop array", `{"model":"m","messages":[{"role":"user","content":"hi"}],"stop":["a","b"]}`,
			ChatCompletionRequest{Model: "m", Messages: []ChatMessage{{Role: "user", Content: "hi"}}, Stop: StopList{"a", "b"}}},
		{"continue final message", `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Hel"}],"continue_final_message":true,"add_generation_prompt":false}`,
			ChatCompletionRequest{Model: "m", Messages: []ChatMessage{{Role: "user", Content: "hi"}, {Role: "assistant", Content: "Hel"}},
				ContinueFinalMessage: true, AddGenerationPrompt: Ptr(false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, e := DecodeChatRequest([]byte(tt.body))
			if e != nil {
				t.Fatalf("DecodeChatRequest: %v", e)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeChatRequestErrors(t *testing.T) {
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, body, param string
	}{
		{"not json", `{"model":`, ""},
		{"not an object", `[1,2]`, ""},
		{"empty body", ``, ""},
		{"missing model", `{` + msgs + `}`, "model"},
		{"continue not bool", `{"model":"m",` + msgs + `,"continue_final_message":"yes"}`, "continue_final_message"},
		{"add_generation_prompt not bool", `{"model":"m",` + msgs + `,"add_generation_prompt":1}`, "add_generation_prompt"},
		{"continue a user message", `{"model":"m",` + msgs + `,"continue_final_message":true}`, "continue_final_message"},
		{"continue with a generation prompt", `{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"a"}],"continue_final_message":true,"add_generation_prompt":true}`, "continue_final_message"},
		{"model number", `{"model":3,` + msgs + `}`, "model"},
		{"missing messages", `{"model":"m"}`, "messages"},
		{"messages object", `{"model":"m","messages":{}}`, "messages"},
		{"messages empty", `{"model":"m","messages":[]}`, "messages"},
		{"message not object", `{"model":"m","messages":["hi"]}`, "messages[0]"},
		{"bad role", `{"model":"m","messages":[{"role":"robot","content":"x"}]}`, "messages[0].role"},
		{"missing role", `{"model":"m","messages":[{"content":"x"}]}`, "messages[0].role"},
		{"user content null", `{"model":"m","messages":[{"role":"user","content":null}]}`, "messages[0].content"},
		{"content number", `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":5}]}`, "messages[1].content"},
		{"image part", `{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, "messages[0].content[0].type"},
		{"part text number", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":1}]}]}`, "messages[0].content[0].text"},
		{"stream string", `{"model":"m",` + msgs + `,"stream":"yes"}`, "stream"},
		{"stream options without stream", `{"model":"m",` + msgs + `,"stream_options":{"include_usage":true}}`, "stream_options"},
		{"include_usage string", `{"model":"m",` + msgs + `,"stream":true,"stream_options":{"include_usage":"y"}}`, "stream_options.include_usage"},
		{"temperature string", `{"model":"m",` + msgs + `,"temperature":"hot"}`, "temperature"},
		{"temperature range", `{"model":"m",` + msgs + `,"temperature":2.5}`, "temperature"},
		{"top_p range", `{"model":"m",` + msgs + `,"top_p":-0.1}`, "top_p"},
		{"max_tokens float", `{"model":"m",` + msgs + `,"max_tokens":1.5}`, "max_tokens"},
		{"max_tokens zero", `{"model":"m",` + msgs + `,"max_tokens":0}`, "max_tokens"},
		{"max_completion_tokens string", `{"model":"m",` + msgs + `,"max_completion_tokens":"9"}`, "max_completion_tokens"},
		{"stop number", `{"model":"m",` + msgs + `,"stop":5}`, "stop"},
		{"stop too many", `{"model":"m",` + msgs + `,"stop":["a","b","c","d","e"]}`, "stop"},
		{"stop item", `{"model":"m",` + msgs + `,"stop":["a",1]}`, "stop[1]"},
		{"seed float", `{"model":"m",` + msgs + `,"seed":0.5}`, "seed"},
		{"logprobs int", `{"model":"m",` + msgs + `,"logprobs":1}`, "logprobs"},
		{"top_logprobs without logprobs", `{"model":"m",` + msgs + `,"top_logprobs":2}`, "top_logprobs"},
		{"top_logprobs range", `{"model":"m",` + msgs + `,"logprobs":true,"top_logprobs":21}`, "top_logprobs"},
		{"n two", `{"model":"m",` + msgs + `,"n":2}`, "n"},
		{"n string", `{"model":"m",` + msgs + `,"n":"1"}`, "n"},
		{"user number", `{"model":"m",` + msgs + `,"user":1}`, "user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, e := DecodeChatRequest([]byte(tt.body))
			if e == nil {
				t.Fatal("DecodeChatRequest succeeded, want an error")
			}
			if e.Status != 400 || e.Type != TypeInvalidRequest || e.Message == "" {
				t.Errorf("error = %+v, want a 400 invalid_request_error with a message", e)
			}
			if e.Param != tt.param {
				t.Errorf("param = %q, want %q (message %q)", e.Param, tt.param, e.Message)
			}
		})
	}
}

func TestDecodeCompletionRequest(t *testing.T) {
	got, e := DecodeCompletionRequest([]byte(`{"model":"m","prompt":["once upon"],"max_tokens":5,"logprobs":3,"echo":true,"best_of":1,"suffix":null}`))
	if e != nil {
		t.Fatal(e)
	}
	want := CompletionRequest{Model: "m", Prompt: PromptList{"once upon"}, MaxTokens: Ptr(5), Logprobs: Ptr(3), Echo: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	errs := []struct{ name, body, param string }{
		{"missing prompt", `{"model":"m"}`, "prompt"},
		{"prompt number", `{"model":"m","prompt":1}`, "prompt"},
		{"prompt token ids", `{"model":"m","prompt":[1,2,3]}`, "prompt"},
		{"two prompts", `{"model":"m","prompt":["a","b"]}`, "prompt"},
		{"empty prompt array", `{"model":"m","prompt":[]}`, "prompt"},
		{"logprobs bool", `{"model":"m","prompt":"a","logprobs":true}`, "logprobs"},
		{"logprobs range", `{"model":"m","prompt":"a","logprobs":6}`, "logprobs"},
		{"echo string", `{"model":"m","prompt":"a","echo":"no"}`, "echo"},
		{"best_of 2", `{"model":"m","prompt":"a","best_of":2}`, "best_of"},
		{"max_tokens negative", `{"model":"m","prompt":"a","max_tokens":-1}`, "max_tokens"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, e := DecodeCompletionRequest([]byte(tt.body))
			if e == nil || e.Status != 400 || e.Param != tt.param {
				t.Errorf("error = %v, want 400 with param %q", e, tt.param)
			}
		})
	}
}

func TestMaxOutputTokens(t *testing.T) {
	r := ChatCompletionRequest{MaxTokens: Ptr(10)}
	if n, ok := r.MaxOutputTokens(); n != 10 || !ok {
		t.Errorf("max_tokens only: %d %v", n, ok)
	}
	r.MaxCompletionTokens = Ptr(4)
	if n, ok := r.MaxOutputTokens(); n != 4 || !ok {
		t.Errorf("max_completion_tokens wins: %d %v", n, ok)
	}
	if _, ok := (CompletionRequest{}).MaxOutputTokens(); ok {
		t.Error("unset reported as set")
	}
}

func FuzzDecodeChatRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"stop":["a"]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, e := DecodeChatRequest(b)
		if e != nil {
			if e.Status != 400 {
				t.Fatalf("status %d", e.Status)
			}
			return
		}
		if r.Model == "" || len(r.Messages) == 0 {
			t.Fatalf("accepted request without model or messages: %+v", r)
		}
	})
}

func FuzzDecodeCompletionRequest(f *testing.F) {
	f.Add([]byte(`{"model":"m","prompt":"a","logprobs":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, e := DecodeCompletionRequest(b); e != nil && e.Status != 400 {
			t.Fatalf("status %d", e.Status)
		}
	})
}

func TestGenerationPrompt(t *testing.T) {
	tests := []struct {
		name string
		r    ChatCompletionRequest
		want bool
	}{
		{"default", ChatCompletionRequest{}, true},
		{"continue", ChatCompletionRequest{ContinueFinalMessage: true}, false},
		{"explicit false", ChatCompletionRequest{AddGenerationPrompt: Ptr(false)}, false},
		{"explicit true", ChatCompletionRequest{AddGenerationPrompt: Ptr(true)}, true},
	}
	for _, tt := range tests {
		if got := tt.r.GenerationPrompt(); got != tt.want {
			t.Errorf("%s: GenerationPrompt() = %v, want %v", tt.name, got, tt.want)
		}
	}
}
