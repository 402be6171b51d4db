package engine

import (
	"bytes"
	"unicode/utf8"
)

// stopper turns token bytes into streamable text: it finds stop strings
// across token boundaries and holds back text that could still become a stop
// string or that ends in an incomplete UTF-8 character.
type stopper struct {
	stops []string
	held  []byte
}

// push adds the bytes of one token and returns the text that can be
// released now; hit reports that a stop string was found (the returned text
// then ends just before it and generation must end).
func (s *stopper) push(b []byte) (text string, hit bool) {
	s.held = append(s.held, b...)
	first := -1
	for _, st := range s.stops {
		if st == "" {
			continue
		}
		if i := bytes.Index(s.held, []byte(st)); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	if first >= 0 {
		text = string(s.held[:first])
		s.held = s.held[:0]
		return text, true
	}
	keep := 0
	for _, st := range s.stops {
		// Longest suffix of held that is a proper prefix of st.
		for n := min(len(st)-1, len(s.held)); n > keep; n-- {
			if bytes.HasSuffix(s.held, []byte(st[:n])) {
				keep = n
				break
			}
		}
	}
	keep = max(keep, incompleteUTF8(s.held))
	text = string(s.held[:len(s.held)-keep])
	s.held = append(s.held[:0], s.held[len(s.held)-keep:]...)
	return text, false
}

// flush returns whatever is held back.
func (s *stopper) flush() string {
	t := string(s.held)
	s.held = s.held[:0]
	return t
}

// incompleteUTF8 returns the length of a trailing, possibly valid but
// unfinished UTF-8 sequence of b.
func incompleteUTF8(b []byte) int {
	for n := 1; n <= 3 && n <= len(b); n++ {
		c := b[len(b)-n]
		if c < 0x80 {
			return 0
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-n:]) {
				return n
			}
			return 0
		}
	}
	return 0
}
