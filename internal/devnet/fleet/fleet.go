// Package fleet runs the daemons of a whole Mycel network around a running
// devnet chain, in one process: providers on the built-in engine with the
// generated demo models (different prices and speeds, optionally a cheater),
// a verifier, and the gateway with the explorer mounted at /explorer. It is
// what `mycel devnet` and `mycel demo` start. (It is a package of its own
// because the daemons' tests import internal/devnet.)
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/demomodel"
	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/explorer"
	"github.com/mycel-network/mycel/internal/gateway"
	"github.com/mycel-network/mycel/internal/gateway/apikey"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/provider"
	"github.com/mycel-network/mycel/internal/provider/backend"
	"github.com/mycel-network/mycel/internal/tx"
	"github.com/mycel-network/mycel/internal/verifier"
	"github.com/mycel-network/mycel/internal/verifier/cheat"
)

// DefaultGatewayAddr is where the devnet's gateway listens by default.
const DefaultGatewayAddr = "127.0.0.1:8080"

// ServedModel is the model every demo provider serves (the router fails
// over between them).
const ServedModel = "mycel-ref"

// CheaterName is the key name of the provider added by Config.Cheater.
const CheaterName = "cheater"

// Config describes the daemons to start.
type Config struct {
	// Devnet is the chain; it must be running (validator 0 answers).
	Devnet *devnet.Devnet
	// ModelsDir receives the demo models (generated on first start);
	// Devnet.Dir()/models if empty.
	ModelsDir string
	// GatewayAddr is the gateway's listen address; DefaultGatewayAddr if
	// empty ("127.0.0.1:0" picks a free port).
	GatewayAddr string
	// Cheater, if set, adds a provider that cheats with this strategy
	// (cheat.Strategies: substitute, quantised, truncate, inflate, spotter).
	Cheater string
	// NoVerifier leaves the verifier out.
	NoVerifier bool
	// Engines adds honest providers of ServedModel backed by an
	// OpenAI-compatible engine (Ollama, llama.cpp's server) instead of the
	// built-in one.
	Engines []Engine
	// ShopEvery is the verifier's pause between shopper requests; 3s if 0.
	ShopEvery time.Duration
	// DemoProviders is how many of the three honest demo providers start
	// (provider1, provider2, ... in order); 0 starts all three.
	DemoProviders int
	// Progress receives one line per step (model generation, each part
	// starting); nil discards.
	Progress func(msg string)
	// Logger receives the daemons' logs; nil discards them.
	Logger *slog.Logger
}

// providerSpec is one demo provider: prices differ, and so do speeds
// (engine threads and concurrent requests).
type providerSpec struct {
	name                string
	priceIn, priceOut   uint64 // umyc per 1M tokens
	threads, concurrent int
	extra               []string // other models served
	engine              *Engine  // served by an OpenAI-compatible engine, not the built-in one
}

func demoProviders() []providerSpec {
	return []providerSpec{
		{name: "provider1", priceIn: 100_000, priceOut: 300_000, threads: 1, concurrent: 4, extra: []string{"mycel-ref-q8"}},
		{name: "provider2", priceIn: 200_000, priceOut: 600_000, threads: 2, concurrent: 4},
		{name: "provider3", priceIn: 50_000, priceOut: 150_000, threads: 1, concurrent: 1, extra: []string{"mycel-ref-q4km"}},
	}
}

// registeredModels are the demo models put on the ledger (mycel-sub, the
// substitute, is only ever served by a cheater claiming mycel-ref).
var registeredModels = []struct{ name, quant string }{
	{"mycel-ref", "F32"}, {"mycel-ref-q8", "Q8_0"}, {"mycel-ref-q4km", "Q4_K_M"},
}

// Provider is one running provider.
type Provider struct {
	Name    string
	Address string
	Cheat   string // strategy, "" for honest
	engine  string // profile of the OpenAI-compatible engine behind it, "" for the built-in one
	p       *provider.Provider
	ln      *killableListener
	reg     *prometheus.Registry
	closers []func() error
}

// URL is the provider's endpoint.
func (p *Provider) URL() string { return p.p.URL() }

// Fleet is the set of daemons. Create it with New, then Run it.
type Fleet struct {
	cfg       Config
	log       *slog.Logger
	client    *chainclient.Client
	models    map[string]demomodel.Generated
	providers []*Provider
	verifier  *verifier.Verifier
	vmodels   *verifier.ModelDir
	gw        *gateway.Gateway
	gwReg     *prometheus.Registry
	keys      *apikey.Store
	receipts  *gateway.ReceiptLog
	ln        net.Listener
	apiKey    string
	closers   []func() error
}

