// Package chat renders conversations into prompts with the chat templates of
// the supported model families, as their Jinja templates
// (tokenizer.chat_template) would, without a Jinja interpreter: each
// template is recognised by its distinctive markers and re-implemented.
//
// Rendered prompts contain the template's special tokens as text, including
// the BOS token where the template writes it (Llama 3, DeepSeek-R1, Llama 2).
// Tokenize them with tokenizer.EncodeOptions{ParseSpecial: true} and without
// AddSpecial, or BOS appears twice.
//
// Templates that read the clock (Llama 3.1 and later: "Today Date") are
// rendered with the template's own fallback date, 26 Jul 2024, so that a
// prompt renders the same everywhere; verifiers depend on that.
package chat

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/mycel-network/mycel/internal/gguf"
)

// Message is one turn of a conversation. Role is "system", "user",
// "assistant" or, where the family has one, "tool".
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Format is a chat template family.
type Format int

// Supported formats.
const (
	ChatML            Format = iota + 1 // plain ChatML, no default system prompt
	Qwen2                               // ChatML, default system "You are a helpful assistant." (Qwen2, Qwen2.5-Coder/Math)
	Qwen25                              // ChatML, default system "You are Qwen, created by Alibaba Cloud. …" (Qwen2.5-Instruct)
	Qwen3                               // ChatML with <think> handling of assistant turns (Qwen3)
	Llama3                              // Llama 3 / 3.0 Instruct headers
	Llama31                             // Llama 3.1–3.3: system header with knowledge and today dates
	DeepSeekR1                          // DeepSeek-R1 distills: <｜User｜>/<｜Assistant｜>, think parts of earlier turns dropped
	DeepSeekR1NoThink                   // early DeepSeek-R1 template whose generation prompt lacks "<think>\n"
	Llama2                              // Llama 2 chat: [INST] … [/INST], <<SYS>>
)

var formatNames = map[Format]string{
	ChatML: "chatml", Qwen2: "qwen2", Qwen25: "qwen2.5", Qwen3: "qwen3", Llama3: "llama3",
	Llama31: "llama3.1", DeepSeekR1: "deepseek-r1", DeepSeekR1NoThink: "deepseek-r1-nothink", Llama2: "llama2",
}

// String returns the format's name.
func (f Format) String() string {
	if s, ok := formatNames[f]; ok {
		return s
	}
	return fmt.Sprintf("format(%d)", int(f))
}

// ParseFormat returns the format with the given name (as String returns).
func ParseFormat(name string) (Format, error) {
	for f, s := range formatNames {
		if s == name {
			return f, nil
		}
	}
	return 0, fmt.Errorf("chat: unknown format %q", name)
}

const (
	qwen25System  = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
	qwen2System   = "You are a helpful assistant."
	llamaDate     = "26 Jul 2024"
	llama3BOS     = "<|begin_of_text|>"
	deepSeekBOS   = "<｜begin▁of▁sentence｜>"
	deepSeekEOS   = "<｜end▁of▁sentence｜>"
	deepSeekUser  = "<｜User｜>"
	deepSeekAsst  = "<｜Assistant｜>"
	llama2BOS     = "<s>"
	llama2EOS     = "</s>"
	maxShownChars = 80
)

// Detect recognises a chat template (the text of tokenizer.chat_template)
// by the markers of the real templates.
func Detect(chatTemplate string) (Format, error) {
	t := chatTemplate
	has := func(s string) bool { return strings.Contains(t, s) }
	switch {
	case has(deepSeekUser) || has(deepSeekAsst):
		if has(deepSeekAsst + "<think>") {
			return DeepSeekR1, nil
		}
		return DeepSeekR1NoThink, nil
	case has("<|start_header_id|>"):
		if has("Cutting Knowledge Date") {
			return Llama31, nil
		}
		return Llama3, nil
	case has("<|im_start|>"):
		switch {
		case has(qwen25System):
			return Qwen25, nil
		case has("<think>") || has("reasoning_content"):
			return Qwen3, nil
		case has(qwen2System):
			return Qwen2, nil
		}
		return ChatML, nil
	case has("[INST]") && has("<<SYS>>"):
		return Llama2, nil
	}
	shown := t
	if len([]rune(shown)) > maxShownChars {
		shown = string([]rune(shown)[:maxShownChars]) + "…"
	}
	return 0, fmt.Errorf("chat: unknown chat template %q (supported: ChatML/Qwen, Llama 3, DeepSeek-R1, Llama 2)", shown)
}

// FromGGUF returns the format of a model file's tokenizer.chat_template.
// Without a template it looks for the families' special tokens in the
// vocabulary and falls back to ChatML, as llama.cpp does.
func FromGGUF(f *gguf.File) (Format, error) {
	if _, ok := f.Get("tokenizer.chat_template"); ok {
		tmpl, err := f.String("tokenizer.chat_template")
		if err != nil {
			return 0, fmt.Errorf("chat: %w", err)
		}
		return Detect(tmpl)
	}
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	vocab := make(map[string]bool)
	for _, s := range tokens {
		if strings.HasPrefix(s, "<") {
			vocab[s] = true
		}
	}
	switch {
	case vocab[deepSeekUser]:
		return DeepSeekR1, nil
	case vocab["<|start_header_id|>"]:
		return Llama3, nil
	}
	return ChatML, nil
}

