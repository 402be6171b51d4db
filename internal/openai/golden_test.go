package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

func indent(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestGoldenResponses pins the JSON of every response object against testdata.
func TestGoldenResponses(t *testing.T) {
	lp := &ChatLogprobs{Content: []TokenLogprob{{Token: "Hi", Logprob: -0.5, Bytes: TokenBytes("Hi"), TopLogprobs: []TopLogprob{{Token: "Hi", Logprob: -0.5, Bytes: TokenBytes("Hi")}}}}}
	cases := []struct {
		file string
		v    any
	}{
		{"chat_completion.json", ChatCompletion{ID: "chatcmpl-1", Object: ObjectChatCompletion, Created: 1700000000, Model: "mycel-ref",
			Choices: []ChatChoice{{Message: ChatMessage{Role: "assistant", Content: "Hi"}, FinishReason: FinishStop}},
			Usage:   &Usage{PromptTokens: 5, CompletionTokens: 1, TotalTokens: 6}}},
		{"chat_completion_logprobs.json", ChatCompletion{ID: "chatcmpl-2", Object: ObjectChatCompletion, Created: 1700000000, Model: "mycel-ref",
			Choices: []ChatChoice{{Message: ChatMessage{Role: "assistant", Content: "Hi"}, Logprobs: lp, FinishReason: FinishLength}},
			Usage:   &Usage{PromptTokens: 5, CompletionTokens: 1, TotalTokens: 6}}},
		{"chat_chunks.json", []ChatCompletionChunk{
			{ID: "chatcmpl-3", Object: ObjectChatCompletionChunk, Created: 1700000000, Model: "mycel-ref", Choices: []ChatChunkChoice{{Delta: ChatDelta{Role: "assistant"}}}},
			{ID: "chatcmpl-3", Object: ObjectChatCompletionChunk, Created: 1700000000, Model: "mycel-ref", Choices: []ChatChunkChoice{{Delta: ChatDelta{Content: "Hi"}, Logprobs: lp}}},
			{ID: "chatcmpl-3", Object: ObjectChatCompletionChunk, Created: 1700000000, Model: "mycel-ref", Choices: []ChatChunkChoice{{FinishReason: Ptr(FinishStop)}}},
			{ID: "chatcmpl-3", Object: ObjectChatCompletionChunk, Created: 1700000000, Model: "mycel-ref", Choices: []ChatChunkChoice{}, Usage: &Usage{PromptTokens: 5, CompletionTokens: 1, TotalTokens: 6}},
		}},
		{"completion.json", Completion{ID: "cmpl-1", Object: ObjectTextCompletion, Created: 1700000000, Model: "mycel-ref",
			Choices: []CompletionChoice{{Text: " there", Logprobs: &CompletionLogprobs{Tokens: []string{" there"}, TokenLogprobs: []float64{-1.25},
				TopLogprobs: []map[string]float64{{" there": -1.25, " here": -2}}, TextOffset: []int{5}}, FinishReason: FinishLength}},
			Usage: &Usage{PromptTokens: 2, CompletionTokens: 1, TotalTokens: 3}}},
		{"completion_chunk.json", CompletionChunk{ID: "cmpl-2", Object: ObjectTextCompletion, Created: 1700000000, Model: "mycel-ref",
			Choices: []CompletionChunkChoice{{Text: " there"}}}},
		{"models.json", ModelList{Object: ObjectList, Data: []Model{{ID: "mycel-ref", Object: ObjectModel, Created: 1700000000, OwnedBy: "mycel"}}}},
		{"error_param.json", &Error{Status: 400, Type: TypeInvalidRequest, Param: "max_tokens", Message: "Invalid type for 'max_tokens': expected an integer, but got a string instead."}},
		{"error_payment.json", NewError(402, TypePayment, CodePaymentRequired, "voucher does not cover earlier deliveries")},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) { golden(t, c.file, indent(t, c.v)) })
	}
}

// TestGoldenRequests re-encodes decoded requests: what the gateway forwards.
func TestGoldenRequests(t *testing.T) {
	chat, e := DecodeChatRequest([]byte(`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"stream":true,"stream_options":{"include_usage":true},"stop":"x","max_tokens":8,"logprobs":true,"top_logprobs":1,"seed":1,"ignored":{"a":1}}`))
	if e != nil {
		t.Fatal(e)
	}
	golden(t, "chat_request.json", indent(t, chat))
	cmpl, e := DecodeCompletionRequest([]byte(`{"model":"m","prompt":["once"],"temperature":0,"logprobs":0,"echo":true}`))
	if e != nil {
		t.Fatal(e)
	}
	golden(t, "completion_request.json", indent(t, cmpl))
}

