package main

import (
	"context"
	"errors"
	"io"
)

func cmdTx(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("tx: not implemented yet")
}