// Render returns the prompt for msgs. With addGenerationPrompt it ends with
// the header that makes the model answer as the assistant.
func (f Format) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	if len(msgs) == 0 {
		return "", errors.New("chat: no messages")
	}
	var b strings.Builder
	var err error
	switch f {
	case ChatML, Qwen2, Qwen25:
		renderChatML(&b, f, msgs, addGenerationPrompt)
	case Qwen3:
		renderQwen3(&b, msgs, addGenerationPrompt)
	case Llama3:
		renderLlama3(&b, msgs, addGenerationPrompt)
	case Llama31:
		renderLlama31(&b, msgs, addGenerationPrompt)
	case DeepSeekR1, DeepSeekR1NoThink:
		renderDeepSeekR1(&b, f, msgs, addGenerationPrompt)
	case Llama2:
		err = renderLlama2(&b, msgs)
	default:
		return "", fmt.Errorf("chat: unknown format %d", int(f))
	}
	if err != nil {
		return "", fmt.Errorf("chat: %s: %w", f, err)
	}
	return b.String(), nil
}

// RenderContinue returns the prompt that makes the model continue msgs' last
// message, an assistant message left open: no end-of-turn marker follows its
// content (what vLLM and transformers call continue_final_message).
//
// The prompt is the one the model saw when it wrote that text — the
// conversation before it rendered with the generation prompt, then the
// content exactly as given — so a greedy continuation of a partial answer
// proceeds as the uninterrupted answer would have (the gateway's mid-stream
// failover relies on it). Templates that rewrite a closed assistant turn do
// not rewrite the open one: Llama 3 does not strip its whitespace, Qwen3 adds
// no empty <think> block. For DeepSeek-R1 the content follows what the real
// template's generation prompt writes ("<｜Assistant｜><think>\n"), and its
// think part is kept: the template drops the reasoning of finished turns
// only, and the model is still reasoning in the open one. Llama 2, whose
// template has no generation prompt, continues right after "[/INST]".
func (f Format) RenderContinue(msgs []Message) (string, error) {
	if len(msgs) == 0 {
		return "", errors.New("chat: no messages")
	}
	last := msgs[len(msgs)-1]
	if last.Role != "assistant" {
		return "", fmt.Errorf("chat: continue: the last message is a %q message, want an assistant message to continue", last.Role)
	}
	if len(msgs) == 1 {
		return "", errors.New("chat: continue: nothing precedes the assistant message")
	}
	prompt, err := f.Render(msgs[:len(msgs)-1], true)
	if err != nil {
		return "", err
	}
	return prompt + last.Content, nil
}

func renderChatML(b *strings.Builder, f Format, msgs []Message, gen bool) {
	start := 0
	if f != ChatML {
		if msgs[0].Role == "system" {
			b.WriteString("<|im_start|>system\n" + msgs[0].Content + "<|im_end|>\n")
			start = 1
		} else if f == Qwen25 {
			b.WriteString("<|im_start|>system\n" + qwen25System + "<|im_end|>\n")
		} else {
			b.WriteString("<|im_start|>system\n" + qwen2System + "<|im_end|>\n")
		}
	}
	for i := start; i < len(msgs); i++ {
		m := msgs[i]
		switch {
		case m.Role == "tool" && f != ChatML:
			writeToolResponse(b, msgs, i)
		case f == ChatML || m.Role == "user" || m.Role == "system" || m.Role == "assistant":
			b.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
		}
	}
	if gen {
		b.WriteString("<|im_start|>assistant\n")
	}
}

// writeToolResponse writes a Qwen tool message: consecutive tool messages
// share one user turn.
func writeToolResponse(b *strings.Builder, msgs []Message, i int) {
	if i == 0 || msgs[i-1].Role != "tool" {
		b.WriteString("<|im_start|>user")
	}
	b.WriteString("\n<tool_response>\n" + msgs[i].Content + "\n</tool_response>")
	if i == len(msgs)-1 || msgs[i+1].Role != "tool" {
		b.WriteString("<|im_end|>\n")
	}
}

