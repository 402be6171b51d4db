package main

import (
	"context"
	"errors"
	"io"
)

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("keys: not implemented yet")
}