func (f *Fleet) progress(format string, args ...any) {
	if f.cfg.Progress != nil {
		f.cfg.Progress(fmt.Sprintf(format, args...))
	}
}

// New generates the demo models if needed, registers them, and builds every
// daemon (nothing serves until Run). On error everything opened is closed.
func New(ctx context.Context, cfg Config) (_ *Fleet, err error) {
	if cfg.Devnet == nil {
		return nil, errors.New("fleet: a running devnet is required")
	}
	if cfg.ModelsDir == "" {
		cfg.ModelsDir = filepath.Join(cfg.Devnet.Dir(), "models")
	}
	if cfg.GatewayAddr == "" {
		cfg.GatewayAddr = DefaultGatewayAddr
	}
	if cfg.Cheater != "" && !slices.Contains(cheat.Strategies(), cheat.Strategy(cfg.Cheater)) {
		var names []string
		for _, s := range cheat.Strategies() {
			names = append(names, string(s))
		}
		return nil, fmt.Errorf("fleet: --cheater %q: want one of %s", cfg.Cheater, strings.Join(names, ", "))
	}
	f := &Fleet{cfg: cfg, log: cfg.Logger}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	if f.client, err = cfg.Devnet.Client(0, chainclient.WithCommitTimeout(30*time.Second)); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	// The gateway's port is taken first: a busy 8080 fails at once.
	if f.ln, err = net.Listen("tcp", cfg.GatewayAddr); err != nil {
		return nil, fmt.Errorf("fleet: gateway: %w (choose another with --gateway-addr)", err)
	}
	f.closers = append(f.closers, f.ln.Close)

	f.progress("demo models: generating into %s (first start only)", cfg.ModelsDir)
	gen, err := demomodel.Generate(ctx, cfg.ModelsDir, func(msg string) { f.progress("  %s", msg) })
	if err != nil {
		return nil, fmt.Errorf("fleet: demo models: %w", err)
	}
	f.models = map[string]demomodel.Generated{}
	for _, g := range gen {
		f.models[g.Name] = g
	}
	if err := f.registerModels(ctx); err != nil {
		return nil, err
	}
	specs := demoProviders()
	if n := cfg.DemoProviders; n > 0 && n < len(specs) {
		specs = specs[:n]
	}
	for _, spec := range specs {
		if err := f.addProvider(ctx, spec, ""); err != nil {
			return nil, err
		}
	}
	for _, e := range cfg.Engines {
		if err := f.addEngine(ctx, e); err != nil {
			return nil, err
		}
	}
	if cfg.Cheater != "" {
		if err := f.fund(ctx, CheaterName); err != nil {
			return nil, err
		}
		spec := providerSpec{name: CheaterName, priceIn: 40_000, priceOut: 120_000, threads: 1, concurrent: 4}
		if err := f.addProvider(ctx, spec, cfg.Cheater); err != nil {
			return nil, err
		}
	}
	// The gateway first: the verifier shops through it, with a key of its own.
	if err := f.addGateway(); err != nil {
		return nil, err
	}
	if !cfg.NoVerifier {
		if err := f.addVerifier(ctx); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (f *Fleet) registerModels(ctx context.Context) error {
	var msgs []any
	for _, m := range registeredModels {
		g, ok := f.models[m.name]
		if !ok {
			return fmt.Errorf("fleet: demo model %s was not generated", m.name)
		}
		var have ledger.Model
		err := f.client.Query(ctx, "model/"+m.name, nil, &have)
		switch {
		case err == nil:
			if have.SHA256 != g.SHA256 {
				return fmt.Errorf("fleet: model %s is registered with sha256 %s, but this build generates %s: start a fresh devnet (another --home)", m.name, have.SHA256, g.SHA256)
			}
			continue
		case !errors.Is(err, ledger.ErrNotFound):
			return fmt.Errorf("fleet: %w", err)
		}
		msgs = append(msgs, tx.RegisterModel{ID: m.name, SHA256: g.SHA256, Architecture: "qwen2", Parameters: 1_000_000,
			Quantization: m.quant, ContextLength: 2048, License: "generated demo model (public domain)"})
	}
	if len(msgs) == 0 {
		return nil
	}
	f.progress("registering %d demo models on the ledger", len(msgs))
	k, err := f.cfg.Devnet.Key("alice")
	if err != nil {
		return err
	}
	if _, err := f.client.Submit(ctx, k, msgs...); err != nil {
		return fmt.Errorf("fleet: register models: %w", err)
	}
	return nil
}

// fund gives an account not in the genesis (the cheater, an engine's
// provider) enough to stake.
func (f *Fleet) fund(ctx context.Context, name string) error {
	k, err := f.cfg.Devnet.AddKey(name)
	if err != nil {
		return err
	}
	acc, err := f.client.Account(ctx, k.Address)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	const want = 1_000 * 1_000_000
	if acc.Balance >= want {
		return nil
	}
	alice, err := f.cfg.Devnet.Key("alice")
	if err != nil {
		return err
	}
	if _, err := f.client.Submit(ctx, alice, tx.Send{To: k.Address, Amount: want - acc.Balance}); err != nil {
		return fmt.Errorf("fleet: fund %s: %w", name, err)
	}
	return nil
}

func (f *Fleet) builtin(id string, threads, concurrent int, priceIn, priceOut uint64) provider.ModelConfig {
	m := provider.DefaultModel()
	m.ID, m.GGUF, m.Threads, m.ContextLength = id, f.models[id].Path, threads, 1024
	m.PriceInPerMTok, m.PriceOutPerMTok, m.MaxConcurrent = priceIn, priceOut, concurrent
	m.KVBudgetBytes = 64 << 20
	return m
}

func (f *Fleet) addProvider(ctx context.Context, spec providerSpec, strategy string) error {
	key, err := f.cfg.Devnet.Key(spec.name)
	if err != nil {
		return err
	}
	what := "honest"
	if spec.engine != nil {
		what = "honest, " + spec.engine.Profile + " engine at " + spec.engine.BaseURL
	}
	if strategy != "" {
		what = "CHEATS: " + strategy
	}
	f.progress("provider %s (%s): loading %s", spec.name, what, ServedModel)
	cfg := provider.DefaultConfig()
	cfg.ChainRPC = f.cfg.Devnet.RPCAddr()
	cfg.Key, cfg.KeysDir = spec.name, f.cfg.Devnet.KeysDir()
	cfg.DataDir = filepath.Join(f.cfg.Devnet.Dir(), "providers", spec.name)
	cfg.Listen = "127.0.0.1:0"
	cfg.StakeUmyc = 200_000_000
	cfg.CreditUmyc = 50_000
	cfg.ChannelPoll = time.Second
	cfg.HealthInterval = 2 * time.Second
	cfg.RedeemInterval = 30 * time.Second
	cfg.ShutdownGrace = 3 * time.Second
	cfg.Models = []provider.ModelConfig{f.builtin(ServedModel, spec.threads, spec.concurrent, spec.priceIn, spec.priceOut)}
	if spec.engine != nil {
		cfg.Models[0] = f.engineModel(*spec.engine, spec.concurrent, spec.priceIn, spec.priceOut)
	}
	for i, id := range spec.extra {
		cfg.Models = append(cfg.Models, f.builtin(id, 1, spec.concurrent, spec.priceIn*(2+uint64(i))/4, spec.priceOut*(2+uint64(i))/4))
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("fleet: provider %s: %w", spec.name, err)
	}
	logger := f.log.With("provider", spec.name)
	backends, closeAll, err := provider.OpenBackends(cfg, logger)
	if err != nil {
		return fmt.Errorf("fleet: provider %s: %w", spec.name, err)
	}
	p := &Provider{Name: spec.name, Address: key.Address, Cheat: strategy, reg: prometheus.NewRegistry()}
	if spec.engine != nil {
		p.engine = spec.engine.Profile
	}
	f.closers = append(f.closers, closeAll)
	if strategy != "" {
		cheap := provider.Config{Models: []provider.ModelConfig{f.builtin("mycel-sub", spec.threads, spec.concurrent, 1, 1)}}
		if strategy == string(cheat.Quantised) {
			cheap.Models[0] = f.builtin("mycel-ref-q4km", spec.threads, spec.concurrent, 1, 1)
		}
		cheapBackends, closeCheap, err := provider.OpenBackends(cheap, logger)
		if err != nil {
			return fmt.Errorf("fleet: cheater's engine: %w", err)
		}
		f.closers = append(f.closers, closeCheap)
		var cheapB backend.Backend
		for _, b := range cheapBackends {
			cheapB = b
		}
		backends[ServedModel] = cheating{&cheat.Backend{Strategy: cheat.Strategy(strategy), Honest: backends[ServedModel], Cheap: cheapB}}
	}
	store, err := provider.OpenStore(cfg.DataDir, provider.StoreOptions{})
	if err != nil {
		return fmt.Errorf("fleet: provider %s: %w", spec.name, err)
	}
	f.closers = append(f.closers, store.Close)
	if p.ln, err = newKillable(cfg.Listen); err != nil {
		return fmt.Errorf("fleet: provider %s: %w", spec.name, err)
	}
	f.closers = append(f.closers, p.ln.Close)
	hw := provider.DetectHardware(ctx)
	p.p, err = provider.New(cfg, provider.Deps{Listener: p.ln,
		Chain: provider.ClientChain{C: f.client, S: f.client.NewSender(key)}, Address: key.Address, PrivKey: key.PrivKey,
		Backends: backends, Store: store, Registerer: p.reg, Hardware: &hw, Logger: logger,
	})
	if err != nil {
		return fmt.Errorf("fleet: provider %s: %w", spec.name, err)
	}
	f.providers = append(f.providers, p)
	return nil
}

func (f *Fleet) addVerifier(ctx context.Context) error {
	key, err := f.cfg.Devnet.Key("verifier1")
	if err != nil {
		return err
	}
	f.progress("verifier verifier1: reference engine on %s", f.cfg.ModelsDir)
	chainID, err := f.client.ChainID(ctx)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	logger := f.log.With("verifier", "verifier1")
	if !logger.Enabled(ctx, slog.LevelInfo) {
		// At the default level its retries of a missed audit-seed window
		// (once a second until the next epoch) would bury the banner.
		logger = slog.New(minLevel{logger.Handler(), slog.LevelError})
	}
	chain := verifier.LedgerChain{Client: f.client, Key: key}
	bands := verifier.DefaultBands()
	f.vmodels = &verifier.ModelDir{Dir: f.cfg.ModelsDir, Threads: 1, Bands: bands, Logger: logger}
	// Shopper requests go through the devnet's gateway like any user's, paid by the
	// gateway against an API key of the verifier's own: a new one each start (the store
	// keeps only hashes of secrets), the previous run's revoked.
	old, err := f.keys.List()
	if err != nil {
		return fmt.Errorf("fleet: verifier api key: %w", err)
	}
	for _, k := range old {
		if k.Name == verifierKeyName && !k.Revoked {
			if _, err := f.keys.Revoke(k.ID); err != nil {
				return fmt.Errorf("fleet: verifier api key: %w", err)
			}
		}
	}
	secret, _, err := f.keys.Create(verifierKeyName, VerifierAPIKeyBudget, 0, 0, time.Now())
	if err != nil {
		return fmt.Errorf("fleet: verifier api key: %w", err)
	}
	shop := &verifier.GatewayShopper{GatewayURL: f.GatewayURL(), APIKey: secret, ChainID: chainID, Keys: chain,
		Models: f.vmodels, Logger: logger}
	shopEvery := f.cfg.ShopEvery
	if shopEvery <= 0 {
		shopEvery = 3 * time.Second
	}
	mix := verifier.DefaultMix() // as `mycel verifier`: shopper requests follow the users' mix
	f.verifier, err = verifier.New(verifier.Config{
		Address: key.Address, Stake: 150_000_000, ShopEvery: shopEvery, EvidenceBond: 10_000_000,
		RecheckAll: true, Mix: mix, Bands: bands, Logger: logger,
	}, chain, shop, f.vmodels, nil)
	if err != nil {
		return fmt.Errorf("fleet: verifier: %w", err)
	}
	return nil
}

func (f *Fleet) addGateway() error {
	key, err := f.cfg.Devnet.Key("gateway")
	if err != nil {
		return err
	}
	dir := filepath.Join(f.cfg.Devnet.Dir(), "gateway")
	if f.keys, err = apikey.Open(filepath.Join(dir, "apikeys.jsonl")); err != nil {
		return fmt.Errorf("fleet: gateway: %w", err)
	}
	f.closers = append(f.closers, f.keys.Close)
	if f.receipts, err = gateway.OpenReceiptLog(filepath.Join(dir, "receipts.jsonl")); err != nil {
		return fmt.Errorf("fleet: gateway: %w", err)
	}
	f.closers = append(f.closers, f.receipts.Close)
	// The API key of an earlier run stays valid; otherwise make one with a budget.
	f.apiKey = f.cfg.Devnet.PreviousAPIKey()
	if _, err := f.keys.Authenticate(f.apiKey); f.apiKey == "" || err != nil {
		secret, _, err := f.keys.Create("devnet", APIKeyBudget, 0, 0, time.Now())
		if err != nil {
			return fmt.Errorf("fleet: api key: %w", err)
		}
		f.apiKey = secret
	}
	f.gwReg = prometheus.NewRegistry()
	f.gw, err = gateway.New(gateway.Config{Listen: f.ln.Addr().String(), IdleClose: time.Hour}, gateway.Deps{
		Chain: gateway.LedgerChain{Client: f.client, Key: key}, ConsumerKey: key.PrivKey, ConsumerAddress: key.Address,
		Keys: f.keys, Receipts: f.receipts, Logger: f.log.With("part", "gateway"), Registerer: f.gwReg,
	})
	if err != nil {
		return fmt.Errorf("fleet: gateway: %w", err)
	}
	return nil
}

// APIKeyBudget is the budget of the API key a devnet creates: 100 myc.
const APIKeyBudget uint64 = 100 * 1_000_000

// verifierKeyName names the API key the devnet's verifier shops with.
const verifierKeyName = "verifier1-shopper"

// VerifierAPIKeyBudget is the budget of the API key the devnet's verifier shops with.
const VerifierAPIKeyBudget uint64 = 100 * 1_000_000

// GatewayURL is the gateway's base URL (OpenAI clients add /v1).
func (f *Fleet) GatewayURL() string { return "http://" + f.ln.Addr().String() }

// ExplorerURL is the explorer on the gateway's address.
func (f *Fleet) ExplorerURL() string { return f.GatewayURL() + explorer.Prefix }

// APIKey is the devnet's API key.
func (f *Fleet) APIKey() string { return f.apiKey }

// HasVerifier reports whether a verifier runs.
func (f *Fleet) HasVerifier() bool { return f.verifier != nil }

// Providers returns the providers.
func (f *Fleet) Providers() []*Provider { return f.providers }

// Names labels the devnet's accounts for the explorer.
func (f *Fleet) Names() map[string]string {
	out := map[string]string{}
	for name, addr := range f.cfg.Devnet.Info().Accounts {
		out[addr] = name
	}
	return out
}

// Handler is what the gateway's address serves: the OpenAI API and the
// explorer at /explorer.
func (f *Fleet) Handler(rpc explorer.ChainRPC) http.Handler {
	mux := http.NewServeMux()
	ex := explorer.Handler(explorer.Deps{Chain: rpc, Traffic: f.gw, Names: f.Names(), Logger: f.log.With("part", "explorer")})
	mux.Handle(explorer.Prefix, ex)
	mux.Handle(explorer.Prefix+"/", ex)
	mux.Handle("/", f.gw.Handler())
	return mux
}

// Run serves until ctx ends (or a part fails), then stops every part and
// closes the stores. ready, if not nil, is called once every provider has
// registered and the gateway serves.
func (f *Fleet) Run(ctx context.Context, ready func()) error {
	defer f.close()
	local, err := f.cfg.Devnet.Local(0)
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range f.providers {
		g.Go(func() error {
			if err := p.p.Run(gctx); err != nil && !p.ln.isKilled() {
				return fmt.Errorf("provider %s: %w", p.Name, err)
			}
			return nil
		})
	}
	srv := &http.Server{Handler: f.Handler(local), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return gctx }}
	g.Go(func() error {
		for _, p := range f.providers {
			select {
			case <-p.p.Ready():
				f.progress("provider %s ready at %s", p.Name, p.URL())
			case <-gctx.Done():
				return nil
			}
		}
		if f.verifier != nil {
			g.Go(func() error { return f.vmodels.Run(gctx) })
			g.Go(func() error {
				if err := f.verifier.Run(gctx); err != nil && gctx.Err() == nil {
					return fmt.Errorf("verifier: %w", err)
				}
				return nil
			})
		}
		g.Go(func() error { return f.gw.RunBackground(gctx) })
		g.Go(func() error {
			if err := srv.Serve(f.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("gateway: %w", err)
			}
			return nil
		})
		if ready != nil {
			ready()
		}
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return nil
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func (f *Fleet) close() {
	for i := len(f.closers) - 1; i >= 0; i-- {
		if err := f.closers[i](); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrClosed) {
			f.log.Warn("close", "err", err)
		}
	}
	f.closers = nil
}

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}
func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}
func (h minLevel) WithGroup(n string) slog.Handler { return minLevel{h.Handler.WithGroup(n), h.min} }
