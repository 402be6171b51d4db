package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/node"
	"github.com/mycel-network/mycel/internal/tx"
)

func cmdInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlags("init", stderr)
	home := fset.String("home", defaultNodeHome(), "node home directory")
	chainID := fset.String("chain-id", "mycel-local", "chain id")
	moniker := fset.String("moniker", "mycel", "node name")
	var funds listFlag
	fset.Var(&funds, "fund", "fund a key at genesis: NAME=AMOUNT (e.g. alice=1000myc); the key is created in HOME/keys if missing; repeatable")
	output := fset.String("output", "text", "output format: text|json")
	fast := fset.Bool("fast", false, "short consensus timeouts (~100 ms blocks), for a local node")
	rpcLaddr := fset.String("rpc-laddr", "", "RPC listen address (default tcp://127.0.0.1:26657)")
	p2pLaddr := fset.String("p2p-laddr", "", "p2p listen address (default tcp://0.0.0.0:26656)")
	pos, err := parseInterspersed(fset, args)
	if err != nil {
		return err
	}
	if err := wantArgs("init", pos); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("init: --output %q: want text or json", *output)
	}
	cfg := node.DefaultConfig(*home)
	cfg.Moniker = *moniker
	if *fast {
		node.Fast(cfg, true)
	}
	if *rpcLaddr != "" {
		cfg.RPC.ListenAddress = *rpcLaddr
	}
	if *p2pLaddr != "" {
		cfg.P2P.ListenAddress = *p2pLaddr
	}
	if _, err := os.Stat(cfg.GenesisFile()); err == nil {
		return fmt.Errorf("init: %s already exists: %s is initialised", cfg.GenesisFile(), *home)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("init: %w", err)
	}
	gen := ledger.Genesis{Params: ledger.DefaultParams()}
	type funded struct {
		Name    string `json:"name"`
		Address string `json:"address"`
		Balance uint64 `json:"balance"`
	}
	var accounts []funded
	for _, f := range funds {
		name, amt, ok := strings.Cut(f, "=")
		if !ok {
			return fmt.Errorf("init: --fund %q: want NAME=AMOUNT", f)
		}
		v, err := tx.ParseAmount(amt)
		if err != nil {
			return fmt.Errorf("init: --fund %q: %w", f, err)
		}
		k, err := keys.Load(*home+"/keys", name)
		if errors.Is(err, keys.ErrNotFound) {
			k, err = keys.Add(*home+"/keys", name)
		}
		if err != nil {
			return fmt.Errorf("init: --fund %q: %w", f, err)
		}
		gen.Accounts = append(gen.Accounts, ledger.GenesisAccount{Address: k.Address, Balance: v})
		accounts = append(accounts, funded{name, k.Address, v})
	}
	if err := gen.Validate(); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	appState, err := json.Marshal(gen)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	pub, id, err := node.InitFiles(cfg)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	doc, err := node.Genesis(*chainID, time.Now(), []node.Validator{{Name: *moniker, PubKey: pub}}, appState)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if err := node.WriteGenesis(cfg, doc); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if *output == "json" {
		return writeJSON(stdout, map[string]any{
			"home": *home, "chain_id": *chainID, "node_id": id, "validator": pub.Address().String(), "accounts": accounts,
		})
	}
	fmt.Fprintf(stdout, "initialised %s: chain %s, node %s, one validator\n", *home, *chainID, id)
	for _, a := range accounts {
		fmt.Fprintf(stdout, "  funded %-10s %s with %s\n", a.Name, a.Address, tx.FormatAmount(a.Balance))
	}
	fmt.Fprintf(stdout, "start it with: mycel node --home %s\n", *home)
	return nil
}
