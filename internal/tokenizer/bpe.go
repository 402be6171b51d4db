package tokenizer

import "unicode/utf8"

// symbol is one node of the doubly linked list BPE merges over.
type symbol struct {
	id         int32 // token id, noToken for a character missing from the vocabulary
	start, end int   // byte range in the encoded word
	prev, next int
}

// bigram is a candidate merge of symbols left and right (left.next == right
// when it was queued).
type bigram struct {
	rank        int32
	left, right int
	lid, rid    int32 // ids at queue time, to discard stale entries
	result      int32
}

// bigramHeap is a min-heap by (rank, left), the order llama.cpp uses.
type bigramHeap []bigram

func (h bigramHeap) less(i, j int) bool {
	return h[i].rank < h[j].rank || (h[i].rank == h[j].rank && h[i].left < h[j].left)
}

func (h *bigramHeap) push(b bigram) {
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

func (h *bigramHeap) pop() bigram {
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

// bpeWord appends the tokens of one pre-tokenized word (raw bytes).
func (t *Tokenizer) bpeWord(word string, out []int32) []int32 {
	t.mu.Lock()
	cached, ok := t.cache[word]
	t.mu.Unlock()
	if ok {
		return append(out, cached...)
	}
	enc := EncodeBytes(word)
	var ids []int32
	if id, ok := t.index[enc]; ok && (t.ignoreMerges || utf8.RuneCountInString(enc) == 1) {
		ids = []int32{id}
	} else {
		ids = t.bpe(enc)
	}
	if len(word) <= 256 {
		t.mu.Lock()
		if len(t.cache) >= cacheEntries {
			clear(t.cache)
		}
		t.cache[word] = ids
		t.mu.Unlock()
	}
	return append(out, ids...)
}

// bpe merges the characters of a byte-level encoded word by merge rank.
func (t *Tokenizer) bpe(enc string) []int32 {
	syms := make([]symbol, 0, len(enc))
	for i, r := range enc {
		n := utf8.RuneLen(r)
		id, ok := t.index[enc[i:i+n]]
		if !ok {
			id = noToken
		}
		syms = append(syms, symbol{id: id, start: i, end: i + n, prev: len(syms) - 1, next: len(syms) + 1})
	}
	syms[len(syms)-1].next = -1
	h := make(bigramHeap, 0, len(syms))
	add := func(l, r int) {
		if l < 0 || r < 0 || syms[l].id == noToken || syms[r].id == noToken {
			return
		}
		m, ok := t.merges[[2]int32{syms[l].id, syms[r].id}]
		if !ok {
			return
		}
		h.push(bigram{rank: m.rank, left: l, right: r, lid: syms[l].id, rid: syms[r].id, result: m.result})
	}
	for i := 1; i < len(syms); i++ {
		add(i-1, i)
	}
	for len(h) > 0 {
		b := h.pop()
		l, r := &syms[b.left], &syms[b.right]
		if l.id != b.lid || r.id != b.rid || l.next != b.right || l.start == l.end || r.start == r.end {
			continue // stale
		}
		l.id = b.result
		l.end = r.end
		r.start = r.end // dead
		l.next = r.next
		if r.next >= 0 {
			syms[r.next].prev = b.left
		}
		add(l.prev, b.left)
		add(b.left, l.next)
	}
	ids := make([]int32, 0, 4)
	for i := 0; i >= 0; i = syms[i].next {
		s := syms[i]
		if s.id != noToken {
			ids = append(ids, s.id)
			continue
		}
		// A character missing from the vocabulary: fall back to its bytes'
		// tokens where they exist, as llama.cpp does.
		for _, b := range []byte(enc[s.start:s.end]) {
			if id, ok := t.index[string([]byte{b})]; ok {
				ids = append(ids, id)
			}
		}
	}
	return ids
}
