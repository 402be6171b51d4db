package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"

	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/tx"
)

func cmdDevnet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("devnet", stderr)
	home := fs.String("home", devnet.DefaultDir(), "devnet directory (resumes the chain in it)")
	validators := fs.Int("validators", 0, "number of in-process validators for a new devnet: 1 or 4 (default 1)")
	output := fs.String("output", "text", "banner format: text|json")
	logLevel := fs.String("log-level", "warn", "log level: debug|info|warn|error (CometBFT's own logs show at debug)")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("devnet", pos); err != nil {
		return err
	}
	if *output != "text" && *output != "json" {
		return fmt.Errorf("devnet: --output %q: want text or json", *output)
	}
	logger, err := newLogger(stderr, *logLevel)
	if err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	var comet *slog.Logger
	if *logLevel == "debug" {
		comet = logger
	}
	d, err := devnet.New(devnet.Config{
		Dir: *home, Validators: *validators, RPCPort: 26657, Logger: logger, CometLogger: comet,
		// The ledger's app hash changes every block, so CometBFT makes a
		// block every timeout_commit even when idle: keep that calm.
		Tune: func(c *cmtcfg.Config) { c.Consensus.TimeoutCommit = 500 * time.Millisecond },
	})
	if err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	// Print the banner once the first block exists, so the RPC answers.
	if err := d.WaitHeight(runCtx, 0, 1); err != nil {
		cancel()
		if rerr := <-done; rerr != nil {
			return rerr
		}
		return nil // Ctrl-C before the first block
	}
	if *output == "json" {
		writeJSON(stdout, d.Info())
	} else {
		printBanner(stdout, d)
	}
	err = <-done
	if err == nil && *output == "text" {
		fmt.Fprintln(stdout, "devnet stopped; run `mycel devnet` again to resume it")
	}
	return err
}

func printBanner(w io.Writer, d *devnet.Devnet) {
	in := d.Info()
	plural := ""
	if d.Validators() > 1 {
		plural = "s"
	}
	fmt.Fprintf(w, "Mycel devnet is running: chain %s, %d validator%s, height %d\n\n", in.ChainID, d.Validators(), plural, d.Height(0))
	fmt.Fprintf(w, "  RPC       %s\n", in.RPC)
	fmt.Fprintf(w, "  home      %s  (devnet.json, keys/)\n\n", d.Dir())
	fmt.Fprintf(w, "  accounts  %s each; their keys come from fixed, public seeds: devnet only!\n", tx.FormatAmount(devnet.DemoBalance))
	for _, name := range devnet.DemoAccounts() {
		fmt.Fprintf(w, "    %-10s %s\n", name, in.Accounts[name])
	}
	home := ""
	if d.Dir() != devnet.DefaultDir() {
		home = " --home " + d.Dir()
	}
	fmt.Fprintf(w, "\n  try       mycel query account alice%s\n", home)
	fmt.Fprintf(w, "            mycel tx send --from alice --to bob --amount 5myc%s\n", home)
	fmt.Fprintf(w, "\nCtrl-C stops it; running it again resumes the same chain.\n")
}

// newLogger returns a text slog logger on w at the named level.
func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug|info|warn|error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
