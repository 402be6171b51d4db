package demomodel

import (
	"unicode"
	"unicode/utf8"
)

// preTokenizeQwen2 splits text into pieces the way the Qwen2 pre-tokenizer
// regular expression does:
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// It is hand-written because Go's regexp has no look-ahead.
func preTokenizeQwen2(text string, emit func(piece string)) {
	for i := 0; i < len(text); {
		n := matchQwen2(text[i:])
		emit(text[i : i+n])
		i += n
	}
}

func isLetter(r rune) bool { return unicode.IsLetter(r) }
func isNumber(r rune) bool { return unicode.IsNumber(r) }
func isSpace(r rune) bool  { return unicode.IsSpace(r) }
func isNL(r rune) bool     { return r == '\r' || r == '\n' }

// matchQwen2 returns the length in bytes (> 0) of the piece at the start of s.
func matchQwen2(s string) int {
	r, w := utf8.DecodeRuneInString(s)
	// Contractions.
	if r == '\'' && len(s) > 1 {
		for _, c := range []string{"s", "t", "re", "ve", "m", "ll", "d"} {
			if len(s) >= 1+len(c) && equalFoldASCII(s[1:1+len(c)], c) {
				return 1 + len(c)
			}
		}
	}
	// [^\r\n\p{L}\p{N}]?\p{L}+
	if isLetter(r) {
		return w + letters(s[w:])
	}
	if !isNL(r) && !isNumber(r) {
		if r2, _ := utf8.DecodeRuneInString(s[w:]); w < len(s) && isLetter(r2) {
			return w + letters(s[w:])
		}
	}
	// \p{N}
	if isNumber(r) {
		return w
	}
	// ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	{
		j := 0
		if r == ' ' {
			j = 1
		}
		k := j
		for k < len(s) {
			r3, w3 := utf8.DecodeRuneInString(s[k:])
			if isSpace(r3) || isLetter(r3) || isNumber(r3) {
				break
			}
			k += w3
		}
		if k > j {
			for k < len(s) && (s[k] == '\r' || s[k] == '\n') {
				k++
			}
			return k
		}
	}
	// Whitespace: r is a space here.
	end := 0
	lastNL := -1
	for end < len(s) {
		r3, w3 := utf8.DecodeRuneInString(s[end:])
		if !isSpace(r3) {
			break
		}
		if isNL(r3) {
			lastNL = end + w3
		}
		end += w3
	}
	if end == 0 {
		return w // not reachable for valid categories; make progress anyway
	}
	// \s*[\r\n]+
	if lastNL > 0 {
		return lastNL
	}
	// \s+(?!\S)
	if end == len(s) {
		return end
	}
	_, lw := utf8.DecodeLastRuneInString(s[:end])
	if end-lw > 0 {
		return end - lw
	}
	// \s+
	return end
}

func letters(s string) int {
	n := 0
	for n < len(s) {
		r, w := utf8.DecodeRuneInString(s[n:])
		if !isLetter(r) {
			break
		}
		n += w
	}
	return n
}

func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != b[i] {
			return false
		}
	}
	return true
}
