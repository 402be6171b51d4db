package main

import (
	"context"
	"errors"
	"io"
)

func cmdNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("node: not implemented yet")
}
