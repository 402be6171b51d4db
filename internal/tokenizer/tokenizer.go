package tokenizer

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/mycel-network/mycel/internal/gguf"
)

// TokenType is the tokenizer.ggml.token_type of a token.
type TokenType int32

// Token types, as numbered by llama.cpp.
const (
	TypeUndefined   TokenType = 0
	TypeNormal      TokenType = 1
	TypeUnknown     TokenType = 2
	TypeControl     TokenType = 3
	TypeUserDefined TokenType = 4
	TypeUnused      TokenType = 5
	TypeByte        TokenType = 6
)

// Model is the tokenizer algorithm, from tokenizer.ggml.model.
type Model string

// Supported models.
const (
	ModelGPT2  Model = "gpt2"  // byte-level BPE with merges
	ModelLlama Model = "llama" // SentencePiece BPE with scores and byte fallback
)

const (
	maxVocab     = 1 << 22 // sanity bound on vocabulary size
	cacheEntries = 1 << 15 // bound on the per-word BPE cache
	noToken      = int32(-1)
)

// Tokenizer encodes and decodes text for one vocabulary. It is safe for
// concurrent use.
type Tokenizer struct {
	model  Model
	pre    preTokenizer
	tokens []string
	types  []TokenType
	scores []float32
	index  map[string]int32

	merges       map[[2]int32]merge // gpt2: pair of token ids → rank and result
	ignoreMerges bool               // gpt2: a word that is a token is not merged (Llama 3)
	byteTokens   [256]int32         // llama: <0xXX> tokens, noToken if absent
	spacePrefix  bool               // llama: add a dummy space before text

	bos, eos, eot, unk, pad int32
	addBOS, addEOS          bool
	eog                     map[int32]bool
	specials                []int32 // control and user-defined tokens, longest text first

	mu    sync.Mutex
	cache map[string][]int32
}

type merge struct{ rank, result int32 }

// EncodeOptions control Encode.
type EncodeOptions struct {
	// AddSpecial adds BOS and EOS as the model's metadata asks
	// (tokenizer.ggml.add_bos_token, add_eos_token).
	AddSpecial bool
	// ParseSpecial recognises control and unknown tokens such as
	// <|im_start|> written in the text. User-defined tokens are always
	// recognised.
	ParseSpecial bool
}

// FromGGUF builds the tokenizer described by a GGUF file's tokenizer.ggml.*
// metadata, validating it.
func FromGGUF(f *gguf.File) (*Tokenizer, error) {
	t, err := fromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return t, nil
}

