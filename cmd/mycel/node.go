package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/mycel-network/mycel/internal/node"
)

func cmdNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("node", stderr)
	home := fs.String("home", defaultNodeHome(), "node home directory (see mycel init)")
	logLevel := fs.String("log-level", "info", "log level: debug|info|warn|error (CometBFT's own logs show at debug)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("node", pos); err != nil {
		return err
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	cfg, err := node.LoadConfig(*home)
	if err != nil {
		return fmt.Errorf("node: %w (run mycel init --home %s first)", err, *home)
	}
	var comet *slog.Logger
	if *logLevel == "debug" {
		comet = logger
	}
	n, app, err := node.OpenLedger(ctx, cfg, comet)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	h, hash := app.LastCommit()
	logger.Info("node starting", "home", *home, "rpc", n.RPCAddr(), "p2p", cfg.P2P.ListenAddress, "height", h, "app_hash", fmt.Sprintf("%X", hash))
	if err := n.Run(ctx); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	logger.Info("node stopped")
	return nil
}
