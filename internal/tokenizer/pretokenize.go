package tokenizer

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// A matcher reports the length in runes of the match of one pre-tokenizer
// regular expression at rs[pos:], looking no further than rs[:end]; 0 means
// no match. Matchers never match the empty string.
type matcher func(rs []rune, pos, end int) int

// span is a half-open range of rune indices.
type span struct{ start, end int }

// preTokenizer is a sequence of regular expressions applied as llama.cpp's
// unicode_regex_split and Hugging Face's Split(behavior=Isolated) do: each
// splits every piece produced by the previous one into its matches and the
// text between them.
type preTokenizer []matcher

// preTokenizers maps tokenizer.ggml.pre names to their pre-tokenizers, as
// llama.cpp's llama-vocab.cpp does.
func lookupPreTokenizer(pre string) (preTokenizer, error) {
	switch pre {
	case "", "default":
		return preTokenizer{matchDefaultPunct, matchGPT2, matchNumbers, matchThreeDigits}, nil
	case "gpt2", "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais":
		return preTokenizer{matchGPT2}, nil
	case "llama3", "llama-v3", "llama-bpe", "falcon3", "smaug-bpe", "dbrx":
		return preTokenizer{matchLlama3}, nil
	case "qwen2", "deepseek-r1-qwen", "megrez", "stablelm2":
		return preTokenizer{matchQwen2}, nil
	case "deepseek-llm":
		return preTokenizer{matchNewline, matchDeepSeekLetters, matchDeepSeekPunct, matchTrailingSpace, matchDeepSeekCJK, matchNumbers}, nil
	}
	return nil, fmt.Errorf("unknown pre-tokenizer %q", pre)
}

// PreTokenize splits text into the words that byte-level BPE merges within,
// with the pre-tokenizer named pre (a tokenizer.ggml.pre value such as
// "default", "gpt2", "llama-bpe", "qwen2", "deepseek-r1-qwen" or
// "deepseek-llm"). The words are substrings of text and concatenate to it.
func PreTokenize(pre string, text string) ([]string, error) {
	p, err := lookupPreTokenizer(pre)
	if err != nil {
		return nil, err
	}
	var words []string
	p.split(text, func(w string) { words = append(words, w) })
	return words, nil
}

// split calls emit with each word of text, in order.
func (p preTokenizer) split(text string, emit func(string)) {
	if text == "" {
		return
	}
	// Invalid UTF-8 bytes become U+FFFD runes of one byte each, so that
	// words are still exact byte ranges of text.
	rs := make([]rune, 0, len(text))
	offs := make([]int, 0, len(text)+1)
	for i := 0; i < len(text); {
		r, n := utf8.DecodeRuneInString(text[i:])
		rs = append(rs, r)
		offs = append(offs, i)
		i += n
	}
	offs = append(offs, len(text))
	spans := []span{{0, len(rs)}}
	var next []span
	for _, m := range p {
		next = next[:0]
		for _, s := range spans {
			next = splitSpan(rs, s, m, next)
		}
		spans, next = next, spans
	}
	for _, s := range spans {
		emit(text[offs[s.start]:offs[s.end]])
	}
}

func splitSpan(rs []rune, s span, m matcher, out []span) []span {
	gap := s.start
	for pos := s.start; pos < s.end; {
		n := m(rs, pos, s.end)
		if n == 0 {
			pos++
			continue
		}
		if gap < pos {
			out = append(out, span{gap, pos})
		}
		out = append(out, span{pos, pos + n})
		pos += n
		gap = pos
	}
	if gap < s.end {
		out = append(out, span{gap, s.end})
	}
	return out
}

func isL(r rune) bool { return unicode.IsLetter(r) }
func isN(r rune) bool { return unicode.IsNumber(r) }

// isS is \s: the Unicode White_Space property, as in llama.cpp and Rust's regex.
func isS(r rune) bool     { return unicode.IsSpace(r) }
func isCRLF(r rune) bool  { return r == '\r' || r == '\n' }
func isOther(r rune) bool { return !isS(r) && !isL(r) && !isN(r) }
func runOf(rs []rune, pos, end int, f func(rune) bool) int {
	n := 0
	for pos+n < end && f(rs[pos+n]) {
		n++
	}
	return n
}

// contraction matches 's|'t|'re|'ve|'m|'ll|'d, case-insensitively if fold.
func contraction(rs []rune, pos, end int, fold bool) int {
	if rs[pos] != '\'' || pos+1 >= end {
		return 0
	}
	c := func(i int) rune {
		if pos+i >= end {
			return 0
		}
		r := rs[pos+i]
		if fold && r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	}
	switch c(1) {
	case 's', 't', 'm', 'd':
		return 2
	case 'r', 'v':
		if c(2) == 'e' {
			return 3
		}
	case 'l':
		if c(2) == 'l' {
			return 3
		}
	}
	return 0
}

