package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/tx"
)

// queryKind is one `mycel query` object: its ledger path and argument.
type queryKind struct {
	summary string
	arg     string // "" (none), "ADDR", "ID" or "CHANNEL_ID"
}

var queryKinds = map[string]queryKind{
	"account":   {"an account's balance and nonce", "ADDR"},
	"models":    {"all registered models", ""},
	"model":     {"one model", "ID"},
	"providers": {"all providers", ""},
	"provider":  {"one provider", "ADDR"},
	"verifiers": {"all verifiers", ""},
	"verifier":  {"one verifier", "ADDR"},
	"channels":  {"all payment channels", ""},
	"channel":   {"one payment channel", "CHANNEL_ID"},
	"params":    {"the chain parameters", ""},
	"supply":    {"genesis, minted, slashed and burned supply", ""},
	"epoch":     {"the current epoch and reward pool", ""},
}

func queryUsage(w io.Writer) {
	names := make([]string, 0, len(queryKinds))
	for n := range queryKinds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: mycel query <object> [ARG] [--node URL] [--home DIR] [--output json]\n\nobjects:")
	for _, n := range names {
		k := queryKinds[n]
		fmt.Fprintf(w, "  %-10s %-11s %s\n", n, k.arg, k.summary)
	}
	queryExtUsage(w)
}

func cmdQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		queryUsage(stderr)
		return fmt.Errorf("query: name an object")
	}
	name, args := args[0], args[1:]
	kind, ok := queryKinds[name]
	if _, ext := queryExtKinds()[name]; !ok && ext {
		return cmdQueryExt(ctx, name, args, stdout, stderr)
	}
	if !ok {
		queryUsage(stderr)
		return fmt.Errorf("query: unknown object %q", name)
	}
	var cf chainFlags
	fs := newFlags("query "+name, stderr)
	cf.register(fs, devnet.DefaultDir(), true)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	path := name
	if kind.arg != "" {
		if err := wantArgs("query "+name, pos, kind.arg); err != nil {
			return err
		}
		arg := pos[0]
		switch kind.arg {
		case "ADDR":
			if arg, err = resolveAddress(cf.keysDir(), arg); err != nil {
				return fmt.Errorf("query %s: %w", name, err)
			}
		case "CHANNEL_ID":
			if _, err := strconv.ParseUint(arg, 10, 64); err != nil {
				return fmt.Errorf("query %s: channel id %q is not a number", name, arg)
			}
		}
		path += "/" + arg
	} else if err := wantArgs("query "+name, pos); err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	var raw json.RawMessage
	if name == "account" {
		acc, err := c.Account(ctx, path[len("account/"):])
		if err != nil {
			return fmt.Errorf("query %s: %w", name, err)
		}
		if cf.json() {
			return writeJSON(stdout, acc)
		}
		fmt.Fprintf(stdout, "address: %s\nbalance: %s (%dumyc)\nnonce:   %d\n", acc.Address, tx.FormatAmount(acc.Balance), acc.Balance, acc.Nonce)
		return nil
	}
	if err := c.Query(ctx, path, nil, &raw); err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	// Indent the raw answer: decoding into any would turn large amounts
	// into floats.
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("query %s: answer is not JSON: %w", name, err)
	}
	buf.WriteByte('\n')
	_, err = stdout.Write(buf.Bytes())
	return err
}
