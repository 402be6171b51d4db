package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"
	"golang.org/x/sync/errgroup"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/verifier"
)

// verifierConfigFile is the verifier's config in its home directory.
const verifierConfigFile = "verifier.toml"

// verifierFileConfig is verifier.toml.
type verifierFileConfig struct {
	ChainRPC  string `toml:"chain_rpc"`
	ChainID   string `toml:"chain_id"`
	KeysDir   string `toml:"keys_dir"`
	Key       string `toml:"key"`
	ModelsDir string `toml:"models_dir"` // GGUF files of the registered models, found by hash
	Stake     uint64 `toml:"stake"`      // umyc, registered on first start
	// Deposit is locked in each shopper payment channel (umyc).
	Deposit      uint64 `toml:"deposit"`
	EvidenceBond uint64 `toml:"evidence_bond"`
	ShopEvery    string `toml:"shop_every"` // duration, e.g. "2s"
	Threads      int    `toml:"threads"`
	RecheckAll   bool   `toml:"recheck_all"`
	// StateDir holds the state a restart needs (the committed audit seeds,
	// weight commitments and unreported audits), written atomically.
	StateDir string `toml:"state_dir"`
	// GatewayURL, when set, sends shopper requests through that gateway's
	// public API (base URL, without /v1) with GatewayAPIKey, an ordinary API
	// key, so they reach providers like any user's (verifier.GatewayShopper).
	// Unset, the verifier shops directly from accounts of its own
	// (verifier.HTTPShopper): distinguishable, for networks without a gateway.
	GatewayURL    string `toml:"gateway_url"`
	GatewayAPIKey string `toml:"gateway_api_key"`
}

func defaultVerifierConfig(home string) verifierFileConfig {
	return verifierFileConfig{
		ChainRPC: chainclient.DefaultNode, KeysDir: filepath.Join(home, "keys"), Key: "verifier",
		ModelsDir: filepath.Join(home, "models"), Stake: 100_000_000, Deposit: 10_000_000,
		EvidenceBond: 10_000_000, ShopEvery: "2s", Threads: 1, RecheckAll: true, StateDir: filepath.Join(home, "state"),
	}
}

// cmdVerifier runs `mycel verifier --home DIR`.
func cmdVerifier(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("verifier", stderr)
	home := fs.String("home", "", "verifier home directory holding "+verifierConfigFile+" (required)")
	logLevel := fs.String("log-level", "info", "log level: debug|info|warn|error")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("verifier", pos); err != nil {
		return err
	}
	if *home == "" {
		return errors.New("verifier: --home is required")
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	cfg := defaultVerifierConfig(*home)
	path := filepath.Join(*home, verifierConfigFile)
	if _, err := os.Stat(path); err == nil {
		if _, err := toml.DecodeFile(path, &cfg); err != nil {
			return fmt.Errorf("verifier: %s: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("verifier: %w", err)
	}
	if cfg.GatewayURL != "" && cfg.GatewayAPIKey == "" {
		return errors.New("verifier: gateway_url is set without gateway_api_key")
	}
	shopEvery, err := time.ParseDuration(cfg.ShopEvery)
	if err != nil {
		return fmt.Errorf("verifier: shop_every: %w", err)
	}
	key, err := keys.Load(cfg.KeysDir, cfg.Key)
	if err != nil {
		return fmt.Errorf("verifier: key %q: %w", cfg.Key, err)
	}
	var opts []chainclient.Option
	if cfg.ChainID != "" {
		opts = append(opts, chainclient.WithChainID(cfg.ChainID))
	}
	client, err := chainclient.Dial(cfg.ChainRPC, opts...)
	if err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	chainID := cfg.ChainID
	if chainID == "" {
		if chainID, err = client.ChainID(ctx); err != nil {
			return fmt.Errorf("verifier: %w", err)
		}
	}
	chain := verifier.LedgerChain{Client: client, Key: key}
	bands := verifier.DefaultBands()
	models := &verifier.ModelDir{Dir: cfg.ModelsDir, Threads: cfg.Threads, Bands: bands, Logger: logger}
	// Shopper requests follow the ordinary client mix (streaming and logprobs
	// included). Through a gateway they are paid by the gateway like any
	// user's; directly, from a separate consumer account the verifier funds,
	// a fresh one every epoch (verifier.EpochShopperKey).
	var shop verifier.Shopper = &verifier.HTTPShopper{Chain: chain, ChainID: chainID, Deposit: cfg.Deposit, Models: models, Logger: logger}
	shopVia := "directly"
	if cfg.GatewayURL != "" {
		shop = &verifier.GatewayShopper{GatewayURL: cfg.GatewayURL, APIKey: cfg.GatewayAPIKey, ChainID: chainID, Keys: chain,
			Models: models, Logger: logger}
		shopVia = "through " + cfg.GatewayURL
	}
	mix := verifier.DefaultMix()
	v, err := verifier.New(verifier.Config{
		Address: key.Address, Stake: cfg.Stake, ShopEvery: shopEvery, EvidenceBond: cfg.EvidenceBond,
		RecheckAll: cfg.RecheckAll, Mix: mix, Bands: bands, Logger: logger, StateDir: cfg.StateDir,
	}, chain, shop, models, nil)
	if err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	fmt.Fprintf(stdout, "verifier %s on %s (models from %s, shopping %s)\n", key.Address, cfg.ChainRPC, cfg.ModelsDir, shopVia)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return models.Run(ctx) })
	g.Go(func() error {
		err := v.Run(ctx)
		if err == nil {
			err = ctx.Err() // stop the model engines too
		}
		return err
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("verifier: %w", err)
	}
	return nil
}
