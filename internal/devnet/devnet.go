// Package devnet runs a whole Mycel chain on 127.0.0.1 in one process: one
// or four validators with a shared genesis that funds named demo accounts.
// `mycel devnet`, the benchmarks and the multi-node tests use it.
//
// Layout of a devnet directory:
//
//	DIR/devnet.json        chain id, RPC URL, demo account addresses
//	DIR/keys/NAME.json     demo account keys (deterministic seeds)
//	DIR/node0 … nodeN-1    CometBFT homes (config, data, app store)
package devnet

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	rpclocal "github.com/cometbft/cometbft/rpc/client/local"

	"github.com/mycel-network/mycel/internal/abciapp"
	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/node"
)

// DefaultChainID is the chain id of a new devnet.
const DefaultChainID = "mycel-devnet"

// DemoAccounts returns the names of the accounts every devnet funds, in
// the order the banner lists them.
func DemoAccounts() []string {
	return []string{"alice", "bob", "carol", "provider1", "provider2", "provider3", "verifier1", "gateway"}
}

// DemoBalance is each demo account's genesis balance: 1,000,000 myc.
const DemoBalance uint64 = 1_000_000 * 1_000_000

// Config describes a devnet.
type Config struct {
	// Dir holds the devnet's files; DefaultDir() if empty.
	Dir string
	// Validators is 1 (default) or 4 on a new Dir. An existing Dir keeps its
	// count; asking for a different one is an error.
	Validators int
	// ChainID of a new devnet; DefaultChainID if empty.
	ChainID string
	// RPCPort, if non-zero, is tried first for validator 0's RPC (the CLI
	// passes 26657 so that its default --node works); a free port is used
	// if it is taken.
	RPCPort int
	// Genesis, if set, may change the genesis of a new devnet (add
	// accounts, change parameters) before it is written.
	Genesis func(*ledger.Genesis) error
	// EmptyBlocks makes a block every ~100 ms even without transactions;
	// by default blocks are made for transactions or once a second.
	EmptyBlocks bool
	// Tune, if set, adjusts each validator's CometBFT config before start.
	Tune func(*cmtcfg.Config)
	// Logger receives the devnet's logs; nil discards them.
	Logger *slog.Logger
	// CometLogger receives CometBFT's own (chatty) logs; nil discards them.
	CometLogger *slog.Logger
}

// DefaultDir returns the default devnet directory: mycel-devnet in the
// user's data directory ($XDG_DATA_HOME or ~/.local/share).
func DefaultDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "mycel-devnet")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "mycel-devnet")
	}
	return filepath.Join(os.TempDir(), "mycel-devnet")
}

// Info is the content of DIR/devnet.json. Later parts of the devnet add
// fields (gateway URL, API key, explorer); readers ignore unknown ones.
type Info struct {
	ChainID    string            `json:"chain_id"`
	RPC        string            `json:"rpc"`
	Validators []string          `json:"validators,omitempty"` // RPC URL of each validator
	Accounts   map[string]string `json:"accounts"`
	KeysDir    string            `json:"keys_dir,omitempty"`
	Gateway    string            `json:"gateway,omitempty"`
	APIKey     string            `json:"api_key,omitempty"`
	Explorer   string            `json:"explorer,omitempty"`
}

// ReadInfo reads DIR/devnet.json.
func ReadInfo(dir string) (Info, error) {
	var in Info
	b, err := os.ReadFile(filepath.Join(dir, "devnet.json"))
	if err != nil {
		return in, fmt.Errorf("read devnet info: %w", err)
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return in, fmt.Errorf("read devnet info: %w", err)
	}
	return in, nil
}

