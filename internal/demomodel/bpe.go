package demomodel

import (
	"container/heap"
	"fmt"
	"slices"
	"strings"

	"github.com/mycel-network/mycel/internal/tokenizer"
)

// preTokenizer is the tokenizer.ggml.pre of every demo model.
const preTokenizer = "qwen2"

// vocab is a trained byte-level BPE vocabulary. Token i < 256 is byte i.
type vocab struct {
	tokens []string // in byte-to-unicode form
	merges []string // "left right", in rank order
	// tokBytes[i] is the raw byte string of token i.
	tokBytes []string
	// rank maps a pair of token ids to its merge rank and result.
	rank map[[2]int32]mergeResult
}

type mergeResult struct {
	rank int32
	id   int32
}

// wordCount is one distinct pre-tokenized piece and how often it occurs.
type wordCount struct {
	word  string
	count int64
}

// countWords pre-tokenizes text as Qwen2 does and returns the distinct
// pieces sorted by their bytes, so the result does not depend on map order.
func countWords(text string) ([]wordCount, error) {
	pieces, err := tokenizer.PreTokenize(preTokenizer, text)
	if err != nil {
		return nil, fmt.Errorf("count words: %w", err)
	}
	m := map[string]int64{}
	for _, p := range pieces {
		m[p]++
	}
	out := make([]wordCount, 0, len(m))
	for w, c := range m {
		out = append(out, wordCount{w, c})
	}
	slices.SortFunc(out, func(a, b wordCount) int { return strings.Compare(a.word, b.word) })
	return out, nil
}

// pairItem is a heap entry: a candidate merge with the count it had when
// pushed. Stale entries are skipped when popped.
type pairItem struct {
	pair  [2]int32
	count int64
}

type pairHeap []pairItem

func (h pairHeap) Len() int { return len(h) }
func (h pairHeap) Less(i, j int) bool {
	if h[i].count != h[j].count {
		return h[i].count > h[j].count
	}
	// Ties: the lexicographically smallest pair of ids, for determinism.
	if h[i].pair[0] != h[j].pair[0] {
		return h[i].pair[0] < h[j].pair[0]
	}
	return h[i].pair[1] < h[j].pair[1]
}
func (h pairHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pairHeap) Push(x any)   { *h = append(*h, x.(pairItem)) }
func (h *pairHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// trainBPE learns merges over the words until the vocabulary has size
// tokens (bytes included) or no pair occurs twice.
func trainBPE(words []wordCount, size int) *vocab {
	v := &vocab{rank: map[[2]int32]mergeResult{}}
	ids := map[string]int32{}
	for b := 0; b < 256; b++ {
		s := string(tokenizer.ByteToUnicode(byte(b)))
		v.tokens = append(v.tokens, s)
		v.tokBytes = append(v.tokBytes, string([]byte{byte(b)}))
		ids[s] = int32(b)
	}
	syms := make([][]int32, len(words))
	counts := map[[2]int32]int64{}
	where := map[[2]int32][]int32{}
	for wi, w := range words {
		s := make([]int32, len(w.word))
		for i := 0; i < len(w.word); i++ {
			s[i] = int32(w.word[i])
		}
		syms[wi] = s
		for i := 0; i+1 < len(s); i++ {
			p := [2]int32{s[i], s[i+1]}
			counts[p] += w.count
			where[p] = append(where[p], int32(wi))
		}
	}
	h := make(pairHeap, 0, len(counts))
	for p, c := range counts {
		h = append(h, pairItem{p, c})
	}
	heap.Init(&h) // heap order is fully determined by (count, pair)
	seen := make([]int32, len(words))
	for i := range seen {
		seen[i] = -1
	}
	for len(v.tokens) < size && h.Len() > 0 {
		it := heap.Pop(&h).(pairItem)
		if c := counts[it.pair]; c != it.count {
			if c > 0 {
				heap.Push(&h, pairItem{it.pair, c})
			}
			continue
		}
		if it.count < 2 {
			break
		}
		a, b := it.pair[0], it.pair[1]
		str := v.tokens[a] + v.tokens[b]
		id, ok := ids[str]
		if !ok {
			id = int32(len(v.tokens))
			ids[str] = id
			v.tokens = append(v.tokens, str)
			v.tokBytes = append(v.tokBytes, v.tokBytes[a]+v.tokBytes[b])
		}
		mr := int32(len(v.merges))
		v.merges = append(v.merges, v.tokens[a]+" "+v.tokens[b])
		v.rank[it.pair] = mergeResult{mr, id}
		touched := map[[2]int32]bool{}
		for _, wi := range where[it.pair] {
			if seen[wi] == mr {
				continue
			}
			seen[wi] = mr
			s := syms[wi]
			if !containsPair(s, a, b) {
				continue
			}
			c := words[wi].count
			for i := 0; i+1 < len(s); i++ {
				p := [2]int32{s[i], s[i+1]}
				counts[p] -= c
				touched[p] = true
			}
			out := s[:0]
			for i := 0; i < len(s); i++ {
				if i+1 < len(s) && s[i] == a && s[i+1] == b {
					out = append(out, id)
					i++
				} else {
					out = append(out, s[i])
				}
			}
			syms[wi] = out
			for i := 0; i+1 < len(out); i++ {
				p := [2]int32{out[i], out[i+1]}
				if counts[p] == 0 && !touched[p] {
					where[p] = where[p][:0]
				}
				counts[p] += c
				touched[p] = true
				where[p] = append(where[p], int32(wi))
			}
		}
		delete(counts, it.pair)
		delete(where, it.pair)
		// Push the changed pairs in a fixed order.
		tp := make([][2]int32, 0, len(touched))
		for p := range touched {
			tp = append(tp, p)
		}
		slices.SortFunc(tp, func(x, y [2]int32) int {
			if x[0] != y[0] {
				return int(x[0] - y[0])
			}
			return int(x[1] - y[1])
		})
		for _, p := range tp {
			if c := counts[p]; c > 0 && p != it.pair {
				heap.Push(&h, pairItem{p, c})
			}
		}
	}
	return v
}

func containsPair(s []int32, a, b int32) bool {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == a && s[i+1] == b {
			return true
		}
	}
	return false
}

// encodeWord splits one pre-tokenized piece into token ids by applying the
// merges lowest rank first (leftmost on ties), as llama.cpp does.
func (v *vocab) encodeWord(w string, dst []int32) []int32 {
	s := make([]int32, len(w))
	for i := 0; i < len(w); i++ {
		s[i] = int32(w[i])
	}
	for len(s) > 1 {
		best := int32(-1)
		bi := -1
		var bid int32
		for i := 0; i+1 < len(s); i++ {
			if m, ok := v.rank[[2]int32{s[i], s[i+1]}]; ok && (best < 0 || m.rank < best) {
				best, bi, bid = m.rank, i, m.id
			}
		}
		if bi < 0 {
			break
		}
		s[bi] = bid
		s = append(s[:bi+1], s[bi+2:]...)
	}
	return append(dst, s...)
}