// spaceRunNotBeforeNonSpace matches \s+(?!\S): a whitespace run, minus its
// last character when a non-space follows it.
func spaceRunNotBeforeNonSpace(rs []rune, pos, end int) int {
	n := runOf(rs, pos, end, isS)
	if n == 0 {
		return 0
	}
	if pos+n < end { // followed by \S: back off one
		return n - 1
	}
	return n
}

// matchGPT2 is 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
func matchGPT2(rs []rune, pos, end int) int {
	if n := contraction(rs, pos, end, false); n > 0 {
		return n
	}
	sp := 0
	if rs[pos] == ' ' {
		sp = 1
	}
	if pos+sp < end {
		for _, f := range []func(rune) bool{isL, isN, isOther} {
			if n := runOf(rs, pos+sp, end, f); n > 0 {
				return sp + n
			}
		}
	}
	return spaceRunNotBeforeNonSpace(rs, pos, end)
}

// matchLlama3 is (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func matchLlama3(rs []rune, pos, end int) int { return matchGPT4Style(rs, pos, end, 3) }

// matchQwen2 is matchLlama3 with \p{N} (single digits) for \p{N}{1,3}.
func matchQwen2(rs []rune, pos, end int) int { return matchGPT4Style(rs, pos, end, 1) }

func matchGPT4Style(rs []rune, pos, end, maxDigits int) int {
	if n := contraction(rs, pos, end, true); n > 0 {
		return n
	}
	r := rs[pos]
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if !isCRLF(r) && !isL(r) && !isN(r) && pos+1 < end && isL(rs[pos+1]) {
		return 1 + runOf(rs, pos+1, end, isL)
	}
	if isL(r) {
		return runOf(rs, pos, end, isL)
	}
	// \p{N}{1,maxDigits}
	if isN(r) {
		return min(runOf(rs, pos, end, isN), maxDigits)
	}
	//  ?[^\s\p{L}\p{N}]+[\r\n]*
	sp := 0
	if r == ' ' {
		sp = 1
	}
	if pos+sp < end {
		if n := runOf(rs, pos+sp, end, isOther); n > 0 {
			return sp + n + runOf(rs, pos+sp+n, end, isCRLF)
		}
	}
	// \s*[\r\n]+ : up to the last newline of the whitespace run.
	ws := runOf(rs, pos, end, isS)
	for i := ws - 1; i >= 0; i-- {
		if isCRLF(rs[pos+i]) {
			return i + 1
		}
	}
	// \s+(?!\S)|\s+
	if n := spaceRunNotBeforeNonSpace(rs, pos, end); n > 0 {
		return n
	}
	return ws
}

// matchDefaultPunct is [\p{P}\$\+<=>\^~\|]+
func matchDefaultPunct(rs []rune, pos, end int) int {
	return runOf(rs, pos, end, func(r rune) bool {
		switch r {
		case '$', '+', '<', '=', '>', '^', '~', '|':
			return true
		}
		return unicode.IsPunct(r)
	})
}

// matchNumbers is \p{N}+
func matchNumbers(rs []rune, pos, end int) int { return runOf(rs, pos, end, isN) }

