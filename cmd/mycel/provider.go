package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/provider"
)

// cmdProvider runs `mycel provider --home DIR` and `mycel provider init --home DIR`.
func cmdProvider(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "init" {
		return cmdProviderInit(args[1:], stdout, stderr)
	}
	fs := newFlags("provider", stderr)
	home := fs.String("home", "", "provider home directory holding "+provider.ConfigFile+" (required)")
	logLevel := fs.String("log-level", "info", "log level: debug|info|warn|error")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("provider", pos); err != nil {
		return err
	}
	if *home == "" {
		return errors.New("provider: --home is required (create one with `mycel provider init --home DIR`)")
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	cfg, err := provider.LoadConfig(*home)
	if err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	key, err := keys.Load(cfg.KeysDir, cfg.Key)
	if err != nil {
		return fmt.Errorf("provider: key %q: %w", cfg.Key, err)
	}
	var opts []chainclient.Option
	if cfg.ChainID != "" {
		opts = append(opts, chainclient.WithChainID(cfg.ChainID))
	}
	client, err := chainclient.Dial(cfg.ChainRPC, opts...)
	if err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	backends, closeAll, err := provider.OpenBackends(cfg, logger)
	if err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	defer closeAll()
	store, err := provider.OpenStore(cfg.DataDir, provider.StoreOptions{})
	if err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	defer store.Close()
	p, err := provider.New(cfg, provider.Deps{
		Chain: provider.ClientChain{C: client, S: client.NewSender(key)}, Address: key.Address, PrivKey: key.PrivKey,
		Backends: backends, Store: store, Logger: logger, Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		return err
	}
	go func() {
		select {
		case <-p.Ready():
			fmt.Fprintf(stdout, "provider %s: OpenAI-compatible API on %s/v1, metrics on %s/metrics\n", key.Address, p.URL(), p.URL())
		case <-ctx.Done():
		}
	}()
	return p.Run(ctx)
}

func cmdProviderInit(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("provider init", stderr)
	home := fs.String("home", "", "provider home directory (required)")
	model := fs.String("model", "mycel-ref", "registered id of the model to serve")
	gguf := fs.String("gguf", "models/mycel-ref.gguf", "GGUF file of the model (relative to --home or absolute)")
	keyName := fs.String("key", provider.DefaultConfig().Key, "provider key name; created in HOME/keys if missing")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("provider init", pos); err != nil {
		return err
	}
	if *home == "" {
		return errors.New("provider init: --home is required")
	}
	if err := keys.ValidateName(*keyName); err != nil {
		return fmt.Errorf("provider init: --key: %w", err)
	}
	path, err := provider.WriteDefaultConfig(*home, provider.InitOptions{Key: *keyName, ModelID: *model, GGUF: *gguf})
	if err != nil {
		return fmt.Errorf("provider init: %w", err)
	}
	keysDir := filepath.Join(*home, "keys")
	k, err := keys.Load(keysDir, *keyName)
	if errors.Is(err, keys.ErrNotFound) {
		k, err = keys.Add(keysDir, *keyName)
	}
	if err != nil {
		return fmt.Errorf("provider init: key: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s\nprovider key %q: %s (fund it with at least stake_umyc plus fees)\n", path, *keyName, k.Address)
	return nil
}