func fromGGUF(f *gguf.File) (*Tokenizer, error) {
	model, err := f.String("tokenizer.ggml.model")
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{model: Model(model), cache: map[string][]int32{}}
	if t.model != ModelGPT2 && t.model != ModelLlama {
		return nil, fmt.Errorf("unsupported tokenizer model %q (want gpt2 or llama)", model)
	}
	if t.tokens, err = f.Strings("tokenizer.ggml.tokens"); err != nil {
		return nil, err
	}
	n := len(t.tokens)
	if n == 0 || n > maxVocab {
		return nil, fmt.Errorf("vocabulary of %d tokens", n)
	}
	t.types = make([]TokenType, n)
	for i := range t.types {
		t.types[i] = TypeNormal
	}
	if _, ok := f.Get("tokenizer.ggml.token_type"); ok {
		types, err := f.Ints("tokenizer.ggml.token_type")
		if err != nil {
			return nil, err
		}
		if len(types) != n {
			return nil, fmt.Errorf("tokenizer.ggml.token_type has %d entries for %d tokens", len(types), n)
		}
		for i, v := range types {
			t.types[i] = TokenType(v)
		}
	}
	t.scores = make([]float32, n)
	if _, ok := f.Get("tokenizer.ggml.scores"); ok {
		scores, err := f.Floats("tokenizer.ggml.scores")
		if err != nil {
			return nil, err
		}
		if len(scores) != n {
			return nil, fmt.Errorf("tokenizer.ggml.scores has %d entries for %d tokens", len(scores), n)
		}
		t.scores = scores
	}
	t.index = make(map[string]int32, n)
	for i, s := range t.tokens {
		t.index[s] = int32(i)
	}

	pre := "default"
	if _, ok := f.Get("tokenizer.ggml.pre"); ok {
		if pre, err = f.String("tokenizer.ggml.pre"); err != nil {
			return nil, err
		}
	}
	switch t.model {
	case ModelGPT2:
		if t.pre, err = lookupPreTokenizer(pre); err != nil {
			return nil, fmt.Errorf("tokenizer.ggml.pre: %w", err)
		}
		switch pre {
		case "llama3", "llama-v3", "llama-bpe", "falcon3":
			t.ignoreMerges = true
			t.addBOS = true
		}
		if err := t.loadMerges(f); err != nil {
			return nil, err
		}
	case ModelLlama:
		t.addBOS = true
		t.spacePrefix = true
		for i := range t.byteTokens {
			t.byteTokens[i] = noToken
			if id, ok := t.index[fmt.Sprintf("<0x%02X>", i)]; ok {
				t.byteTokens[i] = id
			}
		}
		if err := optBool(f, "tokenizer.ggml.add_space_prefix", &t.spacePrefix); err != nil {
			return nil, err
		}
	}
	if err := optBool(f, "tokenizer.ggml.add_bos_token", &t.addBOS); err != nil {
		return nil, err
	}
	if err := optBool(f, "tokenizer.ggml.add_eos_token", &t.addEOS); err != nil {
		return nil, err
	}
	ids := []struct {
		key string
		dst *int32
	}{
		{"tokenizer.ggml.bos_token_id", &t.bos},
		{"tokenizer.ggml.eos_token_id", &t.eos},
		{"tokenizer.ggml.eot_token_id", &t.eot},
		{"tokenizer.ggml.unknown_token_id", &t.unk},
		{"tokenizer.ggml.padding_token_id", &t.pad},
	}
	for _, k := range ids {
		*k.dst = noToken
		if _, ok := f.Get(k.key); !ok {
			continue
		}
		v, err := f.Uint(k.key)
		if err != nil {
			return nil, err
		}
		if v >= uint64(n) {
			return nil, fmt.Errorf("%s: %d is outside the vocabulary of %d tokens", k.key, v, n)
		}
		*k.dst = int32(v)
	}
	if t.addBOS && t.bos == noToken {
		return nil, errors.New("tokenizer.ggml.add_bos_token is set but there is no bos_token_id")
	}
	if t.addEOS && t.eos == noToken {
		return nil, errors.New("tokenizer.ggml.add_eos_token is set but there is no eos_token_id")
	}
	if t.model == ModelLlama && t.unk == noToken {
		if id, ok := t.index["<unk>"]; ok {
			t.unk = id
		}
	}

	t.eog = map[int32]bool{}
	for _, id := range []int32{t.eos, t.eot} {
		if id != noToken {
			t.eog[id] = true
		}
	}
	for _, s := range []string{"<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end▁of▁sentence|>", "<｜end▁of▁sentence｜>", "<|endoftext|>", "<|end_of_text|>", "<|end|>", "<end_of_turn>", "<EOT>"} {
		if id, ok := t.index[s]; ok && (t.types[id] == TypeControl || t.types[id] == TypeUserDefined) {
			t.eog[id] = true
		}
	}
	for i, typ := range t.types {
		if (typ == TypeControl || typ == TypeUserDefined || typ == TypeUnknown) && t.tokens[i] != "" {
			t.specials = append(t.specials, int32(i))
		}
	}
	sort.SliceStable(t.specials, func(a, b int) bool {
		return len(t.tokens[t.specials[a]]) > len(t.tokens[t.specials[b]])
	})
	return t, nil
}

