// Command mycel is the single binary of the Mycel network: node, provider,
// gateway, verifier, devnet and the operator tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return // --help printed the usage: not a failure
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mycel: %v\n", err)
		os.Exit(1)
	}
}

// command is one subcommand. run receives the arguments after its name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"devnet", "run the whole network on 127.0.0.1 in one process", cmdDevnet},
		{"demo", "tell the network's story on a fresh devnet, with figures from the ledger", cmdDemo},
		{"init", "initialise a node home directory", cmdInit},
		{"node", "run a CometBFT node with the Mycel ledger", cmdNode},
		{"testnet", "write configs for an N-validator network", cmdTestnet},
		{"keys", "manage keys: add|list|show|export", cmdKeys},
		{"tx", "sign and broadcast a transaction", cmdTx},
		{"query", "query the ledger", cmdQuery},
		{"run", "generate text with the built-in engine", cmdRun},
		{"tokenize", "print the token ids of a text", cmdTokenize},
		{"models", "demo models: gen", cmdModels},
		{"provider", "serve models and get paid: provider [init] --home DIR", cmdProvider},
		{"gateway", "the OpenAI-compatible front door: gateway [keys create|list|revoke] --home DIR", cmdGateway},
		{"verifier", "audit providers and vote on evidence: verifier --home DIR", cmdVerifier},
		{"config", "print a role's effective configuration: config dump --home DIR [--role provider]", cmdConfig},
		{"bench", "benchmarks: ledger|engine|provider|gateway|routing|verify", cmdBench},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mycel <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
}
