package engine

import (
	"github.com/mycel-network/mycel/internal/gguf"
)

// vocabulary is what generation needs from a tokenizer: token bytes for
// decoding text and the end-of-generation set.
type vocabulary interface {
	TokenBytes(id int32) ([]byte, error)
	IsEOG(id int32) bool
	VocabSize() int
}

// loadVocabulary reads the tokenizer of f. TODO(engine): switch to
// tokenizer.FromGGUF once internal/tokenizer lands.
func loadVocabulary(f *gguf.File) (vocabulary, error) {
	return nil, nil
}
