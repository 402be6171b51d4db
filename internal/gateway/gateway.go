// Package gateway is Mycel's OpenAI-compatible front door. It authenticates API keys, picks
// providers with internal/router, pays them through payment channels (a voucher per request,
// a verified receipt per answer), retries before the first byte, hedges slow first tokens,
// fails over mid-stream by continuing the answer on another provider, and anchors a Merkle
// root of its receipts on the ledger every epoch.
package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/mycel-network/mycel/internal/gateway/apikey"
	"github.com/mycel-network/mycel/internal/router"
)

// Config tunes the gateway. Zero fields take the defaults of DefaultConfig.
type Config struct {
	Listen           string        `toml:"listen"`             // address of the HTTP API
	DepositUmyc      uint64        `toml:"deposit_umyc"`       // first deposit and top-up of a channel
	IdleClose        time.Duration `toml:"idle_close"`         // close channels unused this long
	Refresh          time.Duration `toml:"refresh"`            // re-read providers and models from the ledger
	HealthInterval   time.Duration `toml:"health_interval"`    // probe each provider's /healthz
	EpochPoll        time.Duration `toml:"epoch_poll"`         // check the ledger epoch for anchoring
	MaxAttempts      int           `toml:"max_attempts"`       // providers tried before the first byte
	MaxFailovers     int           `toml:"max_failovers"`      // mid-stream continuations per request; -1 disables
	NoHedge          bool          `toml:"no_hedge"`           // never hedge a late first token
	HedgeMin         time.Duration `toml:"hedge_min"`          // never hedge earlier than this
	StallTimeout     time.Duration `toml:"stall_timeout"`      // a stream silent this long is broken
	DefaultMaxTokens int           `toml:"default_max_tokens"` // for routing and cost estimates
	MaxBodyBytes     int64         `toml:"max_body_bytes"`
	// Policy is the default routing policy (balanced, cheapest, fastest).
	Policy string `toml:"policy"`
	// ReconcileSlackUmyc is how much a provider's claim after a 402 may exceed what the gateway
	// counted, beyond the maximum cost of its attempts that ended without a receipt (those are
	// always allowed), before the claim is refused; 0 takes the default (1,000 umyc).
	ReconcileSlackUmyc uint64 `toml:"reconcile_slack_umyc"`
	// RecordLimit is how many records of answered requests (gwapi.RecordPath: the upstream
	// bodies and receipts) the gateway keeps in memory, the oldest evicted first; -1 keeps
	// none. RecordTTL is how long it keeps one, RecordMaxBytes how many bytes of upstream
	// bodies all of them may hold.
	RecordLimit    int           `toml:"record_limit"`
	RecordTTL      time.Duration `toml:"record_ttl"`
	RecordMaxBytes int64         `toml:"record_max_bytes"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Listen:             "127.0.0.1:8080",
		DepositUmyc:        10_000_000,
		IdleClose:          30 * time.Minute,
		Refresh:            5 * time.Second,
		HealthInterval:     10 * time.Second,
		EpochPoll:          5 * time.Second,
		MaxAttempts:        3,
		MaxFailovers:       2,
		HedgeMin:           20 * time.Millisecond,
		StallTimeout:       30 * time.Second,
		DefaultMaxTokens:   256,
		MaxBodyBytes:       4 << 20,
		Policy:             router.NameBalanced,
		ReconcileSlackUmyc: 1_000,
		RecordLimit:        10_000,
		RecordTTL:          15 * time.Minute,
		RecordMaxBytes:     256 << 20,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.DepositUmyc == 0 {
		c.DepositUmyc = d.DepositUmyc
	}
	if c.IdleClose <= 0 {
		c.IdleClose = d.IdleClose
	}
	if c.Refresh <= 0 {
		c.Refresh = d.Refresh
	}
	if c.HealthInterval <= 0 {
		c.HealthInterval = d.HealthInterval
	}
	if c.EpochPoll <= 0 {
		c.EpochPoll = d.EpochPoll
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	switch {
	case c.MaxFailovers == 0:
		c.MaxFailovers = d.MaxFailovers
	case c.MaxFailovers < 0:
		c.MaxFailovers = 0
	}
	if c.HedgeMin <= 0 {
		c.HedgeMin = d.HedgeMin
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = d.StallTimeout
	}
	if c.DefaultMaxTokens <= 0 {
		c.DefaultMaxTokens = d.DefaultMaxTokens
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.Policy == "" {
		c.Policy = d.Policy
	}
	if c.ReconcileSlackUmyc == 0 {
		c.ReconcileSlackUmyc = d.ReconcileSlackUmyc
	}
	switch {
	case c.RecordLimit == 0:
		c.RecordLimit = d.RecordLimit
	case c.RecordLimit < 0:
		c.RecordLimit = 0
	}
	if c.RecordTTL <= 0 {
		c.RecordTTL = d.RecordTTL
	}
	if c.RecordMaxBytes <= 0 {
		c.RecordMaxBytes = d.RecordMaxBytes
	}
	return c
}

// Validate checks the config.
func (c Config) Validate() error {
	if _, err := router.ByName(c.Policy); err != nil {
		return fmt.Errorf("gateway config: %w", err)
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("gateway config: listen %q: %w", c.Listen, err)
		}
	}
	return nil
}

// Deps are the gateway's collaborators. Chain, ConsumerKey and ConsumerAddress are required.
type Deps struct {
	Chain           Chain
	ConsumerKey     ed25519.PrivateKey // the gateway's account: opens channels, signs vouchers
	ConsumerAddress string
	Keys            *apikey.Store // nil: no authentication (a private gateway)
	Receipts        *ReceiptLog   // nil: receipts are verified but not stored or anchored
	Anchorer        Anchorer      // nil: the Chain if it is an Anchorer (LedgerChain is), else roots are only logged
	HTTPClient      *http.Client  // to providers; nil: a tuned default
	Logger          *slog.Logger  // nil discards
	Registerer      prometheus.Registerer
	Now             func() time.Time // nil: time.Now
}

// Gateway is the OpenAI-compatible gateway. Create it with New, serve Handler() or call Run.
type Gateway struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	now     func() time.Time
	client  *http.Client
	stats   *router.Stats
	pay     *payer
	metrics *metrics
	traffic *traffic
	dir     *directory
	records *records

	settling   settleGroup // answers whose receipts are verified after the response
	settleHook func()      // tests: called before an answer's receipts are verified

	anchorer Anchorer

	mu           sync.Mutex
	anchorInit   bool
	anchoredUpTo uint64 // epochs below this are anchored (or past the ledger's window)
	epoch        uint64 // current ledger epoch as last seen
}

// New returns a gateway.
func New(cfg Config, deps Deps) (*Gateway, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Chain == nil {
		return nil, errors.New("gateway: a Chain is required")
	}
	if len(deps.ConsumerKey) != ed25519.PrivateKeySize || deps.ConsumerAddress == "" {
		return nil, errors.New("gateway: a consumer key and address are required")
	}
	g := &Gateway{cfg: cfg, deps: deps, log: deps.Logger, now: deps.Now, client: deps.HTTPClient}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// Keep a connection per concurrent request: under a burst, closing idle connections
		// beyond a small pool means new handshakes and TIME_WAIT churn when it is least wanted.
		tr.MaxIdleConnsPerHost = 4096
		tr.MaxIdleConns = 16384
		g.client = &http.Client{Transport: tr}
	}
	g.anchorer = deps.Anchorer
	if g.anchorer == nil {
		g.anchorer, _ = deps.Chain.(Anchorer)
	}
	g.stats = router.NewStats(router.StatsConfig{})
	g.pay = newPayer(deps.Chain, deps.ConsumerKey, deps.ConsumerAddress, cfg.DepositUmyc)
	if g.deps.Registerer == nil {
		g.deps.Registerer = prometheus.NewRegistry()
	}
	g.metrics = newMetrics(g.deps.Registerer)
	g.traffic = newTraffic()
	g.dir = newDirectory(deps.Chain, g.client, g.log)
	g.records = newRecords(cfg.RecordLimit, cfg.RecordTTL, cfg.RecordMaxBytes)
	return g, nil
}

// Run serves the API on cfg.Listen until ctx ends, with the background loops (provider
// refresh, health probes, idle channel closing, receipt anchoring).
func (g *Gateway) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", g.cfg.Listen)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return g.Serve(ctx, ln)
}

// Serve is Run on a listener the caller made (tests and the devnet pass 127.0.0.1:0).
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	return g.ServeHandler(ctx, ln, g.Handler())
}

// ServeHandler is Serve with h answering instead of Handler(): h mounts Handler() next to
// other pages (`mycel gateway` adds the explorer at /explorer).
func (g *Gateway) ServeHandler(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		g.log.Info("gateway listening", "addr", ln.Addr().String())
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("gateway: serve: %w", err)
		}
		return nil
	})
	eg.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	eg.Go(func() error { return g.RunBackground(ctx) })
	err := eg.Wait()
	g.waitSettledAtExit() // the answers completed during the server's shutdown
	return err
}

// waitSettledAtExit accounts the last answers before returning (their receipts are verified
// after the response), waiting 10 s at most.
func (g *Gateway) waitSettledAtExit() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.settling.wait(ctx); err != nil {
		g.log.Warn("receipts still being verified at shutdown", "err", err)
	}
}

// RunBackground runs only the background loops, for callers that serve Handler themselves.
func (g *Gateway) RunBackground(ctx context.Context) error {
	tick := func(d time.Duration, f func(context.Context)) func() error {
		return func() error {
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				f(ctx)
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
				}
			}
		}
	}
	var eg errgroup.Group
	eg.Go(tick(g.cfg.Refresh, func(ctx context.Context) {
		if err := g.dir.refresh(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("refresh providers", "err", err)
		}
	}))
	eg.Go(tick(g.cfg.HealthInterval, g.dir.probe))
	eg.Go(tick(g.cfg.EpochPoll, func(ctx context.Context) {
		if err := g.anchor(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("anchor receipts", "err", err)
		}
	}))
	eg.Go(tick(time.Minute, g.closeIdle))
	err := eg.Wait()
	g.waitSettledAtExit() // for callers that serve Handler themselves
	return err
}

// Channels returns the open payment channels.
func (g *Gateway) Channels() []ChannelState { return g.pay.snapshot() }

func (g *Gateway) closeIdle(ctx context.Context) {
	for _, c := range g.pay.idle(g.now().Add(-g.cfg.IdleClose)) {
		// Give the provider the final voucher before closing, so it can redeem in the window.
		if ep := g.dir.endpoint(c.Provider); ep != "" && c.Owed > 0 {
			chainID, _ := g.pay.getChainID(ctx)
			if err := g.postVoucher(ctx, ep, chainID, c.ID, c.Owed); err != nil {
				g.log.Warn("final voucher", "provider_id", c.Provider, "channel_id", c.ID, "err", err)
			}
		}
		if err := g.deps.Chain.CloseChannel(ctx, c.ID); err != nil {
			g.log.Warn("close idle channel", "provider_id", c.Provider, "channel_id", c.ID, "err", err)
			continue
		}
		g.log.Info("closed idle channel", "provider_id", c.Provider, "channel_id", c.ID, "owed_umyc", c.Owed)
	}
}

// anchor anchors the Merkle roots of the epoch that just ended, once. The ledger takes an
// anchor for the current or the previous epoch only, so an epoch missed while the gateway was
// down for longer than an epoch stays unanchored (its receipts stay in the log, provable to
// anyone who trusts the log, and the miss is logged).
func (g *Gateway) anchor(ctx context.Context) error {
	ep, err := g.deps.Chain.Epoch(ctx)
	if err != nil {
		return err
	}
	g.mu.Lock()
	g.epoch = ep
	if !g.anchorInit {
		g.anchoredUpTo, g.anchorInit = ep, true // the previous epoch's receipts belong to an earlier run, anchored then
		if ep > 0 {
			g.anchoredUpTo = ep - 1
		}
	}
	from := g.anchoredUpTo
	g.mu.Unlock()
	if g.deps.Receipts == nil || ep == 0 || from >= ep {
		return nil
	}
	for e := from; e+1 < ep; e++ {
		if _, n := g.deps.Receipts.Root(e); n > 0 {
			g.log.Warn("receipts not anchored: the ledger's window for the epoch has passed", "epoch", e, "count", n)
		}
	}
	prev := ep - 1
	if root, n := g.deps.Receipts.Root(prev); n > 0 {
		audit := g.deps.Receipts.AuditRoot(prev)
		if g.anchorer != nil {
			if err := g.anchorer.Anchor(ctx, prev, root, audit, uint64(n)); err != nil {
				return fmt.Errorf("anchor epoch %d: %w", prev, err)
			}
		}
		g.log.Info("receipts anchored", "epoch", prev, "root", root, "audit_root", audit, "count", n, "on_ledger", g.anchorer != nil)
	}
	g.mu.Lock()
	g.anchoredUpTo = ep
	g.mu.Unlock()
	return nil
}