// matchThreeDigits is [0-9][0-9][0-9]
func matchThreeDigits(rs []rune, pos, end int) int {
	if pos+3 <= end && isDigit(rs[pos]) && isDigit(rs[pos+1]) && isDigit(rs[pos+2]) {
		return 3
	}
	return 0
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

// matchNewline is [\r\n]
func matchNewline(rs []rune, pos, end int) int {
	if isCRLF(rs[pos]) {
		return 1
	}
	return 0
}

// matchTrailingSpace is \s+$ (within the piece).
func matchTrailingSpace(rs []rune, pos, end int) int {
	if n := runOf(rs, pos, end, isS); n > 0 && pos+n == end {
		return n
	}
	return 0
}

// optSpaceThenRun matches \s?[class]+.
func optSpaceThenRun(rs []rune, pos, end int, in func(rune) bool) int {
	sp := 0
	if isS(rs[pos]) {
		sp = 1
	}
	if pos+sp < end {
		if n := runOf(rs, pos+sp, end, in); n > 0 {
			return sp + n
		}
	}
	if sp == 1 { // \s? matched nothing useful; try without it
		return runOf(rs, pos, end, in)
	}
	return 0
}

func inRanges(r rune, ranges []rune) bool {
	for i := 0; i+1 < len(ranges); i += 2 {
		if r >= ranges[i] && r <= ranges[i+1] {
			return true
		}
	}
	return false
}

// deepSeekLetters is the letter class of the deepseek-llm pre-tokenizer, as
// pairs of inclusive bounds.
var deepSeekLetters = []rune{
	'A', 'Z', 'a', 'z', 'µ', 'µ', 'À', 'Ö', 'Ø', 'ö', 'ø', 'ƺ', 'Ƽ', 'ƿ', 'Ǆ', 'ʓ', 'ʕ', 'ʯ',
	'Ͱ', 'ͳ', 'Ͷ', 'ͷ', 'ͻ', 'ͽ', 'Ϳ', 'Ϳ', 'Ά', 'Ά', 'Έ', 'Ί', 'Ό', 'Ό', 'Ύ', 'Ρ', 'Σ', 'ϵ',
	'Ϸ', 'ҁ', 'Ҋ', 'ԯ', 'Ա', 'Ֆ', 'Ⴀ', 'Ⴥ', 'Ꭰ', 'Ᏽ', 'ᏸ', 'ᏽ', 'Ა', 'Ჺ', 'Ჽ', 'Ჿ', 'ᴀ', 'ᴫ',
	'ᵫ', 'ᵷ', 'ᵹ', 'ᶚ', 'Ḁ', 'ἕ', 'Ἐ', 'Ἕ', 'ἠ', 'ὅ', 'Ὀ', 'Ὅ', 'ὐ', 'ὗ', 'Ὑ', 'Ὑ', 'Ὓ', 'Ὓ',
	'Ὕ', 'Ὕ', 'Ὗ', '\u1f7d', 'ᾀ', 'ᾴ', 'ᾶ', 'ᾼ', '\u1fbe', '\u1fbe', 'ῂ', 'ῄ', 'ῆ', 'ῌ', 'ῐ', '\u1fd3', 'ῖ', '\u1fdb',
	'ῠ', 'Ῥ', 'ῲ', 'ῴ', 'ῶ', 'ῼ', 'ℂ', 'ℂ', 'ℇ', 'ℇ', 'ℊ', 'ℓ', 'ℕ', 'ℕ', 'ℙ', 'ℝ', 'ℤ', 'ℤ',
	'\u2126', '\u2126', 'ℨ', 'ℨ', '\u212a', 'ℭ', 'ℯ', 'ℴ', 'ℹ', 'ℹ', 'ℼ', 'ℿ', 'ⅅ', 'ⅉ', 'ⅎ', 'ⅎ', 'Ↄ', 'ↄ',
	'Ⰰ', 'ⱻ', 'Ȿ', 'ⳤ', 'Ⳬ', 'ⳮ', 'Ⳳ', 'ⳳ', 'Ꙁ', 'ꙭ', 'Ꚁ', 'ꚛ', 'Ꜣ', 'ꝯ', 'ꝱ', 'ꞇ', 'Ꞌ', 'ꞎ',
	'ꭰ', 'ꮿ', 'ﬀ', 'ﬆ', 'ﬓ', 'ﬗ', 'Ａ', 'Ｚ', 'ａ', 'ｚ', 0x10400, 0x1044f, '𐒰', '𐓓', '𐓘', '𐓻',
	'𐲀', '𐲲', '𐳀', '𐳲', '𑢠', '𑣟', '𞤀', '𞥃',
}

var deepSeekPunct = []rune{'!', '/', ':', '~', '！', '／', '：', '～', '‘', '‟', '　', '。'}

var deepSeekCJK = []rune{'一', '龥', 'ࠀ', '一', '가', '퟿'}

func matchDeepSeekLetters(rs []rune, pos, end int) int {
	return optSpaceThenRun(rs, pos, end, func(r rune) bool { return inRanges(r, deepSeekLetters) })
}

func matchDeepSeekPunct(rs []rune, pos, end int) int {
	return optSpaceThenRun(rs, pos, end, func(r rune) bool { return inRanges(r, deepSeekPunct) })
}

func matchDeepSeekCJK(rs []rune, pos, end int) int {
	return runOf(rs, pos, end, func(r rune) bool { return inRanges(r, deepSeekCJK) })
}

// byteToUnicode is GPT-2's bytes_to_unicode table: printable bytes map to
// themselves, the others to U+0100 and up, in byte order.
var byteToUnicode, unicodeToByte = func() ([256]rune, [0x144]int16) {
	var b2u [256]rune
	var u2b [0x144]int16
	for i := range u2b {
		u2b[i] = -1
	}
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			b2u[b] = rune(b)
		} else {
			b2u[b] = rune(256 + n)
			n++
		}
		u2b[b2u[b]] = int16(b)
	}
	return b2u, u2b
}()

// ByteToUnicode returns the rune that GPT-2's byte-level encoding uses for b.
func ByteToUnicode(b byte) rune { return byteToUnicode[b] }

// UnicodeToByte inverts ByteToUnicode.
func UnicodeToByte(r rune) (byte, bool) {
	if r < 0 || r >= rune(len(unicodeToByte)) || unicodeToByte[r] < 0 {
		return 0, false
	}
	return byte(unicodeToByte[r]), true
}

// EncodeBytes returns the byte-level encoding of s: each byte replaced by
// ByteToUnicode of it. Vocabulary entries of gpt2-model tokenizers are
// spelled this way.
func EncodeBytes(s string) string {
	buf := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		buf[i] = byteToUnicode[s[i]]
	}
	return string(buf)
}
