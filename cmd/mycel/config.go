package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/mycel-network/mycel/internal/gateway"
	"github.com/mycel-network/mycel/internal/provider"
)

// configRoles maps a role to the function printing its effective configuration. Roles with
// a config file add themselves here (gateway, verifier, …).
var configRoles = map[string]func(home string) ([]byte, error){
	"provider": func(home string) ([]byte, error) {
		cfg, err := provider.LoadConfig(home)
		if err != nil {
			return nil, err
		}
		b, err := cfg.Encode()
		if err != nil {
			return nil, err
		}
		if verr := cfg.Validate(); verr != nil {
			b = append([]byte("# "+strings.ReplaceAll(verr.Error(), "\n", "\n# ")+"\n"), b...)
		}
		return b, nil
	},
	"gateway": func(home string) ([]byte, error) {
		cfg, err := gateway.LoadConfig(home)
		if err != nil {
			return nil, err
		}
		return cfg.Encode()
	},
}

// cmdConfig runs `mycel config dump --home DIR [--role provider]`.
func cmdConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "dump" {
		return errors.New("config: want subcommand dump: mycel config dump --home DIR [--role provider]")
	}
	fs := newFlags("config dump", stderr)
	home := fs.String("home", "", "home directory of the role (required)")
	var names []string
	for r := range configRoles {
		names = append(names, r)
	}
	sort.Strings(names)
	role := fs.String("role", "provider", "role whose configuration to print: "+strings.Join(names, "|"))
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		return err
	}
	if err := wantArgs("config dump", pos); err != nil {
		return err
	}
	if *home == "" {
		return errors.New("config dump: --home is required")
	}
	dump, ok := configRoles[*role]
	if !ok {
		return fmt.Errorf("config dump: unknown role %q (want %s)", *role, strings.Join(names, "|"))
	}
	b, err := dump(*home)
	if err != nil {
		return fmt.Errorf("config dump: %w", err)
	}
	_, err = stdout.Write(b)
	return err
}