// WriteInfo writes DIR/devnet.json atomically.
func WriteInfo(dir string, in Info) error {
	b, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return fmt.Errorf("write devnet info: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, "devnet.json"), append(b, '\n'), 0o600) // later holds an API key
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// DemoSeed is the deterministic seed of a demo account: anyone can recreate
// these keys, so they are for a devnet only.
func DemoSeed(name string) []byte {
	s := sha256.Sum256([]byte("mycel-devnet-demo-key/" + name))
	return s[:]
}

// Devnet is a running (or runnable) in-process chain.
type Devnet struct {
	cfg     Config
	dir     string
	chainID string
	homes   []string
	cfgs    []*cmtcfg.Config
	keys    map[string]keys.Key
	ids     []string // p2p node ids

	mu       sync.Mutex
	slots    []*slot
	errc     chan error
	services services // guarded by mu
}

// services are the parts of devnet.json that the network's daemons fill in.
type services struct {
	gateway, apiKey, explorer string
}

// slot is one validator's running node.
type slot struct {
	cancel context.CancelFunc
	done   chan struct{}
	node   *node.Node
	app    *abciapp.App
}

// New prepares a devnet in cfg.Dir: on first use it creates the keys,
// homes and genesis; later it reuses them (the chain resumes). It picks
// fresh ports and writes devnet.json. Nothing runs until Run.
func New(cfg Config) (*Devnet, error) {
	if cfg.Dir == "" {
		cfg.Dir = DefaultDir()
	}
	if cfg.ChainID == "" {
		cfg.ChainID = DefaultChainID
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Devnet{cfg: cfg, dir: cfg.Dir, keys: map[string]keys.Key{}, errc: make(chan error, 8)}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return nil, fmt.Errorf("devnet: %w", err)
	}
	existing, err := countHomes(d.dir)
	if err != nil {
		return nil, err
	}
	switch {
	case existing == 0:
		n := cfg.Validators
		if n == 0 {
			n = 1
		}
		if n != 1 && n != 4 {
			return nil, fmt.Errorf("devnet: --validators must be 1 or 4, not %d", n)
		}
		if err := d.create(n); err != nil {
			return nil, err
		}
	case cfg.Validators != 0 && cfg.Validators != existing:
		return nil, fmt.Errorf("devnet: %s holds a %d-validator devnet, not %d (use another --home)", d.dir, existing, cfg.Validators)
	default:
		if err := d.load(existing); err != nil {
			return nil, err
		}
	}
	if old, err := ReadInfo(d.dir); err == nil {
		d.services.apiKey = old.APIKey // a secret shown once: kept across runs
	}
	if err := d.configure(); err != nil {
		return nil, err
	}
	return d, nil
}

// SetServices records the gateway URL, its API key and the explorer URL in
// devnet.json (and in Info).
func (d *Devnet) SetServices(gateway, apiKey, explorer string) error {
	d.mu.Lock()
	d.services = services{gateway: gateway, apiKey: apiKey, explorer: explorer}
	d.mu.Unlock()
	return WriteInfo(d.dir, d.Info())
}

// PreviousAPIKey returns the API key a previous run recorded in devnet.json,
// or "".
func (d *Devnet) PreviousAPIKey() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.services.apiKey
}

func homeName(i int) string { return fmt.Sprintf("node%d", i) }

func countHomes(dir string) (int, error) {
	n := 0
	for {
		_, err := os.Stat(filepath.Join(dir, homeName(n), "config", "genesis.json"))
		if errors.Is(err, fs.ErrNotExist) {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("devnet: %w", err)
		}
		n++
	}
}

// KeysDir is where the demo account keys live.
func (d *Devnet) KeysDir() string { return filepath.Join(d.dir, "keys") }

func (d *Devnet) create(n int) error {
	gen := ledger.Genesis{Params: ledger.DefaultParams()}
	for _, name := range DemoAccounts() {
		k, err := keys.Load(d.KeysDir(), name)
		if errors.Is(err, keys.ErrNotFound) {
			k, err = keys.AddFromSeed(d.KeysDir(), name, DemoSeed(name))
		}
		if err != nil {
			return fmt.Errorf("devnet: %w", err)
		}
		d.keys[name] = k
		gen.Accounts = append(gen.Accounts, ledger.GenesisAccount{Address: k.Address, Balance: DemoBalance})
	}
	if d.cfg.Genesis != nil {
		if err := d.cfg.Genesis(&gen); err != nil {
			return fmt.Errorf("devnet: genesis: %w", err)
		}
	}
	homes := make([]string, n)
	for i := range homes {
		homes[i] = filepath.Join(d.dir, homeName(i))
	}
	if _, err := InitNetwork(NetworkConfig{
		Homes: homes, ChainID: d.cfg.ChainID, Genesis: gen, Fast: true, EmptyBlocks: d.cfg.EmptyBlocks,
	}); err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	d.cfg.Logger.Info("created devnet", "dir", d.dir, "validators", n, "chain_id", d.cfg.ChainID)
	return d.load(n)
}

func (d *Devnet) load(n int) error {
	d.homes = make([]string, n)
	d.cfgs = make([]*cmtcfg.Config, n)
	d.slots = make([]*slot, n)
	for i := range d.homes {
		d.homes[i] = filepath.Join(d.dir, homeName(i))
		c, err := node.LoadConfig(d.homes[i])
		if err != nil {
			return fmt.Errorf("devnet: %w", err)
		}
		d.cfgs[i] = c
	}
	doc, err := node.ReadGenesis(d.cfgs[0])
	if err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	d.chainID = doc.ChainID
	ks, err := keys.List(d.KeysDir())
	if err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	for _, k := range ks {
		d.keys[k.Name] = k
	}
	return nil
}

// configure picks ports for this run and points the validators at each other.
func (d *Devnet) configure() error {
	n := len(d.cfgs)
	ports, err := node.FreePorts(2 * n)
	if err != nil {
		return fmt.Errorf("devnet: %w", err)
	}
	if d.cfg.RPCPort != 0 && portFree(d.cfg.RPCPort) {
		ports[1] = d.cfg.RPCPort
	}
	ids := make([]string, n)
	for i, c := range d.cfgs {
		id, err := nodeID(c)
		if err != nil {
			return err
		}
		ids[i] = id
	}
	d.ids = ids
	for i, c := range d.cfgs {
		node.Listen(c, ports[2*i], ports[2*i+1])
		var peers []string
		for j := range d.cfgs {
			if j != i {
				peers = append(peers, fmt.Sprintf("%s@127.0.0.1:%d", ids[j], ports[2*j]))
			}
		}
		c.P2P.PersistentPeers = strings.Join(peers, ",")
		if d.cfg.Tune != nil {
			d.cfg.Tune(c)
		}
		if err := node.WriteConfig(c); err != nil {
			return fmt.Errorf("devnet: %w", err)
		}
	}
	return WriteInfo(d.dir, d.Info())
}

// Info returns what devnet.json says.
func (d *Devnet) Info() Info {
	in := Info{ChainID: d.chainID, RPC: d.RPCAddr(), Accounts: map[string]string{}, KeysDir: d.KeysDir()}
	for _, c := range d.cfgs {
		in.Validators = append(in.Validators, node.RPCURL(c))
	}
	d.mu.Lock()
	for name, k := range d.keys {
		in.Accounts[name] = k.Address
	}
	in.Gateway, in.APIKey, in.Explorer = d.services.gateway, d.services.apiKey, d.services.explorer
	d.mu.Unlock()
	return in
}

// AddKey creates (or loads) a keys-dir account from the deterministic demo
// seed of name, for accounts a network adds after genesis (a cheater).
func (d *Devnet) AddKey(name string) (keys.Key, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if k, ok := d.keys[name]; ok {
		return k, nil
	}
	k, err := keys.Load(d.KeysDir(), name)
	if errors.Is(err, keys.ErrNotFound) {
		k, err = keys.AddFromSeed(d.KeysDir(), name, DemoSeed(name))
	}
	if err != nil {
		return keys.Key{}, fmt.Errorf("devnet: %w", err)
	}
	d.keys[name] = k
	return k, nil
}

// Dir returns the devnet directory.
func (d *Devnet) Dir() string { return d.dir }

// ChainID returns the chain id.
func (d *Devnet) ChainID() string { return d.chainID }

// Validators returns the number of validators.
func (d *Devnet) Validators() int { return len(d.cfgs) }

// RPCAddr returns validator 0's RPC URL.
func (d *Devnet) RPCAddr() string { return node.RPCURL(d.cfgs[0]) }

// RPCAddrOf returns validator i's RPC URL.
func (d *Devnet) RPCAddrOf(i int) string { return node.RPCURL(d.cfgs[i]) }

// Key returns a demo (or other keys-dir) account key by name.
func (d *Devnet) Key(name string) (keys.Key, error) {
	d.mu.Lock()
	k, ok := d.keys[name]
	d.mu.Unlock()
	if !ok {
		return keys.Key{}, fmt.Errorf("devnet: no key %q", name)
	}
	return k, nil
}

// Client returns a chain client for validator i over HTTP RPC.
func (d *Devnet) Client(i int, opts ...chainclient.Option) (*chainclient.Client, error) {
	return chainclient.Dial(d.RPCAddrOf(i), append([]chainclient.Option{chainclient.WithChainID(d.chainID)}, opts...)...)
}

// Run starts every validator and blocks until ctx is cancelled, then stops
// them all. It returns early with an error if a validator fails.
func (d *Devnet) Run(ctx context.Context) error {
	for i := range d.cfgs {
		if err := d.Start(ctx, i); err != nil {
			d.stopAll()
			return err
		}
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-d.errc:
	}
	d.stopAll()
	return err
}

// Start starts validator i (after Stop, this is a restart: the node
// reopens its stores and catches up). Its lifetime is bounded by ctx and by
// Stop.
func (d *Devnet) Start(ctx context.Context, i int) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i < 0 || i >= len(d.slots) {
		return fmt.Errorf("devnet: no validator %d", i)
	}
	if d.slots[i] != nil {
		return fmt.Errorf("devnet: validator %d already running", i)
	}
	d.dropStalePeers(i)
	logger := d.cfg.CometLogger
	if logger != nil {
		logger = logger.With("validator", i)
	}
	n, app, err := node.OpenLedger(ctx, d.cfgs[i], logger)
	if err != nil {
		return fmt.Errorf("devnet: validator %d: %w", i, err)
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &slot{cancel: cancel, done: make(chan struct{}), node: n, app: app}
	d.slots[i] = s
	go func() {
		defer close(s.done)
		if err := n.Run(sctx); err != nil {
			select {
			case d.errc <- fmt.Errorf("devnet: validator %d: %w", i, err):
			default:
			}
		}
	}()
	select {
	case <-n.Started():
	case <-s.done: // failed to start; Run reports the error
	}
	d.cfg.Logger.Info("validator started", "validator", i, "rpc", node.RPCURL(d.cfgs[i]))
	return nil
}

// Stop stops validator i and waits until its stores are closed.
func (d *Devnet) Stop(i int) error {
	d.mu.Lock()
	if i < 0 || i >= len(d.slots) || d.slots[i] == nil {
		d.mu.Unlock()
		return fmt.Errorf("devnet: validator %d not running", i)
	}
	s := d.slots[i]
	d.slots[i] = nil
	d.mu.Unlock()
	s.cancel()
	<-s.done
	d.mu.Lock()
	d.dropStalePeers(i)
	d.mu.Unlock()
	return nil
}

// dropStalePeers makes the running validators forget validator i, which
// is stopped. In one process a stopped CometBFT node can leave behind a
// connection it accepted while shutting down ("Won't start a peer - switch
// is not running" does not close it): its peers keep it as live and refuse
// the restarted node as a duplicate until a ping timeout, about a minute
// later. A separate process that exits closes those sockets; here we
// drop them. Callers hold d.mu.
func (d *Devnet) dropStalePeers(i int) {
	for j, s := range d.slots {
		if j == i || s == nil {
			continue
		}
		sw := s.node.Comet().Switch()
		if p := sw.Peers().Get(p2p.ID(d.ids[i])); p != nil {
			sw.StopPeerForError(p, fmt.Sprintf("validator %d stopped", i))
		}
	}
}

// Restart stops validator i if it runs and starts it again from its stores.
func (d *Devnet) Restart(ctx context.Context, i int) error {
	d.mu.Lock()
	running := i >= 0 && i < len(d.slots) && d.slots[i] != nil
	d.mu.Unlock()
	if running {
		if err := d.Stop(i); err != nil {
			return err
		}
	}
	return d.Start(ctx, i)
}

func (d *Devnet) stopAll() {
	for i := range d.cfgs {
		d.mu.Lock()
		running := d.slots[i] != nil
		d.mu.Unlock()
		if running {
			d.Stop(i)
		}
	}
}

// Local returns an in-process RPC client for validator i (no HTTP, no
// JSON), valid while it runs.
func (d *Devnet) Local(i int) (*rpclocal.Local, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if i < 0 || i >= len(d.slots) || d.slots[i] == nil {
		return nil, fmt.Errorf("devnet: validator %d not running", i)
	}
	return d.slots[i].node.Local(), nil
}

// Height returns the last height validator i's application committed (0
// if not running): its queries answer from that state.
func (d *Devnet) Height(i int) int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.slots[i] == nil {
		return 0
	}
	h, _ := d.slots[i].app.LastCommit()
	return h
}

// AppCommit returns validator i's last persisted height and app hash.
func (d *Devnet) AppCommit(i int) (int64, []byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.slots[i] == nil {
		return 0, nil, fmt.Errorf("devnet: validator %d not running", i)
	}
	h, hash := d.slots[i].app.LastCommit()
	return h, hash, nil
}

// WaitHeight waits until validator i's application committed height h.
func (d *Devnet) WaitHeight(ctx context.Context, i int, h int64) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for d.Height(i) < h {
		select {
		case <-ctx.Done():
			return fmt.Errorf("devnet: validator %d at height %d, waiting for %d: %w", i, d.Height(i), h, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