// TestGoldenSSE pins an SSE transcript as written by SSEWriter and WriteError.
func TestGoldenSSE(t *testing.T) {
	rec := httptest.NewRecorder()
	sw, err := NewSSEWriter(rec)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"Hel", "lo"} {
		if err := sw.WriteJSON(ChatCompletionChunk{ID: "chatcmpl-4", Object: ObjectChatCompletionChunk, Created: 1700000000, Model: "m",
			Choices: []ChatChunkChoice{{Delta: ChatDelta{Content: c}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.WriteJSON(map[string]any{"object": "mycel.receipt", "receipt": map[string]any{"request_id": "r1"}}); err != nil {
		t.Fatal(err)
	}
	if err := sw.WriteDone(); err != nil {
		t.Fatal(err)
	}
	var hdr strings.Builder
	for _, k := range []string{"Content-Type", "Cache-Control", "X-Accel-Buffering"} {
		hdr.WriteString(k + ": " + rec.Header().Get(k) + "\n")
	}
	golden(t, "stream.sse", append([]byte(hdr.String()+"\n"), rec.Body.Bytes()...))

	rec = httptest.NewRecorder()
	WriteError(rec, &Error{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Message: "queue full", RetryAfter: 2})
	var buf bytes.Buffer
	buf.WriteString(rec.Result().Status + "\nRetry-After: " + rec.Header().Get("Retry-After") + "\nContent-Type: " + rec.Header().Get("Content-Type") + "\n\n")
	buf.Write(rec.Body.Bytes())
	golden(t, "error_429.txt", buf.Bytes())
}

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name   string
		stream string
		want   []string
		final  error
	}{
		{"plain", "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n", []string{`{"a":1}`, `{"b":2}`}, io.EOF},
		{"comments, fields, CRLF, no space", ": keepalive\r\nevent: x\r\nid: 3\r\ndata:{\"a\":1}\r\n\r\ndata: [DONE]\r\n\r\n", []string{`{"a":1}`}, io.EOF},
		{"multi-line data", "data: a\ndata: b\n\ndata: [DONE]\n\n", []string{"a\nb"}, io.EOF},
		{"truncated", "data: {\"a\":1}\n\ndata: {\"b\"", []string{`{"a":1}`, `{"b"`}, io.ErrUnexpectedEOF},
		{"empty", "", nil, io.ErrUnexpectedEOF},
		{"done without blank line", "data: x\n\ndata: [DONE]", []string{"x"}, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewSSEReader(strings.NewReader(tt.stream))
			var got []string
			var err error
			for {
				var d []byte
				d, err = r.Next()
				if err != nil {
					break
				}
				got = append(got, string(d))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if !errors.Is(err, tt.final) {
				t.Errorf("final error = %v, want %v", err, tt.final)
			}
			if _, err := r.Next(); tt.final == io.EOF && err != io.EOF {
				t.Errorf("Next after [DONE] = %v, want io.EOF", err)
			}
		})
	}
}

func TestSSERoundTrip(t *testing.T) {
	rec := httptest.NewRecorder()
	sw, err := NewSSEWriter(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.WriteData([]byte("a\nb")); err == nil {
		t.Error("WriteData accepted a newline")
	}
	want := []string{`{"x":"line\nbreak"}`, `{"y":2}`}
	for _, w := range want {
		var v any
		_ = json.Unmarshal([]byte(w), &v)
		if err := sw.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	_ = sw.WriteDone()
	r := NewSSEReader(rec.Body)
	for _, w := range want {
		d, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !jsonEqual(t, w, string(d)) {
			t.Errorf("event %s, want %s", d, w)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after [DONE]: %v", err)
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return cmp.Equal(x, y)
}

func TestParseError(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   *Error
	}{
		{"envelope", 400, `{"error":{"message":"bad","type":"invalid_request_error","param":"n","code":null}}`, &Error{Status: 400, Message: "bad", Type: TypeInvalidRequest, Param: "n"}},
		{"numeric code", 500, `{"error":{"message":"x","code":500}}`, &Error{Status: 500, Message: "x", Type: TypeServer, Code: "500"}},
		{"plain text", 502, `bad gateway`, &Error{Status: 502, Message: "bad gateway", Type: TypeServer}},
		{"empty", 429, ``, &Error{Status: 429, Message: "Too Many Requests", Type: TypeRateLimit}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ParseError(tt.status, []byte(tt.body))); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	// Round trip through WriteError.
	rec := httptest.NewRecorder()
	in := NewError(402, TypePayment, CodePaymentRequired, "stale voucher")
	WriteError(rec, in)
	if diff := cmp.Diff(in, ParseError(rec.Code, rec.Body.Bytes())); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("data: x\n\ndata: [DONE]\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewSSEReader(bytes.NewReader(b))
		for i := 0; i <= len(b)+1; i++ {
			if _, err := r.Next(); err != nil {
				return
			}
		}
		t.Fatal("reader returned more events than input bytes")
	})
}
