package demomodel

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
)

// corpusGz is the training text: the Go specification, memory model and
// standard-library documentation of Go 1.26.8 (BSD licence, corpus/LICENSE-go),
// written by mkcorpus.
//
//go:embed corpus/corpus.txt.gz
var corpusGz []byte

// Corpus returns the embedded training text.
func Corpus() (string, error) {
	zr, err := gzip.NewReader(bytes.NewReader(corpusGz))
	if err != nil {
		return "", fmt.Errorf("corpus: %w", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return "", fmt.Errorf("corpus: %w", err)
	}
	return string(b), nil
}
