package engine

import (
	"fmt"

	"github.com/mycel-network/mycel/internal/chat"
	"github.com/mycel-network/mycel/internal/gguf"
	"github.com/mycel-network/mycel/internal/tokenizer"
)

// vocabulary is what generation needs from a tokenizer: token bytes for
// decoding text and the end-of-generation set.
type vocabulary interface {
	TokenBytes(id int32) ([]byte, error)
	IsEOG(id int32) bool
	VocabSize() int
}

// loadTokenizer reads the tokenizer of f. A file without tokenizer metadata
// loads without one (token ids only: no text, no end-of-generation tokens).
func loadTokenizer(f *gguf.File) (*tokenizer.Tokenizer, error) {
	if _, ok := f.Get("tokenizer.ggml.model"); !ok {
		return nil, nil
	}
	t, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return t, nil
}

// Tokenizer returns the model's tokenizer, or nil if the file has none.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// ChatFormat returns the chat template family of the model, chosen from its
// tokenizer.chat_template (an error names an unknown template).
func (m *Model) ChatFormat() (chat.Format, error) { return m.chatFmt, m.chatErr }
