package main

import (
	"context"
	"errors"
	"io"
)

func benchEngine(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("bench_engine: not implemented yet")
}
