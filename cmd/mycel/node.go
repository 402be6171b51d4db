package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mycel-network/mycel/internal/explorer"
	"github.com/mycel-network/mycel/internal/node"
)

// DefaultNodeExplorerAddr is where `mycel node` serves the explorer unless
// --explorer-addr says otherwise.
const DefaultNodeExplorerAddr = "127.0.0.1:26680"

func cmdNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("node", stderr)
	home := fs.String("home", defaultNodeHome(), "node home directory (see mycel init)")
	explorerAddr := fs.String("explorer-addr", DefaultNodeExplorerAddr, "serve the explorer at http://ADDR/explorer (empty: off)")
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
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "explorer-addr" })
	var ln net.Listener
	if *explorerAddr != "" {
		ln, err = net.Listen("tcp", *explorerAddr)
		switch {
		case err != nil && explicit:
			return fmt.Errorf("node: explorer: %w", err)
		case err != nil:
			// The default address is taken (another node on this machine):
			// run without the explorer rather than not at all.
			logger.Warn("explorer not served: its default address is taken (choose one with --explorer-addr)", "addr", *explorerAddr, "err", err)
			ln = nil
		default:
			defer ln.Close()
		}
	}
	n, app, err := node.OpenLedger(ctx, cfg, comet)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	h, hash := app.LastCommit()
	logger.Info("node starting", "home", *home, "rpc", n.RPCAddr(), "p2p", cfg.P2P.ListenAddress, "height", h, "app_hash", fmt.Sprintf("%X", hash))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.Run(gctx) })
	if ln != nil {
		g.Go(func() error {
			select {
			case <-n.Started():
			case <-gctx.Done():
				ln.Close()
				return nil
			}
			logger.Info("explorer listening", "url", "http://"+ln.Addr().String()+explorer.Prefix)
			return serveHTTP(gctx, ln, explorerMux(explorer.Deps{Chain: n.Local(), Logger: logger}))
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	logger.Info("node stopped")
	return nil
}

// explorerMux mounts the explorer at /explorer and redirects / to it.
func explorerMux(d explorer.Deps) http.Handler {
	mux := http.NewServeMux()
	h := explorer.Handler(d)
	mux.Handle(explorer.Prefix, h)
	mux.Handle(explorer.Prefix+"/", h)
	mux.Handle("GET /{$}", http.RedirectHandler(explorer.Prefix, http.StatusFound))
	return mux
}

// serveHTTP serves h on ln until ctx ends, then shuts the server down.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	// Requests (event streams) end with ctx.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(sctx) // event streams end when their requests' contexts do
	srv.Close()
	<-errc
	return nil
}
