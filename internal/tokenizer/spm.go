package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// spmBigram is a candidate merge in SentencePiece BPE: highest score first,
// then leftmost, as llama.cpp's llm_tokenizer_spm.
type spmBigram struct {
	score       float32
	left, right int
	size        int
	id          int32
}

// spmHeap repeats bigramHeap's code with its own ordering on purpose: one
// generic heap with a comparator function measured 38% slower on
// SentencePiece encoding (BenchmarkEncode/llama2), since the comparison is
// no longer inlined.
type spmHeap []spmBigram

func (h spmHeap) less(i, j int) bool {
	return h[i].score > h[j].score || (h[i].score == h[j].score && h[i].left < h[j].left)
}

func (h *spmHeap) push(b spmBigram) {
	*h = append(*h, b)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *spmHeap) pop() spmBigram {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s.less(l, m) {
			m = l
		}
		if r < len(s) && s.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// spm appends the tokens of one raw fragment (spaces become ▁).
func (t *Tokenizer) spm(raw string, out []int32) []int32 {
	text := strings.ReplaceAll(raw, " ", "▁")
	if text == "" {
		return out
	}
	syms := make([]symbol, 0, len(text))
	for i := 0; i < len(text); {
		_, n := utf8.DecodeRuneInString(text[i:])
		syms = append(syms, symbol{start: i, end: i + n, prev: len(syms) - 1, next: len(syms) + 1})
		i += n
	}
	syms[len(syms)-1].next = -1
	h := make(spmHeap, 0, len(syms))
	add := func(l, r int) {
		if l < 0 || r < 0 {
			return
		}
		s := text[syms[l].start:syms[r].end]
		id, ok := t.index[s]
		if !ok {
			return
		}
		h.push(spmBigram{score: t.scores[id], left: l, right: r, size: len(s), id: id})
	}
	for i := 1; i < len(syms); i++ {
		add(i-1, i)
	}
	for len(h) > 0 {
		b := h.pop()
		l, r := &syms[b.left], &syms[b.right]
		if l.start == l.end || r.start == r.end || l.next != b.right || (l.end-l.start)+(r.end-r.start) != b.size {
			continue
		}
		l.end = r.end
		r.start = r.end
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		add(l.prev, b.left)
		add(b.left, l.next)
	}
	for i := 0; i >= 0; i = syms[i].next {
		s := text[syms[i].start:syms[i].end]
		if id, ok := t.index[s]; ok {
			out = append(out, id)
			continue
		}
		for j := 0; j < len(s); j++ {
			if id := t.byteTokens[s[j]]; id != noToken {
				out = append(out, id)
			} else if t.unk != noToken {
				out = append(out, t.unk)
			}
		}
	}
	return out
}
