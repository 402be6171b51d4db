// Package demomodel deterministically generates the small GGUF models that
// Mycel's devnet and tests run on: llama-architecture weights that encode
// n-gram statistics of an embedded text corpus (Go's own documentation), with
// a byte-level BPE tokenizer trained on that corpus. The same inputs give the
// same bytes on every machine.
package demomodel
