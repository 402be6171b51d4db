// Package tokenizer turns text into token ids and back for the vocabularies
// stored in GGUF files (tokenizer.ggml.*): byte-level BPE ("gpt2" model) with
// the pre-tokenizers llama.cpp names in tokenizer.ggml.pre, and
// SentencePiece-style BPE ("llama" model) with byte fallback.
//
// Pre-tokenizer regular expressions are implemented by hand-written matchers
// over Unicode categories (Go's regexp has no lookahead), following
// llama.cpp's llama-vocab.cpp. Results are checked against golden token ids
// produced by an independent implementation (see scripts/tokgolden).
package tokenizer
