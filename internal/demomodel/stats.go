package demomodel

import (
	"fmt"
	"strings"

	"github.com/mycel-network/mycel/internal/tokenizer"
)

// Special tokens, appended after the trained tokens in Qwen's order.
const (
	tokEndOfText = "<|endoftext|>"
	tokIMStart   = "<|im_start|>"
	tokIMEnd     = "<|im_end|>"
)

// defaultSystem is the system prompt Qwen2's chat template inserts when a
// conversation has none.
const defaultSystem = "You are a helpful assistant."

// bpeTokenizer is the trained vocabulary plus the ids of the special tokens.
type bpeTokenizer struct {
	*vocab
	eot, imStart, imEnd int32
	n                   int // total vocabulary size
	cache               map[string][]int32
}

func newTokenizer(v *vocab) *bpeTokenizer {
	n := int32(len(v.tokens))
	return &bpeTokenizer{vocab: v, eot: n, imStart: n + 1, imEnd: n + 2, n: int(n) + 3, cache: map[string][]int32{}}
}

// encode tokenizes ordinary text (no special tokens).
func (t *bpeTokenizer) encode(text string, dst []int32) ([]int32, error) {
	pieces, err := tokenizer.PreTokenize(preTokenizer, text)
	if err != nil {
		return nil, err
	}
	for _, p := range pieces {
		ids, ok := t.cache[p]
		if !ok {
			ids = t.encodeWord(p, nil)
			t.cache[p] = ids
		}
		dst = append(dst, ids...)
	}
	return dst, nil
}

// chatStream turns the corpus into the token stream the statistics are
// taken from: groups of paragraphs become ChatML conversations (the first
// line as the user's turn, the paragraphs as the assistant's), so the models
// also learn the chat format and when to end a turn.
func (t *bpeTokenizer) chatStream(corpus string, parasPerTurn int) ([]int32, error) {
	paras := strings.Split(corpus, "\n\n")
	var out []int32
	var err error
	turn := func(role, content string) {
		if err != nil {
			return
		}
		out = append(out, t.imStart)
		if out, err = t.encode(role+"\n"+content, out); err != nil {
			return
		}
		// The "\n" the template writes after <|im_end|> is left out: a
		// bigram model would learn "\n" -> <|im_start|> from it and start
		// new turns in the middle of answers.
		out = append(out, t.imEnd)
	}
	for i := 0; i < len(paras); i += parasPerTurn {
		j := min(i+parasPerTurn, len(paras))
		body := strings.Join(paras[i:j], "\n\n")
		first, _, _ := strings.Cut(body, "\n")
		if i%(8*parasPerTurn) == 0 {
			// Only some conversations carry the default system turn, so
			// "\n" -> "You are a helpful assistant" stays a weak bigram.
			turn("system", defaultSystem)
		}
		turn("user", first)
		turn("assistant", body)
	}
	if err != nil {
		return nil, fmt.Errorf("tokenize corpus: %w", err)
	}
	return append(out, t.eot), nil
}

// stats are the corpus statistics every model is built from.
type stats struct {
	tok       *bpeTokenizer
	vocabSize int
	stream    []int32
	unigram   []float64 // smoothed probabilities, sum 1
	rowTotal  []float64 // occurrences of each token as the left of a pair
	bigram    *csr      // pair counts
	skip      *csr      // counts of (token, token two positions later)
}

// vocabTarget is the vocabulary size of every demo model, special tokens
// included; a multiple of 256.
const vocabTarget = 4096

func newStats(corpus string) (*stats, error) {
	words, err := countWords(corpus)
	if err != nil {
		return nil, err
	}
	v := trainBPE(words, vocabTarget-3)
	if len(v.tokens) != vocabTarget-3 {
		return nil, fmt.Errorf("bpe training stopped at %d tokens", len(v.tokens))
	}
	t := newTokenizer(v)
	stream, err := t.chatStream(corpus, 3)
	if err != nil {
		return nil, err
	}
	st := &stats{tok: t, vocabSize: t.n, stream: stream}
	st.bigram = pairCounts(t.n, func(emit func(a, b int32)) {
		for i := 0; i+1 < len(st.stream); i++ {
			emit(st.stream[i], st.stream[i+1])
		}
	})
	st.skip = pairCounts(t.n, func(emit func(a, b int32)) {
		for i := 0; i+2 < len(st.stream); i++ {
			emit(st.stream[i], st.stream[i+2])
		}
	})
	st.unigram = make([]float64, t.n)
	for _, x := range st.stream {
		st.unigram[x]++
	}
	den := float64(len(st.stream)) + 0.5*float64(t.n)
	for i := range st.unigram {
		st.unigram[i] = (st.unigram[i] + 0.5) / den
	}
	st.rowTotal = make([]float64, t.n)
	for r := 0; r < t.n; r++ {
		for i := st.bigram.row[r]; i < st.bigram.row[r+1]; i++ {
			st.rowTotal[r] += st.bigram.val[i]
		}
	}
	return st, nil
}
