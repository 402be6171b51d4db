package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/keys"
)

// chainFlags are the flags shared by the chain commands.
type chainFlags struct {
	home   string
	node   string
	output string
}

// newFlags returns a flag set that reports errors instead of exiting and
// prints its usage to stderr.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func (c *chainFlags) register(fs *flag.FlagSet, defaultHome string, withNode bool) {
	fs.StringVar(&c.home, "home", defaultHome, "home directory (keys in HOME/keys)")
	if withNode {
		fs.StringVar(&c.node, "node", "", "CometBFT RPC address (default: the devnet's in HOME/devnet.json, else "+chainclient.DefaultNode+")")
	}
	fs.StringVar(&c.output, "output", "text", "output format: text|json")
}

func (c *chainFlags) validate() error {
	if c.output != "text" && c.output != "json" {
		return fmt.Errorf("--output %q: want text or json", c.output)
	}
	return nil
}

func (c *chainFlags) json() bool { return c.output == "json" }

func (c *chainFlags) keysDir() string { return filepath.Join(c.home, "keys") }

// rpcAddr is --node, else the RPC of a devnet whose devnet.json is in
// --home, else the default devnet address.
func (c *chainFlags) rpcAddr() string {
	if c.node != "" {
		return c.node
	}
	if in, err := devnet.ReadInfo(c.home); err == nil && in.RPC != "" {
		return in.RPC
	}
	return chainclient.DefaultNode
}

func (c *chainFlags) client() (*chainclient.Client, error) {
	return chainclient.Dial(c.rpcAddr())
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments ("keys add NAME --home DIR") and returns the
// positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// flag stops at "--": everything after it is positional.
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// wantArgs checks the number of positional arguments.
func wantArgs(cmd string, pos []string, names ...string) error {
	if len(pos) != len(names) {
		if len(names) == 0 {
			return fmt.Errorf("%s: unexpected argument %q", cmd, pos[0])
		}
		return fmt.Errorf("%s: want %d argument(s): %s; got %d", cmd, len(names), strings.Join(names, " "), len(pos))
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// resolveAddress accepts an address or the name of a key in the keys dir.
func resolveAddress(keysDir, s string) (string, error) {
	if address.Validate(s) == nil {
		return s, nil
	}
	if keys.ValidateName(s) == nil {
		k, err := keys.Load(keysDir, s)
		if err == nil {
			return k.Address, nil
		}
		if !errors.Is(err, keys.ErrNotFound) {
			return "", err
		}
	}
	return "", fmt.Errorf("%q is neither an address (myc1…) nor a key in %s", s, keysDir)
}

// defaultNodeHome is the default home of `mycel init` and `mycel node`.
func defaultNodeHome() string {
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".mycel")
	}
	return ".mycel"
}
