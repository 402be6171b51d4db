package main

import (
	"context"
	"errors"
	"io"
)

func cmdTestnet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("testnet: not implemented yet")
}
