package main

import (
	"context"
	"fmt"
	"io"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	benches := map[string]func(context.Context, []string, io.Writer, io.Writer) error{
		"ledger":   benchLedger,
		"engine":   benchEngine,
		"verify":   benchVerify,
		"gateway":  benchGateway,
		"routing":  benchRouting,
		"provider": benchProvider,
	}
	if len(args) == 0 {
		return fmt.Errorf("bench: name a benchmark: ledger|engine|verify|gateway|routing|provider")
	}
	b, ok := benches[args[0]]
	if !ok {
		return fmt.Errorf("bench: unknown benchmark %q", args[0])
	}
	return b(ctx, args[1:], stdout, stderr)
}
