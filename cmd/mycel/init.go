package main

import (
	"context"
	"errors"
	"io"
)

func cmdInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("init: not implemented yet")
}
