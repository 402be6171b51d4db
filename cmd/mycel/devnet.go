package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"

	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/devnet/fleet"
	"github.com/mycel-network/mycel/internal/tx"
)

func cmdDevnet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("devnet", stderr)
	home := fs.String("home", devnet.DefaultDir(), "devnet directory (resumes the chain in it)")
	validators := fs.Int("validators", 0, "number of in-process validators for a new devnet: 1 or 4 (default 1)")
	output := fs.String("output", "text", "banner format: text|json")
	logLevel := fs.String("log-level", "warn", "log level: debug|info|warn|error (CometBFT's own logs show at debug)")
	gatewayAddr := fs.String("gateway-addr", fleet.DefaultGatewayAddr, "listen address of the gateway (OpenAI API) and the explorer")
	cheater := fs.String("cheater", "", "add a provider that cheats: substitute|quantised|truncate|inflate|spotter")
	noVerifier := fs.Bool("no-verifier", false, "start no verifier (providers are never audited)")
	chainOnly := fs.Bool("chain-only", false, "run only the chain: no providers, verifier or gateway")
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
	// The chain outlives the other parts (providers redeem their vouchers as
	// they stop), so it runs under its own context; if it fails, the rest stops.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	chainCtx, stopChain := context.WithCancel(context.WithoutCancel(ctx))
	defer stopChain()
	chainExited := make(chan struct{})
	var chainErr error
	go func() {
		chainErr = d.Run(chainCtx)
		close(chainExited)
		cancel()
	}()
	// stop ends the chain and returns its error, if any, else err.
	stop := func(err error) error {
		stopChain()
		<-chainExited
		if chainErr != nil {
			return chainErr
		}
		return err
	}
	// Parts start once the first block exists, so the RPC answers.
	if err := d.WaitHeight(runCtx, 0, 1); err != nil {
		return stop(nil) // Ctrl-C before the first block, or the chain failed
	}
	if *chainOnly {
		if *output == "json" {
			writeJSON(stdout, d.Info())
		} else {
			printBanner(stdout, d, nil)
		}
		<-runCtx.Done()
		return finish(stdout, *output, stop(nil))
	}
	progressOut := stdout
	if *output == "json" {
		progressOut = stderr
	}
	fl, err := fleet.New(runCtx, fleet.Config{
		Devnet: d, GatewayAddr: *gatewayAddr, Cheater: *cheater, NoVerifier: *noVerifier, Logger: logger,
		Progress: func(msg string) { fmt.Fprintf(progressOut, "  · %s\n", msg) },
	})
	if err != nil {
		if runCtx.Err() != nil {
			return stop(nil)
		}
		return stop(err)
	}
	fleetDone := make(chan error, 1)
	ready := make(chan struct{})
	go func() { fleetDone <- fl.Run(runCtx, func() { close(ready) }) }()
	select {
	case <-ready:
		if err := d.SetServices(fl.GatewayURL(), fl.APIKey(), fl.ExplorerURL()); err != nil {
			logger.Warn("write devnet.json", "err", err)
		}
		if *output == "json" {
			writeJSON(stdout, d.Info())
		} else {
			printBanner(stdout, d, fl)
		}
	case err := <-fleetDone:
		return stop(err)
	}
	return finish(stdout, *output, stop(<-fleetDone))
}

func finish(stdout io.Writer, output string, err error) error {
	if err == nil && output == "text" {
		fmt.Fprintln(stdout, "devnet stopped; run `mycel devnet` again to resume it")
	}
	return err
}

func printBanner(w io.Writer, d *devnet.Devnet, fl *fleet.Fleet) {
	in := d.Info()
	plural := ""
	if d.Validators() > 1 {
		plural = "s"
	}
	fmt.Fprintf(w, "\nMycel devnet is running: chain %s, %d validator%s, height %d\n\n", in.ChainID, d.Validators(), plural, d.Height(0))
	if fl != nil {
		fmt.Fprintf(w, "  gateway   %s/v1   (OpenAI-compatible)\n", fl.GatewayURL())
		fmt.Fprintf(w, "  api key   %s   (budget %s)\n", fl.APIKey(), tx.FormatAmount(fleet.APIKeyBudget))
		fmt.Fprintf(w, "  explorer  %s\n", fl.ExplorerURL())
		fmt.Fprintf(w, "  model     %s   (demo models in %s)\n", fleet.ServedModel, filepath.Join(d.Dir(), "models"))
		fmt.Fprintf(w, "  providers")
		for i, p := range fl.Providers() {
			sep := ", "
			if i == 0 {
				sep = " "
			}
			label := p.Name
			if p.Cheat != "" {
				label += " (cheats: " + p.Cheat + ")"
			}
			fmt.Fprintf(w, "%s%s", sep, label)
		}
		if fl.HasVerifier() {
			fmt.Fprintf(w, "; verifier verifier1")
		}
		fmt.Fprintln(w)
	}
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
	if fl != nil {
		base, key := fl.GatewayURL()+"/v1", fl.APIKey()
		fmt.Fprintf(w, "\n  curl:\n")
		fmt.Fprintf(w, "    curl %s/chat/completions -H 'Authorization: Bearer %s' \\\n", base, key)
		fmt.Fprintf(w, "      -H 'Content-Type: application/json' \\\n")
		fmt.Fprintf(w, "      -d '{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],\"max_tokens\":32}'\n", fleet.ServedModel)
		fmt.Fprintf(w, "\n  Python (pip install openai):\n")
		fmt.Fprintf(w, "    from openai import OpenAI\n")
		fmt.Fprintf(w, "    client = OpenAI(base_url=\"%s\", api_key=\"%s\")\n", base, key)
		fmt.Fprintf(w, "    r = client.chat.completions.create(model=\"%s\", messages=[{\"role\": \"user\", \"content\": \"Hello\"}], max_tokens=32)\n", fleet.ServedModel)
		fmt.Fprintf(w, "    print(r.choices[0].message.content)\n")
		fmt.Fprintf(w, "\n  JavaScript (npm install openai):\n")
		fmt.Fprintf(w, "    import OpenAI from \"openai\";\n")
		fmt.Fprintf(w, "    const client = new OpenAI({ baseURL: \"%s\", apiKey: \"%s\" });\n", base, key)
		fmt.Fprintf(w, "    const r = await client.chat.completions.create({ model: \"%s\", messages: [{ role: \"user\", content: \"Hello\" }], max_tokens: 32 });\n", fleet.ServedModel)
		fmt.Fprintf(w, "    console.log(r.choices[0].message.content);\n")
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
