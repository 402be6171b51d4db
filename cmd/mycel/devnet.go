package main

import (
	"context"
	"errors"
	"io"
)

func cmdDevnet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("devnet: not implemented yet")
}
