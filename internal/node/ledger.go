package node

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/proxy"

	"github.com/mycel-network/mycel/internal/abciapp"
)

// AppDir is the app store (pebble) directory under a home.
func AppDir(home string) string { return filepath.Join(home, "data", "mycel-app") }

// OpenLedger opens the Mycel ledger application stored under cfg.RootDir
// and builds a node around it. The node's Run closes the application when
// it returns; the application is returned for inspection (LastCommit).
func OpenLedger(ctx context.Context, cfg *cmtcfg.Config, logger *slog.Logger) (*Node, *abciapp.App, error) {
	app, err := abciapp.Open(AppDir(cfg.RootDir), abciapp.Options{Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	n, err := New(ctx, cfg, proxy.NewLocalClientCreator(app), logger)
	if err != nil {
		if cerr := app.Close(); cerr != nil {
			err = fmt.Errorf("%w (and closing the app store: %v)", err, cerr)
		}
		return nil, nil, err
	}
	n.closers = append(n.closers, app.Close)
	return n, app, nil
}
