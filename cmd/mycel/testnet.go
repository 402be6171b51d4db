package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/ledger"
)

func cmdTestnet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlags("testnet", stderr)
	n := fset.Int("validators", 4, "number of validators")
	out := fset.String("output", "./mytestnet", "directory to write node0…nodeN-1 and keys/ into")
	chainID := fset.String("chain-id", "mycel-testnet", "chain id")
	basePort := fset.Int("base-port", 26656, "node i listens on p2p BASE+10i and RPC BASE+10i+1 on 127.0.0.1")
	pos, err := parseInterspersed(fset, args)
	if err != nil {
		return err
	}
	if err := wantArgs("testnet", pos); err != nil {
		return err
	}
	if *n < 1 || *n > 100 {
		return fmt.Errorf("testnet: --validators %d: want 1..100", *n)
	}
	if *basePort < 1024 || *basePort+10**n > 65535 {
		return fmt.Errorf("testnet: --base-port %d: ports out of range", *basePort)
	}
	if _, err := os.Stat(filepath.Join(*out, "node0")); err == nil {
		return fmt.Errorf("testnet: %s already holds a testnet", *out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("testnet: %w", err)
	}
	gen := ledger.Genesis{Params: ledger.DefaultParams()}
	keysDir := filepath.Join(*out, "keys")
	for _, name := range devnet.DemoAccounts() {
		k, err := keys.AddFromSeed(keysDir, name, devnet.DemoSeed(name))
		if err != nil {
			return fmt.Errorf("testnet: %w", err)
		}
		gen.Accounts = append(gen.Accounts, ledger.GenesisAccount{Address: k.Address, Balance: devnet.DemoBalance})
	}
	homes := make([]string, *n)
	ports := make([][2]int, *n)
	for i := range homes {
		homes[i] = filepath.Join(*out, fmt.Sprintf("node%d", i))
		ports[i] = [2]int{*basePort + 10*i, *basePort + 10*i + 1}
	}
	if _, err := devnet.InitNetwork(devnet.NetworkConfig{
		Homes: homes, ChainID: *chainID, Genesis: gen, Ports: ports, Fast: true,
	}); err != nil {
		return fmt.Errorf("testnet: %w", err)
	}
	fmt.Fprintf(stdout, "wrote a %d-validator testnet (chain %s) to %s\n", *n, *chainID, *out)
	for i, h := range homes {
		fmt.Fprintf(stdout, "  mycel node --home %s    # p2p :%d, rpc http://127.0.0.1:%d\n", h, ports[i][0], ports[i][1])
	}
	fmt.Fprintf(stdout, "demo accounts (public seeds, test only) are funded; their keys are in %s\n", keysDir)
	return nil
}
