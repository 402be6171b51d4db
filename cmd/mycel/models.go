package main

import (
	"context"
	"errors"
	"io"
)

func cmdModels(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("models: not implemented yet")
}
