// Package provider is the provider daemon: it serves registered models through an
// OpenAI-compatible HTTP API, takes payment through channel vouchers, signs a receipt for
// every request, persists receipts and vouchers before the client learns of them, and
// redeems vouchers on the ledger. See docs/spec/channels.md for the wire contract.
package provider

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/provider/backend"
	"github.com/mycel-network/mycel/internal/tx"
)

// Deps are the provider's explicit dependencies.
type Deps struct {
	Chain Chain
	// Address and PrivKey are the provider's account.
	Address string
	PrivKey ed25519.PrivateKey
	// Backends serve the configured models, by model id.
	Backends map[string]backend.Backend
	Store    *Store
	Logger   *slog.Logger // nil discards
	// Registerer receives the metrics (nil: a private registry). If it is also a
	// prometheus.Gatherer, /metrics serves it.
	Registerer prometheus.Registerer
	// Hardware is declared at registration; nil detects it.
	Hardware *tx.Hardware
	// Listener, if set, is served instead of listening on Config.Listen.
	Listener net.Listener
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Provider is a running provider daemon.
type Provider struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	metrics *Metrics
	gather  prometheus.Gatherer
	now     func() time.Time
	pay     *payments
	models  map[string]*model
	order   []string // model ids in config order
	handler http.Handler

	ready   chan struct{}
	url     atomic.Pointer[string]
	chainID string
}

type model struct {
	cfg     ModelConfig
	b       backend.Backend
	sha     string // the registered hash
	sched   *scheduler
	healthy atomic.Bool
}

// New checks cfg and deps and builds a provider; Run starts it.
func New(cfg Config, deps Deps) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Chain == nil || deps.Store == nil {
		return nil, errors.New("new provider: chain and store are required")
	}
	if len(deps.PrivKey) != ed25519.PrivateKeySize || deps.Address == "" {
		return nil, errors.New("new provider: provider key and address are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	p := &Provider{cfg: cfg, deps: deps, log: deps.Logger, metrics: newMetrics(reg), now: deps.Now,
		models: map[string]*model{}, ready: make(chan struct{})}
	if g, ok := reg.(prometheus.Gatherer); ok {
		p.gather = g
	}
	for _, mc := range cfg.Models {
		b := deps.Backends[mc.ID]
		if b == nil {
			return nil, fmt.Errorf("new provider: no backend for model %s", mc.ID)
		}
		id := mc.ID
		m := &model{cfg: mc, b: b, sched: newScheduler(mc.MaxConcurrent, mc.QueueLength, func(n int) {
			p.metrics.QueueDepth.WithLabelValues(id).Set(float64(n))
		})}
		m.healthy.Store(true)
		p.metrics.ModelHealthy.WithLabelValues(id).Set(1)
		p.metrics.QueueDepth.WithLabelValues(id).Set(0)
		p.models[mc.ID] = m
		p.order = append(p.order, mc.ID)
	}
	p.pay = &payments{self: deps.Address, credit: cfg.CreditUmyc, chain: deps.Chain, store: deps.Store, chans: map[uint64]*chanState{},
		onVerify: func() { p.metrics.VoucherVerifies.Inc() }, onPending: func(n uint64) { p.metrics.PendingUmyc.Set(float64(n)) }}
	p.handler = p.routes()
	return p, nil
}

// Handler returns the provider's HTTP API (usable before Run only in tests that call Prepare).
func (p *Provider) Handler() http.Handler { return p.handler }

// Ready is closed once the provider serves (after registration).
func (p *Provider) Ready() <-chan struct{} { return p.ready }

// URL returns the provider's base URL once Ready.
func (p *Provider) URL() string {
	if u := p.url.Load(); u != nil {
		return *u
	}
	return ""
}

// Metrics returns the provider's metrics.
func (p *Provider) Metrics() *Metrics { return p.metrics }

// Prepare checks the models against the ledger (refusing a builtin file whose hash differs
// from the registered one) and loads persisted channel state. Run calls it; tests and
// benchmarks that serve Handler directly call it themselves.
func (p *Provider) Prepare(ctx context.Context) error {
	id, err := p.deps.Chain.ChainID(ctx)
	if err != nil {
		return fmt.Errorf("provider: chain id: %w", err)
	}
	p.chainID, p.pay.chainID = id, id
	for _, mid := range p.order {
		m := p.models[mid]
		lm, err := p.deps.Chain.Model(ctx, mid)
		if err != nil {
			if errors.Is(err, ledger.ErrNotFound) {
				return fmt.Errorf("provider: model %s is not registered on the ledger (mycel tx register-model)", mid)
			}
			return fmt.Errorf("provider: model %s: %w", mid, err)
		}
		if sha := m.b.Info().SHA256; sha != "" && sha != lm.SHA256 {
			return fmt.Errorf("provider: model %s: the model file's sha256 %s differs from the sha256 %s registered on the ledger; refusing to serve it", mid, sha, lm.SHA256)
		}
		m.sha = lm.SHA256
	}
	recs, err := p.deps.Store.Channels()
	if err != nil {
		return fmt.Errorf("provider: %w", err)
	}
	for _, r := range recs {
		if _, e := p.pay.state(ctx, r.ID); e != nil {
			p.log.Warn("stored channel not loaded", "channel_id", r.ID, "err", e.Message)
		}
	}
	return nil
}

