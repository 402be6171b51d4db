package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/keys"
)

// keyJSON is how keys print with --output json (never the private key,
// except for export).
type keyJSON struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	PubKey  string `json:"pub_key"`
	Seed    string `json:"seed,omitempty"`
}

func toKeyJSON(k keys.Key) keyJSON {
	return keyJSON{Name: k.Name, Address: k.Address, PubKey: hex.EncodeToString(k.PubKey())}
}

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("keys: name a subcommand: add|list|show|export")
	}
	sub, args := args[0], args[1:]
	var cf chainFlags
	fs := newFlags("keys "+sub, stderr)
	cf.register(fs, devnet.DefaultDir(), false)
	recoverSeed := fs.String("recover", "", "add: recreate the key from this hex seed (from keys export)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return fmt.Errorf("keys %s: %w", sub, err)
	}
	dir := cf.keysDir()
	switch sub {
	case "add":
		if err := wantArgs("keys add", pos, "NAME"); err != nil {
			return err
		}
		var k keys.Key
		if *recoverSeed != "" {
			seed, herr := hex.DecodeString(*recoverSeed)
			if herr != nil {
				return fmt.Errorf("keys add: --recover: not hex: %w", herr)
			}
			k, err = keys.AddFromSeed(dir, pos[0], seed)
		} else {
			k, err = keys.Add(dir, pos[0])
		}
		if err != nil {
			return fmt.Errorf("keys add: %w", err)
		}
		if cf.json() {
			return writeJSON(stdout, toKeyJSON(k))
		}
		fmt.Fprintf(stdout, "added key %s: %s\n(saved in %s)\n", k.Name, k.Address, dir)
		return nil
	case "list":
		if err := wantArgs("keys list", pos); err != nil {
			return err
		}
		ks, err := keys.List(dir)
		if err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		if cf.json() {
			out := make([]keyJSON, 0, len(ks))
			for _, k := range ks {
				out = append(out, toKeyJSON(k))
			}
			return writeJSON(stdout, out)
		}
		if len(ks) == 0 {
			fmt.Fprintf(stdout, "no keys in %s\n", dir)
		}
		for _, k := range ks {
			fmt.Fprintf(stdout, "%-12s %s\n", k.Name, k.Address)
		}
		return nil
	case "show", "export":
		if err := wantArgs("keys "+sub, pos, "NAME"); err != nil {
			return err
		}
		k, err := keys.Load(dir, pos[0])
		if err != nil {
			return fmt.Errorf("keys %s: %w", sub, err)
		}
		out := toKeyJSON(k)
		if sub == "export" {
			out.Seed = keys.Export(k)
		}
		if cf.json() {
			return writeJSON(stdout, out)
		}
		if sub == "export" {
			fmt.Fprintf(stdout, "%s\n", out.Seed)
			fmt.Fprintf(stderr, "this hex seed is the private key of %s: keep it secret; recreate with `mycel keys add %s --recover SEED`\n", k.Address, k.Name)
			return nil
		}
		fmt.Fprintf(stdout, "name:    %s\naddress: %s\npub_key: %s\n", out.Name, out.Address, out.PubKey)
		return nil
	}
	return fmt.Errorf("keys: unknown subcommand %q (want add|list|show|export)", sub)
}
