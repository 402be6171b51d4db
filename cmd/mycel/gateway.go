package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"text/tabwriter"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/explorer"
	"github.com/mycel-network/mycel/internal/gateway"
	"github.com/mycel-network/mycel/internal/gateway/apikey"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/tx"
)

// gatewayPaths are the gateway's files under --home.
func gatewayKeysPath(home string) string     { return filepath.Join(home, "gateway", "apikeys.jsonl") }
func gatewayReceiptsPath(home string) string { return filepath.Join(home, "gateway", "receipts.jsonl") }

// cmdGateway runs `mycel gateway [flags]` and `mycel gateway keys create|list|revoke`.
func cmdGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "keys" {
		return cmdGatewayKeys(args[1:], stdout, stderr)
	}
	var cf chainFlags
	fs := newFlags("gateway", stderr)
	cf.register(fs, devnet.DefaultDir(), true)
	def := gateway.DefaultConfig()
	listen := fs.String("listen", def.Listen, "address of the OpenAI-compatible API (overrides HOME/gateway.toml)")
	keyName := fs.String("key", "gateway", "name of the consumer key in HOME/keys that pays providers")
	deposit := amount(fs, "deposit", "deposit of each payment channel and of each top-up")
	policy := fs.String("policy", def.Policy, "default routing policy: balanced|cheapest|fastest")
	noHedge := fs.Bool("no-hedge", false, "never hedge a late first token on a second provider")
	idle := fs.Duration("idle-close", def.IdleClose, "close payment channels unused this long")
	open := fs.Bool("no-auth", false, "serve without API keys (a private gateway)")
	logLevel := fs.String("log-level", "info", "log level: debug|info|warn|error")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("gateway", pos); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	key, err := keys.Load(cf.keysDir(), *keyName)
	if err != nil {
		return fmt.Errorf("gateway: consumer key: %w", err)
	}
	client, err := cf.client()
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	// HOME/gateway.toml, then the flags given explicitly.
	cfg, err := gateway.LoadConfig(cf.home)
	if err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			cfg.Listen = *listen
		case "deposit":
			cfg.DepositUmyc = deposit.v
		case "policy":
			cfg.Policy = *policy
		case "no-hedge":
			cfg.NoHedge = *noHedge
		case "idle-close":
			cfg.IdleClose = *idle
		}
	})
	if err := cfg.Validate(); err != nil {
		return err
	}
	var store *apikey.Store
	if !*open {
		store, err = apikey.Open(gatewayKeysPath(cf.home))
		if err != nil {
			return fmt.Errorf("gateway: %w", err)
		}
		defer store.Close()
	}
	receipts, err := gateway.OpenReceiptLog(gatewayReceiptsPath(cf.home))
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	defer receipts.Close()
	chain := gateway.LedgerChain{Client: client, Key: key}
	gw, err := gateway.New(cfg, gateway.Deps{
		Chain: chain, ConsumerKey: key.PrivKey, ConsumerAddress: key.Address,
		Keys: store, Receipts: receipts, Anchorer: chain,
		Logger: logger, Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		return err
	}
	rpc, err := rpchttp.New(cf.rpcAddr(), "/websocket")
	if err != nil {
		return fmt.Errorf("gateway: explorer: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	fmt.Fprintf(stdout, "gateway: OpenAI-compatible API on http://%s/v1 (consumer %s)\n", cfg.Listen, key.Address)
	fmt.Fprintf(stdout, "gateway: explorer on http://%s%s/\n", cfg.Listen, explorer.Prefix)
	if store != nil {
		fmt.Fprintf(stdout, "gateway: API keys in %s; create one with `mycel gateway keys create --name NAME --budget 10myc`\n", gatewayKeysPath(cf.home))
	}
	return gw.ServeHandler(ctx, ln, gatewayMux(gw, rpc, logger))
}

// gatewayMux serves the gateway's API with the explorer (fed the gateway's traffic) at
// /explorer and /explorer/.
func gatewayMux(gw *gateway.Gateway, rpc explorer.ChainRPC, logger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	ex := explorer.Handler(explorer.Deps{Chain: rpc, Traffic: gw, Logger: logger.With("part", "explorer")})
	mux.Handle(explorer.Prefix, ex)
	mux.Handle(explorer.Prefix+"/", ex)
	mux.Handle("/", gw.Handler())
	return mux
}

func cmdGatewayKeys(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("gateway keys: name a subcommand: create|list|revoke")
	}
	sub, args := args[0], args[1:]
	var cf chainFlags
	fs := newFlags("gateway keys "+sub, stderr)
	cf.register(fs, devnet.DefaultDir(), false)
	name := fs.String("name", "", "create: name of the key")
	budget := amount(fs, "budget", "create: most the key may spend (0 = unlimited)")
	rpm := fs.Int("rpm", 0, "create: requests per minute (0 = unlimited)")
	tpm := fs.Int("tpm", 0, "create: tokens per minute (0 = unlimited)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return fmt.Errorf("gateway keys %s: %w", sub, err)
	}
	store, err := apikey.Open(gatewayKeysPath(cf.home))
	if err != nil {
		return fmt.Errorf("gateway keys: %w", err)
	}
	defer store.Close()
	switch sub {
	case "create":
		if err := wantArgs("gateway keys create", pos); err != nil {
			return err
		}
		if *name == "" {
			return errors.New("gateway keys create: --name is required")
		}
		secret, k, err := store.Create(*name, budget.v, *rpm, *tpm, time.Now())
		if err != nil {
			return fmt.Errorf("gateway keys create: %w", err)
		}
		if cf.json() {
			return writeJSON(stdout, struct {
				apikey.Key
				Secret string `json:"secret"`
			}{k, secret})
		}
		fmt.Fprintf(stdout, "created API key %s (%s)\nsecret (shown once): %s\n", k.ID, k.Name, secret)
		return nil
	case "list":
		if err := wantArgs("gateway keys list", pos); err != nil {
			return err
		}
		ks, err := store.List()
		if err != nil {
			return fmt.Errorf("gateway keys list: %w", err)
		}
		if cf.json() {
			return writeJSON(stdout, ks)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tSPENT\tBUDGET\tRPM\tTPM\tSTATUS")
		for _, k := range ks {
			b, st := "unlimited", "active"
			if k.BudgetUmyc > 0 {
				b = tx.FormatAmount(k.BudgetUmyc)
			}
			if k.Revoked {
				st = "revoked"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", k.ID, k.Name, tx.FormatAmount(k.SpentUmyc), b, k.RPM, k.TPM, st)
		}
		return tw.Flush()
	case "revoke":
		if err := wantArgs("gateway keys revoke", pos, "ID|NAME"); err != nil {
			return err
		}
		k, err := store.Revoke(pos[0])
		if err != nil {
			return fmt.Errorf("gateway keys revoke: %w", err)
		}
		fmt.Fprintf(stdout, "revoked API key %s (%s)\n", k.ID, k.Name)
		return nil
	}
	return fmt.Errorf("gateway keys: unknown subcommand %q: want create|list|revoke", sub)
}
