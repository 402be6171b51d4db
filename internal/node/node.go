// Package node builds and runs an in-process CometBFT node from a home
// directory: config and key files, genesis, and the Run(ctx) lifecycle. It is
// application-agnostic (it takes a proxy.ClientCreator); package abciapp
// provides the Mycel ledger application that normally runs inside it.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	dbm "github.com/cometbft/cometbft-db"
	cmtcfg "github.com/cometbft/cometbft/config"
	nm "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/proxy"
	rpclocal "github.com/cometbft/cometbft/rpc/client/local"
	cmttypes "github.com/cometbft/cometbft/types"
)

// Node is one CometBFT node. Build it with New, run it once with Run.
type Node struct {
	cfg     *cmtcfg.Config
	cmt     *nm.Node
	logger  *slog.Logger
	closers []func() error // run after the node stopped
	started chan struct{}
}

// New builds a node from cfg (whose RootDir is the home directory, see
// LoadConfig) around the application behind cc. Building already performs
// the ABCI handshake, so blocks the application missed are replayed here.
// logger receives CometBFT's logs; nil discards them.
func New(ctx context.Context, cfg *cmtcfg.Config, cc proxy.ClientCreator, logger *slog.Logger) (*Node, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := cfg.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("node config: %w", err)
	}
	pv, err := LoadPrivValidator(cfg)
	if err != nil {
		return nil, err
	}
	nodeKey, err := p2p.LoadNodeKey(cfg.NodeKeyFile())
	if err != nil {
		return nil, fmt.Errorf("load node key: %w", err)
	}
	genesis := func() (*cmttypes.GenesisDoc, error) {
		return cmttypes.GenesisDocFromFile(cfg.GenesisFile())
	}
	// Prometheus stays off unless configured: two nodes in one process would
	// register the same collectors twice and panic.
	// See closableDB: CometBFT does not close the tx index, and may read a
	// store after closing it.
	var dbs []*closableDB
	dbProvider := func(c *cmtcfg.DBContext) (dbm.DB, error) {
		db, err := cmtcfg.DefaultDBProvider(c)
		if err != nil {
			return nil, err
		}
		cdb := &closableDB{db: db}
		dbs = append(dbs, cdb)
		return cdb, nil
	}
	closeDBs := func() error {
		var first error
		for _, db := range dbs {
			if err := db.Close(); err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	n, err := nm.NewNodeWithContext(ctx, cfg, pv, nodeKey, cc, genesis,
		dbProvider, nm.DefaultMetricsProvider(cfg.Instrumentation),
		newCometLogger(logger))
	if err != nil {
		closeDBs()
		return nil, fmt.Errorf("new node: %w", err)
	}
	return &Node{cfg: cfg, cmt: n, logger: logger, closers: []func() error{closeDBs}, started: make(chan struct{})}, nil
}

// Run starts the node and blocks until ctx is cancelled (then it stops the
// node cleanly and returns nil) or the node stops on its own (an error).
func (n *Node) Run(ctx context.Context) error {
	if err := n.cmt.Start(); err != nil {
		for _, c := range n.closers {
			c()
		}
		n.closers = nil
		return fmt.Errorf("start node: %w", err)
	}
	close(n.started)
	var err error
	select {
	case <-ctx.Done():
	case <-n.cmt.Quit():
		err = errors.New("node stopped unexpectedly")
	}
	if n.cmt.IsRunning() {
		if serr := n.cmt.Stop(); serr != nil && err == nil {
			err = fmt.Errorf("stop node: %w", serr)
		}
	}
	n.cmt.Wait()
	for _, c := range n.closers {
		if cerr := c(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}
	n.closers = nil
	return err
}

// Started is closed once Run has started the node: its RPC server listens.
func (n *Node) Started() <-chan struct{} { return n.started }

// Local returns an in-process RPC client for this node. It is only usable
// while Run is running.
func (n *Node) Local() *rpclocal.Local { return rpclocal.New(n.cmt) }

// Comet returns the underlying CometBFT node.
func (n *Node) Comet() *nm.Node { return n.cmt }

// Config returns the node's configuration.
func (n *Node) Config() *cmtcfg.Config { return n.cfg }

// RPCAddr returns the node's RPC URL, e.g. "http://127.0.0.1:26657".
func (n *Node) RPCAddr() string { return RPCURL(n.cfg) }

// RPCURL turns cfg.RPC.ListenAddress ("tcp://0.0.0.0:26657") into a URL a
// client can dial ("http://127.0.0.1:26657").
func RPCURL(cfg *cmtcfg.Config) string {
	addr := cfg.RPC.ListenAddress
	if i := strings.Index(addr, "://"); i >= 0 {
		addr = addr[i+3:]
	}
	addr = strings.Replace(addr, "0.0.0.0:", "127.0.0.1:", 1)
	return "http://" + addr
}