// Run prepares, listens, registers on the ledger, serves until ctx ends, then shuts the
// server down gracefully and redeems every channel's latest voucher.
func (p *Provider) Run(ctx context.Context) error {
	if err := p.Prepare(ctx); err != nil {
		return err
	}
	ln := p.deps.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", p.cfg.Listen); err != nil {
			return fmt.Errorf("provider: listen: %w", err)
		}
	}
	endpoint := p.cfg.PublicEndpoint
	if endpoint == "" {
		endpoint = "http://" + ln.Addr().String()
	}
	if p.cfg.Register {
		if err := p.register(ctx, endpoint); err != nil {
			ln.Close()
			return err
		}
	}
	u := "http://" + ln.Addr().String()
	p.url.Store(&u)

	// Background parts outlive ctx until the server has drained.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	g, gctx := errgroup.WithContext(bg)
	for _, mid := range p.order {
		if r, ok := p.models[mid].b.(interface{ Run(context.Context) error }); ok {
			g.Go(func() error {
				if err := r.Run(gctx); err != nil && gctx.Err() == nil {
					return fmt.Errorf("provider: backend %s: %w", mid, err)
				}
				return nil
			})
		}
	}
	g.Go(func() error { p.healthLoop(gctx); return nil })
	pollEvery := p.channelPoll(ctx)
	g.Go(func() error { p.redeemLoop(gctx, pollEvery); return nil })

	srv := &http.Server{Handler: p.handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	p.log.Info("provider serving", "url", u, "endpoint", endpoint, "models", p.order)
	close(p.ready)

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("provider: serve: %w", err)
	case <-gctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.ShutdownGrace)
	if serr := srv.Shutdown(sctx); serr != nil {
		_ = srv.Close()
	}
	cancel()
	stopBG()
	if gerr := g.Wait(); err == nil {
		err = gerr
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	p.redeemAll(rctx, 1, "shutdown")
	if ferr := p.pay.compact(); ferr != nil {
		p.log.Error("store channel records", "err", ferr)
		if err == nil {
			err = fmt.Errorf("provider: %w", ferr)
		}
	}
	return err
}

// register registers the provider or updates what changed.
func (p *Provider) register(ctx context.Context, endpoint string) error {
	hw := p.deps.Hardware
	if hw == nil {
		h := DetectHardware(ctx)
		hw = &h
	}
	served := make([]tx.ServedModel, 0, len(p.order))
	for _, mid := range p.order {
		mc := p.models[mid].cfg
		served = append(served, tx.ServedModel{ModelID: mid, PriceInPerMTok: mc.PriceInPerMTok, PriceOutPerMTok: mc.PriceOutPerMTok})
	}
	cur, err := p.deps.Chain.Provider(ctx, p.deps.Address)
	if errors.Is(err, ledger.ErrNotFound) {
		msg := tx.RegisterProvider{Stake: p.cfg.StakeUmyc, Endpoint: endpoint, Hardware: *hw, Models: served}
		if err := p.deps.Chain.Submit(ctx, msg); err != nil {
			return fmt.Errorf("provider: register: %w", err)
		}
		p.log.Info("provider registered", "address", p.deps.Address, "stake_umyc", p.cfg.StakeUmyc, "endpoint", endpoint)
		return nil
	}
	if err != nil {
		return fmt.Errorf("provider: read registration: %w", err)
	}
	var upd tx.UpdateProvider
	if cur.Endpoint != endpoint {
		upd.Endpoint = endpoint
	}
	if !hardwareEqual(cur.Hardware, *hw) && !hw.IsZero() {
		upd.Hardware = *hw
	}
	if !slices.Equal(cur.Models, served) {
		upd.Models = served
	}
	if p.cfg.StakeUmyc > cur.Stake {
		upd.AddStake = p.cfg.StakeUmyc - cur.Stake
	}
	if upd.Endpoint == "" && upd.Hardware.IsZero() && len(upd.Models) == 0 && upd.AddStake == 0 {
		return nil
	}
	if err := p.deps.Chain.Submit(ctx, upd); err != nil {
		return fmt.Errorf("provider: update registration: %w", err)
	}
	p.log.Info("provider registration updated", "address", p.deps.Address, "endpoint", endpoint)
	return nil
}

func hardwareEqual(a, b tx.Hardware) bool {
	return a.CPU == b.CPU && a.Cores == b.Cores && a.RAMBytes == b.RAMBytes && slices.Equal(a.GPUs, b.GPUs)
}

// healthLoop probes every backend; a failing one marks its model unhealthy until it answers.
func (p *Provider) healthLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.HealthInterval)
	defer t.Stop()
	for {
		p.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *Provider) probe(ctx context.Context) {
	var wg sync.WaitGroup
	for _, mid := range p.order {
		m := p.models[mid]
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := m.b.Health(ctx)
			if ctx.Err() != nil {
				return
			}
			p.setHealthy(m, err)
		}()
	}
	wg.Wait()
}

func (p *Provider) setHealthy(m *model, err error) {
	ok := err == nil
	if m.healthy.Swap(ok) != ok {
		if ok {
			p.log.Info("model healthy again", "model", m.cfg.ID)
		} else {
			p.log.Warn("model unhealthy", "model", m.cfg.ID, "err", err)
		}
	}
	v := 0.0
	if ok {
		v = 1
	}
	p.metrics.ModelHealthy.WithLabelValues(m.cfg.ID).Set(v)
}
