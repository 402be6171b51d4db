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
)

// queryExtKind is a `mycel query` object of the verification ledger; its argument is
// optional when optional is set.
type queryExtKind struct {
	summary  string
	arg      string // "", "ADDR", "ID" or "EPOCH"
	optional bool
}

func queryExtKinds() map[string]queryExtKind {
	return map[string]queryExtKind{
		"anchors":     {"receipt roots an account anchored, by epoch", "ADDR", false},
		"evidence":    {"all evidence, or one by id", "ID", true},
		"reputation":  {"a provider's clean epochs, audits, evidence and audit probability", "ADDR", false},
		"weights":     {"revealed weight vectors awaiting consensus", "", false},
		"bonds":       {"verifiers' Yuma bonds on providers", "", false},
		"rewards":     {"Yuma consensus result and payouts for an epoch's weights", "EPOCH", false},
		"capacity":    {"a provider's proven capacity (tokens/s ×1000)", "ADDR", false},
		"audit-seeds": {"committed and revealed audit seeds", "", false},
		"slashes":     {"all slashes", "", false},
	}
}

func queryExtUsage(w io.Writer) {
	kinds := queryExtKinds()
	names := make([]string, 0, len(kinds))
	for n := range kinds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		k := kinds[n]
		arg := k.arg
		if k.optional {
			arg = "[" + arg + "]"
		}
		fmt.Fprintf(w, "  %-10s %-11s %s\n", n, arg, k.summary)
	}
}

// queryExtPath returns the ledger path of a verification query, resolving key names.
func queryExtPath(name string, kind queryExtKind, pos []string, keysDir string) (string, error) {
	if kind.arg == "" || kind.optional && len(pos) == 0 {
		if err := wantArgs("query "+name, pos); err != nil {
			return "", err
		}
		return name, nil
	}
	if err := wantArgs("query "+name, pos, kind.arg); err != nil {
		return "", err
	}
	arg := pos[0]
	switch kind.arg {
	case "ADDR":
		a, err := resolveAddress(keysDir, arg)
		if err != nil {
			return "", fmt.Errorf("query %s: %w", name, err)
		}
		arg = a
	case "ID", "EPOCH":
		if _, err := strconv.ParseUint(arg, 10, 64); err != nil {
			return "", fmt.Errorf("query %s: %s %q is not a number", name, kind.arg, arg)
		}
	}
	return name + "/" + arg, nil
}

// cmdQueryExt answers `mycel query <object>` for the verification objects.
func cmdQueryExt(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	kind, ok := queryExtKinds()[name]
	if !ok {
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
	path, err := queryExtPath(name, kind, pos, cf.keysDir())
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	var raw json.RawMessage
	if err := c.Query(ctx, path, nil, &raw); err != nil {
		return fmt.Errorf("query %s: %w", name, err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return fmt.Errorf("query %s: answer is not JSON: %w", name, err)
	}
	buf.WriteByte('\n')
	_, err = stdout.Write(buf.Bytes())
	return err
}