func optBool(f *gguf.File, key string, dst *bool) error {
	if _, ok := f.Get(key); !ok {
		return nil
	}
	v, err := f.Bool(key)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

func (t *Tokenizer) loadMerges(f *gguf.File) error {
	merges, err := f.Strings("tokenizer.ggml.merges")
	if err != nil {
		return err
	}
	t.merges = make(map[[2]int32]merge, len(merges))
	for rank, m := range merges {
		sp := strings.IndexByte(m[min(1, len(m)):], ' ') + min(1, len(m))
		if sp <= 0 || sp == len(m)-1 {
			return fmt.Errorf("tokenizer.ggml.merges[%d] %q: not two tokens separated by a space", rank, m)
		}
		left, lok := t.index[m[:sp]]
		right, rok := t.index[m[sp+1:]]
		result, resok := t.index[m[:sp]+m[sp+1:]]
		if !lok || !rok || !resok {
			// llama.cpp would produce a token that is not in the
			// vocabulary and then drop it; skipping the merge is the
			// closest well-defined behaviour.
			continue
		}
		key := [2]int32{left, right}
		if _, dup := t.merges[key]; !dup {
			t.merges[key] = merge{rank: int32(rank), result: result}
		}
	}
	return nil
}

// VocabSize returns the number of tokens.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// BOS returns the beginning-of-sequence token, or -1.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-sequence token, or -1.
func (t *Tokenizer) EOS() int32 { return t.eos }

// AddBOS reports whether Encode with AddSpecial prepends BOS.
func (t *Tokenizer) AddBOS() bool { return t.addBOS }

// Model returns the tokenizer model.
func (t *Tokenizer) Model() Model { return t.model }

// IsEOG reports whether id ends generation: EOS, EOT, or one of the
// end-of-turn control tokens (<|im_end|>, <|eot_id|>, <|end▁of▁sentence|>, …).
func (t *Tokenizer) IsEOG(id int32) bool { return t.eog[id] }

// IsControl reports whether id is a control token (such as BOS or
// <|im_start|>), which chat front-ends usually do not print.
func (t *Tokenizer) IsControl(id int32) bool {
	return id >= 0 && int(id) < len(t.types) && t.types[id] == TypeControl
}

// TokenText returns the vocabulary entry of id as stored (byte-level or
// SentencePiece spelling), or "" if id is out of range.
func (t *Tokenizer) TokenText(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// TokenID returns the id of a vocabulary entry.
func (t *Tokenizer) TokenID(text string) (int32, bool) {
	id, ok := t.index[text]
	return id, ok
}

// Encode returns the token ids of text.
func (t *Tokenizer) Encode(text string, opts EncodeOptions) ([]int32, error) {
	out := make([]int32, 0, len(text)/3+2)
	if opts.AddSpecial && t.addBOS {
		out = append(out, t.bos)
	}
	prevSpecial := true
	t.partition(text, opts.ParseSpecial, func(raw string, special int32) {
		if special != noToken {
			out = append(out, special)
			prevSpecial = true
			return
		}
		switch t.model {
		case ModelGPT2:
			t.pre.split(raw, func(word string) { out = t.bpeWord(word, out) })
		case ModelLlama:
			if t.spacePrefix && prevSpecial {
				raw = " " + raw
			}
			out = t.spm(raw, out)
		}
		prevSpecial = false
	})
	if opts.AddSpecial && t.addEOS {
		out = append(out, t.eos)
	}
	return out, nil
}

// partition splits text into raw fragments and special tokens, longest
// special token first, as llama.cpp's tokenizer_st_partition does.
func (t *Tokenizer) partition(text string, parseSpecial bool, emit func(raw string, special int32)) {
	type frag struct {
		raw string
		id  int32
	}
	frags := []frag{{text, noToken}}
	for _, id := range t.specials {
		if !parseSpecial && t.types[id] != TypeUserDefined {
			continue
		}
		tok := t.tokens[id]
		var next []frag
		changed := false
		for _, fr := range frags {
			if fr.id != noToken || !strings.Contains(fr.raw, tok) {
				next = append(next, fr)
				continue
			}
			changed = true
			rest := fr.raw
			for {
				i := strings.Index(rest, tok)
				if i < 0 {
					break
				}
				if i > 0 {
					next = append(next, frag{rest[:i], noToken})
				}
				next = append(next, frag{"", id})
				rest = rest[i+len(tok):]
			}
			if rest != "" {
				next = append(next, frag{rest, noToken})
			}
		}
		if changed {
			frags = next
		}
	}
	for _, fr := range frags {
		if fr.id != noToken || fr.raw != "" {
			emit(fr.raw, fr.id)
		}
	}
}

// Decode returns the text of ids. Control tokens are rendered as their text.
func (t *Tokenizer) Decode(ids []int32) (string, error) {
	var b strings.Builder
	// Encode adds a dummy space before each text fragment that starts the
	// input or follows a special token; Decode removes it again.
	dummy := t.model == ModelLlama && t.spacePrefix
	stripSpace := dummy
	for _, id := range ids {
		p, err := t.TokenBytes(id)
		if err != nil {
			return "", err
		}
		if t.isSpecial(id) {
			stripSpace = dummy
		} else if stripSpace {
			if len(p) > 0 && p[0] == ' ' {
				p = p[1:]
			}
			stripSpace = false
		}
		b.Write(p)
	}
	return b.String(), nil
}

// isSpecial reports whether id is matched as a whole in the input rather
// than produced from text: control, unknown and user-defined tokens.
func (t *Tokenizer) isSpecial(id int32) bool {
	switch t.types[id] {
	case TypeControl, TypeUnknown, TypeUserDefined:
		return true
	}
	return false
}

// TokenBytes returns the raw bytes a token stands for: byte-level decoded for
// gpt2 vocabularies, with ▁ as space and <0xXX> as a byte for llama ones.
// A token may hold part of a UTF-8 sequence. For llama vocabularies the
// dummy-prefix space that Decode strips is included.
func (t *Tokenizer) TokenBytes(id int32) ([]byte, error) {
	if id < 0 || int(id) >= len(t.tokens) {
		return nil, fmt.Errorf("tokenizer: token id %d outside the vocabulary of %d", id, len(t.tokens))
	}
	s := t.tokens[id]
	typ := t.types[id]
	if typ == TypeControl || typ == TypeUnknown {
		return []byte(s), nil
	}
	switch t.model {
	case ModelGPT2:
		if typ == TypeUserDefined && !isByteEncoded(s) {
			return []byte(s), nil
		}
		out := make([]byte, 0, len(s))
		for _, r := range s {
			if b, ok := UnicodeToByte(r); ok {
				out = append(out, b)
			} else {
				out = utf8.AppendRune(out, r)
			}
		}
		return out, nil
	default:
		if typ == TypeByte {
			var b byte
			if _, err := fmt.Sscanf(s, "<0x%02X>", &b); err == nil {
				return []byte{b}, nil
			}
		}
		return []byte(strings.ReplaceAll(s, "▁", " ")), nil
	}
}

// isByteEncoded reports whether every rune of s is in the byte-level table,
// i.e. s is spelled in GPT-2's byte encoding.
func isByteEncoded(s string) bool {
	for _, r := range s {
		if _, ok := UnicodeToByte(r); !ok {
			return false
		}
	}
	return true
}
