package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/mycel-network/mycel/internal/chat"
	"github.com/mycel-network/mycel/internal/engine"
	"github.com/mycel-network/mycel/internal/gguf"
	"github.com/mycel-network/mycel/internal/provider/backend"
	"github.com/mycel-network/mycel/internal/tokenizer"
)

// OpenBackends builds the backend of every configured model: builtin models are loaded into
// memory (their file hash computed), OpenAI-compatible ones get the tokenizer and hash of
// their optional gguf. close releases the loaded models.
func OpenBackends(cfg Config, logger *slog.Logger) (_ map[string]backend.Backend, closeAll func() error, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	out := map[string]backend.Backend{}
	var closers []func() error
	closeAll = func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			_ = closeAll()
		}
	}()
	for _, mc := range cfg.Models {
		switch mc.Backend {
		case BackendBuiltin:
			m, err := engine.Load(mc.GGUF, engine.LoadOptions{Logger: logger, ContextLength: mc.ContextLength})
			if err != nil {
				return nil, nil, fmt.Errorf("model %s: %w", mc.ID, err)
			}
			closers = append(closers, m.Close)
			sha, err := m.SHA256()
			if err != nil {
				return nil, nil, fmt.Errorf("model %s: %w", mc.ID, err)
			}
			e := engine.New(m, engine.Config{Threads: mc.Threads, KVBudgetBytes: mc.KVBudgetBytes, MaxBatch: mc.MaxConcurrent, Logger: logger})
			b, err := backend.NewBuiltin(e, sha)
			if err != nil {
				return nil, nil, fmt.Errorf("model %s: %w", mc.ID, err)
			}
			out[mc.ID] = b
		case BackendOpenAI:
			prof, _ := backend.LookupProfile(mc.Profile)
			oc := backend.OpenAIConfig{BaseURL: mc.BaseURL, Profile: prof, Model: mc.ModelName, APIKey: mc.APIKey, ContextLength: mc.ContextLength}
			if mc.GGUF != "" {
				tok, ctxLen, sha, err := tokenizerOf(mc.GGUF)
				if err != nil {
					return nil, nil, fmt.Errorf("model %s: %w", mc.ID, err)
				}
				oc.Tokenizer, oc.SHA256 = tok, sha
				// Known only from the file: Ollama continuations are rendered with it.
				if f, err := chatFormatOf(mc.GGUF); err == nil {
					oc.ChatFormat = f
				} else {
					logger.Warn("no chat template: continuations go to the engine as chat messages", "model", mc.ID, "err", err)
				}
				if oc.ContextLength == 0 {
					oc.ContextLength = ctxLen
				}
			}
			b, err := backend.NewOpenAI(oc)
			if err != nil {
				return nil, nil, fmt.Errorf("model %s: %w", mc.ID, err)
			}
			out[mc.ID] = b
		default:
			return nil, nil, fmt.Errorf("model %s: unknown backend %q", mc.ID, mc.Backend)
		}
	}
	return out, closeAll, nil
}

// tokenizerOf reads a GGUF file's tokenizer, context length and sha256 without loading weights.
func tokenizerOf(path string) (*tokenizer.Tokenizer, int, string, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return nil, 0, "", err
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, 0, "", fmt.Errorf("tokenizer of %s: %w", path, err)
	}
	ctxLen := 0
	if arch, err := f.String("general.architecture"); err == nil {
		if n, err := f.Uint(arch + ".context_length"); err == nil {
			ctxLen = int(n)
		}
	}
	sha, err := fileSHA256(path)
	return tok, ctxLen, sha, err
}

// chatFormatOf reads a GGUF file's chat template family.
func chatFormatOf(path string) (chat.Format, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return chat.FromGGUF(f)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
