package main

import (
	"context"
	"errors"
	"io"
)

func cmdTokenize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("tokenize: not implemented yet")
}