func renderQwen3(b *strings.Builder, msgs []Message, gen bool) {
	if msgs[0].Role == "system" {
		b.WriteString("<|im_start|>system\n" + msgs[0].Content + "<|im_end|>\n")
	}
	// The last user message that is not a tool response.
	lastQuery := len(msgs) - 1
	for i := len(msgs) - 1; i >= 0; i-- {
		c := msgs[i].Content
		if msgs[i].Role == "user" && !(strings.HasPrefix(c, "<tool_response>") && strings.HasSuffix(c, "</tool_response>")) {
			lastQuery = i
			break
		}
	}
	for i, m := range msgs {
		switch {
		case m.Role == "user" || (m.Role == "system" && i > 0):
			b.WriteString("<|im_start|>" + m.Role + "\n" + m.Content + "<|im_end|>\n")
		case m.Role == "assistant":
			content, reasoning := m.Content, ""
			if strings.Contains(content, "</think>") {
				parts := strings.Split(m.Content, "</think>")
				content = strings.TrimLeft(parts[len(parts)-1], "\n")
				before := strings.Split(strings.TrimRight(parts[0], "\n"), "<think>")
				reasoning = strings.TrimLeft(before[len(before)-1], "\n")
			}
			if i > lastQuery && (i == len(msgs)-1 || reasoning != "") {
				b.WriteString("<|im_start|>assistant\n<think>\n" + strings.Trim(reasoning, "\n") + "\n</think>\n\n" + strings.TrimLeft(content, "\n"))
			} else {
				b.WriteString("<|im_start|>assistant\n" + content)
			}
			b.WriteString("<|im_end|>\n")
		case m.Role == "tool":
			writeToolResponse(b, msgs, i)
		}
	}
	if gen {
		b.WriteString("<|im_start|>assistant\n")
	}
}

func renderLlama3(b *strings.Builder, msgs []Message, gen bool) {
	b.WriteString(llama3BOS)
	for _, m := range msgs {
		b.WriteString("<|start_header_id|>" + m.Role + "<|end_header_id|>\n\n" + pyStrip(m.Content) + "<|eot_id|>")
	}
	if gen {
		b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	}
}

func renderLlama31(b *strings.Builder, msgs []Message, gen bool) {
	system := ""
	if msgs[0].Role == "system" {
		system = pyStrip(msgs[0].Content)
		msgs = msgs[1:]
	}
	b.WriteString(llama3BOS + "<|start_header_id|>system<|end_header_id|>\n\n")
	b.WriteString("Cutting Knowledge Date: December 2023\nToday Date: " + llamaDate + "\n\n")
	b.WriteString(system + "<|eot_id|>")
	for _, m := range msgs {
		if m.Role == "tool" || m.Role == "ipython" {
			// Strings are iterable in Jinja, so the template JSON-encodes them.
			b.WriteString("<|start_header_id|>ipython<|end_header_id|>\n\n" + pyJSONString(m.Content) + "<|eot_id|>")
			continue
		}
		b.WriteString("<|start_header_id|>" + m.Role + "<|end_header_id|>\n\n" + pyStrip(m.Content) + "<|eot_id|>")
	}
	if gen {
		b.WriteString("<|start_header_id|>assistant<|end_header_id|>\n\n")
	}
}

func renderDeepSeekR1(b *strings.Builder, f Format, msgs []Message, gen bool) {
	system := ""
	for _, m := range msgs {
		if m.Role == "system" {
			system = m.Content // the template keeps the last one
		}
	}
	b.WriteString(deepSeekBOS + system)
	isTool, outputFirst := false, true
	for _, m := range msgs {
		switch m.Role {
		case "user":
			isTool = false
			b.WriteString(deepSeekUser + m.Content)
		case "assistant":
			if isTool {
				b.WriteString("<｜tool▁outputs▁end｜>" + m.Content + deepSeekEOS)
				isTool = false
				continue
			}
			content := m.Content
			if i := strings.LastIndex(content, "</think>"); i >= 0 {
				content = content[i+len("</think>"):]
			}
			b.WriteString(deepSeekAsst + content + deepSeekEOS)
		case "tool":
			isTool = true
			if outputFirst {
				b.WriteString("<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>" + m.Content + "<｜tool▁output▁end｜>")
				outputFirst = false
			} else {
				b.WriteString("\n<｜tool▁output▁begin｜>" + m.Content + "<｜tool▁output▁end｜>")
			}
		}
	}
	if isTool {
		b.WriteString("<｜tool▁outputs▁end｜>")
	}
	if gen && !isTool {
		b.WriteString(deepSeekAsst)
		if f == DeepSeekR1 {
			b.WriteString("<think>\n")
		}
	}
}

func renderLlama2(b *strings.Builder, msgs []Message) error {
	system, hasSystem := "", false
	if msgs[0].Role == "system" {
		system, hasSystem = msgs[0].Content, true
		msgs = msgs[1:]
	}
	for i, m := range msgs {
		if (m.Role == "user") != (i%2 == 0) {
			return errors.New("conversation roles must alternate user/assistant/user/assistant/...")
		}
		content := m.Content
		if i == 0 && hasSystem {
			content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content
		}
		switch m.Role {
		case "user":
			b.WriteString(llama2BOS + "[INST] " + pyStrip(content) + " [/INST]")
		case "assistant":
			b.WriteString(" " + pyStrip(content) + " " + llama2EOS)
		}
	}
	return nil
}

// pyStrip is Python's str.strip(): Unicode whitespace and the ASCII
// separators U+001C–U+001F.
func pyStrip(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
	})
}

// pyJSONString is Python's json.dumps(s, ensure_ascii=False).
func pyJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}
