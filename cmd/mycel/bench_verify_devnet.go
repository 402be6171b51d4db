package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/devnet/fleet"
	"github.com/mycel-network/mycel/internal/gateway"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
	"github.com/mycel-network/mycel/internal/verifier"
	"github.com/mycel-network/mycel/internal/verifier/cheat"
)

// The devnet phase of `mycel bench verify`: for each cheating strategy a
// fresh devnet and fleet (one validator, the three honest demo providers,
// the cheater, the verifier, the gateway, as `mycel demo`), user requests
// through the gateway's OpenAI API until the ledger slashes the cheater or
// a cap is hit; then an honest-only run (with a provider behind Ollama when
// bin/ollama exists) counting false accusations.

// devnetBenchConfig configures benchVerifyDevnet.
type devnetBenchConfig struct {
	Cheaters    []string
	MaxRequests int           // per run
	MaxDuration time.Duration // per run, from the first request
	HonestN     int           // cap of user requests of the honest-only run; 0 skips it
	HonestTime  time.Duration // the honest-only run's traffic lasts this long (or until HonestN)
	HonestShop  time.Duration // the verifier's pause between shopper requests in the honest-only run
	Rate        float64       // user requests a second (one at a time); 0: back to back
	// HonestBuiltin is how many built-in demo providers run beside the one
	// behind Ollama in the honest-only run (0: all three); without Ollama
	// all three run.
	HonestBuiltin int
	Ollama        string // path of the ollama binary; "" leaves it out
	ModelsDir     string // demo models, shared by the runs
	Mix           verifier.Mix
	Seed          uint64
	ShopEvery     time.Duration // the verifier's pause between shopper requests
	Logger        *slog.Logger
	Progress      func(string)
}

// devnetCheatRun is what one cheater's run measured. Counts of requests
// are up to the moment the slash was seen (or the cap).
type devnetCheatRun struct {
	Strategy string `json:"strategy"`
	Caught   bool   `json:"caught"`  // slashed and jailed within the cap
	Sent     int    `json:"sent"`    // user requests sent through the gateway
	Errors   int    `json:"errors"`  // of those, answered with an error
	Served   uint64 `json:"served"`  // the users' answers the cheater served (part of)
	Audited  uint64 `json:"shopped"` // the verifier's shopper requests (through the gateway) it got
	// From the cheater's first served request (gateway or shopper) to the
	// slash: wall seconds (as seen by polling, ±0.5 s) and blocks.
	SecondsToSlash float64 `json:"seconds_to_slash,omitempty"`
	BlocksToSlash  int64   `json:"blocks_to_slash,omitempty"`
	// Heights: the first served request, the first evidence against the
	// cheater, the slash.
	FirstServedHeight int64   `json:"first_served_height"`
	EvidenceHeight    int64   `json:"evidence_height,omitempty"`
	SlashHeight       int64   `json:"slash_height,omitempty"`
	Verdict           string  `json:"verdict,omitempty"` // of the first evidence
	Evidence          int     `json:"evidence"`          // records against the cheater
	HonestEvidence    int     `json:"honest_evidence"`   // records against honest providers
	HonestSlashed     int     `json:"honest_slashed"`    // slashes of honest providers
	Elapsed           float64 `json:"elapsed_seconds"`   // the whole run, start-up included
	Error             string  `json:"error,omitempty"`
	LastRequestError  string  `json:"last_request_error,omitempty"`
	// Accused are the evidence records against honest providers.
	Accused []devnetAccusation `json:"accusations,omitempty"`
}

// devnetHonestProvider is one provider of the honest-only run.
type devnetHonestProvider struct {
	Name     string `json:"name"`
	Engine   string `json:"engine"`
	Served   uint64 `json:"served"`   // the users' answers it served (part of)
	Answered uint64 `json:"answered"` // every answered request (users' and shopper's)
	Shopped  uint64 `json:"shopped"`  // the gateway's other requests to it: the verifier's shopper requests (every one re-checked)
	Evidence int    `json:"evidence"`
	Slashed  int    `json:"slashed"`
}

// devnetAccusation is an evidence record against an honest provider.
type devnetAccusation struct {
	Provider string             `json:"provider"`
	Status   string             `json:"status"`
	Summary  tx.EvidenceSummary `json:"summary"`
	Request  string             `json:"request,omitempty"` // the audited request's body
	Tokens   int                `json:"answer_tokens"`
	Logprobs bool               `json:"answer_logprobs"` // the answer carried logprobs
}

func accusationOf(e ledger.Evidence, name string) devnetAccusation {
	a := devnetAccusation{Provider: name, Status: e.Status, Summary: e.Summary}
	if m := e.Material; m != nil {
		a.Request, a.Tokens, a.Logprobs = m.Request, len(m.TokenIDs), len(m.LogprobBits) > 0
	}
	return a
}

// devnetHonestRun is the honest-only run.
type devnetHonestRun struct {
	Sent      int                    `json:"sent"`
	Errors    int                    `json:"errors"`
	Seconds   float64                `json:"traffic_seconds"`
	ShopEvery float64                `json:"shop_every_seconds"`
	Providers []devnetHonestProvider `json:"providers"`
	Evidence  int                    `json:"evidence"` // false accusations, all providers
	Accused   []devnetAccusation     `json:"accusations,omitempty"`
	Slashed   int                    `json:"slashed"`
	Ollama    string                 `json:"ollama"` // "" or why it was left out
	Elapsed   float64                `json:"elapsed_seconds"`
	Error     string                 `json:"error,omitempty"`
}

// devnetBenchReport is the devnet phase's outcome.
type devnetBenchReport struct {
	MaxRequests int              `json:"max_requests"`
	MaxSeconds  float64          `json:"max_seconds"`
	Rate        float64          `json:"user_requests_per_second"`
	VoteBlocks  int              `json:"evidence_vote_blocks"`
	EpochLength int              `json:"epoch_length"`
	BlockMs     int              `json:"timeout_commit_ms"`
	ShopEvery   float64          `json:"shop_every_seconds"`
	Cheaters    []devnetCheatRun `json:"cheaters"`
	Honest      *devnetHonestRun `json:"honest,omitempty"`
	Elapsed     float64          `json:"elapsed_seconds"`
}

// The devnet's short epochs and vote windows, as `mycel demo`.
const (
	devnetEpochLength   = 40
	devnetVoteBlocks    = 10
	devnetTimeoutCommit = 300 * time.Millisecond
)

// benchVerifyDevnet runs the devnet phase. A run that fails to start is
// reported with its error; the phase goes on with the next.
func benchVerifyDevnet(ctx context.Context, cfg devnetBenchConfig) devnetBenchReport {
	start := time.Now()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string) {}
	}
	if cfg.ShopEvery <= 0 {
		cfg.ShopEvery = 3 * time.Second
	}
	rep := devnetBenchReport{Rate: cfg.Rate, MaxRequests: cfg.MaxRequests, MaxSeconds: cfg.MaxDuration.Seconds(), VoteBlocks: devnetVoteBlocks,
		EpochLength: devnetEpochLength, BlockMs: int(devnetTimeoutCommit / time.Millisecond), ShopEvery: cfg.ShopEvery.Seconds()}
	for _, c := range cfg.Cheaters {
		if ctx.Err() != nil {
			break
		}
		cfg.Progress(fmt.Sprintf("devnet: cheater %s: starting a fresh network", c))
		r := runCheatDevnet(ctx, cfg, c)
		cfg.Progress(fmt.Sprintf("devnet: cheater %s: caught %v after %d served + %d shopped requests, %.1fs / %d blocks to slash, honest accused %d (run %.0fs) %s",
			c, r.Caught, r.Served, r.Audited, r.SecondsToSlash, r.BlocksToSlash, r.HonestEvidence, r.Elapsed, r.Error))
		rep.Cheaters = append(rep.Cheaters, r)
	}
	if cfg.HonestN > 0 && ctx.Err() == nil {
		cfg.Progress("devnet: honest-only run")
		h := runHonestDevnet(ctx, cfg)
		rep.Honest = &h
	}
	rep.Elapsed = time.Since(start).Seconds()
	return rep
}

// benchNet is one running devnet with its fleet.
type benchNet struct {
	d      *devnet.Devnet
	fl     *fleet.Fleet
	client *chainclient.Client
	stop   func()
}

// startBenchNet starts a fresh devnet in a temporary directory and the
// fleet on it, and waits until every provider is ready.
func startBenchNet(ctx context.Context, cfg devnetBenchConfig, cheater string, demoProviders int, engines []fleet.Engine) (_ *benchNet, err error) {
	dir, err := os.MkdirTemp("", "mycel-bench-verify-devnet-")
	if err != nil {
		return nil, fmt.Errorf("devnet: %w", err)
	}
	var cleanups []func()
	stop := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	d, err := devnet.New(devnet.Config{
		Dir: dir, Logger: cfg.Logger,
		Genesis: func(g *ledger.Genesis) error {
			g.Params.EpochLength = devnetEpochLength
			g.Params.EvidenceVoteBlocks = devnetVoteBlocks
			return nil
		},
		Tune: func(c *cmtcfg.Config) { c.Consensus.TimeoutCommit = devnetTimeoutCommit },
	})
	if err != nil {
		return nil, err
	}
	// The chain outlives the daemons: providers redeem vouchers as they stop.
	chainCtx, stopChain := context.WithCancel(context.WithoutCancel(ctx))
	chainDone := make(chan error, 1)
	go func() { chainDone <- d.Run(chainCtx) }()
	cleanups = append(cleanups, func() { stopChain(); <-chainDone })
	if err := d.WaitHeight(ctx, 0, 1); err != nil {
		return nil, fmt.Errorf("devnet: chain did not start: %w", err)
	}
	fl, err := fleet.New(ctx, fleet.Config{Devnet: d, ModelsDir: cfg.ModelsDir, GatewayAddr: "127.0.0.1:0", Cheater: cheater,
		DemoProviders: demoProviders, Engines: engines, ShopEvery: cfg.ShopEvery, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	fleetDone := make(chan error, 1)
	ready := make(chan struct{})
	go func() { fleetDone <- fl.Run(runCtx, func() { close(ready) }) }()
	cleanups = append(cleanups, func() { cancel(); <-fleetDone })
	select {
	case <-ready:
	case err := <-fleetDone:
		fleetDone <- err // for the cleanup
		return nil, fmt.Errorf("devnet: fleet: %w", err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	client, err := d.Client(0)
	if err != nil {
		return nil, err
	}
	return &benchNet{d: d, fl: fl, client: client, stop: stop}, nil
}

// userTraffic sends the users' requests through the gateway, one at a
// time, at most rate a second.
type userTraffic struct {
	url, key string
	mix      verifier.Mix
	seed     uint64
	rate     float64 // requests a second; 0: back to back
	start    time.Time
	sent     int
	errors   int

	mu     sync.Mutex
	served map[string]uint64 // users' answers by provider (the gateway's X-Mycel-Provider)
}

// servedBy is how many of the users' answers provider addr served (part of).
func (u *userTraffic) servedBy(addr string) uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.served[addr]
}

// next fires when request number u.sent is due.
func (u *userTraffic) next() <-chan time.Time {
	if u.start.IsZero() {
		u.start = time.Now()
	}
	var wait time.Duration
	if u.rate > 0 {
		wait = time.Until(u.start.Add(time.Duration(float64(u.sent) / u.rate * float64(time.Second))))
	}
	return time.After(max(wait, 0))
}

func (u *userTraffic) send(ctx context.Context) error {
	p := u.mix.Draw(u.seed, u.sent)
	system, user := verifier.PoolPrompt(p.PoolIndex)
	body := verifier.RequestBody(fleet.ServedModel, p, system, user)
	u.sent++
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.url+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+u.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		u.errors++
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		u.errors++
		return fmt.Errorf("gateway: %s %.200s (%v)", resp.Status, raw, err)
	}
	// A stream names every provider that served part of it in its trailer, read with the body.
	names := resp.Trailer.Get(gateway.HeaderProvider)
	if names == "" {
		names = resp.Header.Get(gateway.HeaderProvider)
	}
	u.mu.Lock()
	if u.served == nil {
		u.served = map[string]uint64{}
	}
	for _, a := range strings.Split(names, ",") {
		if a = strings.TrimSpace(a); a != "" {
			u.served[a]++
		}
	}
	u.mu.Unlock()
	return nil
}

// ledgerView is what the runs read back from the ledger.
type ledgerView struct {
	evidence []ledger.Evidence
	slashes  []ledger.SlashRecord
}

func readLedger(ctx context.Context, c *chainclient.Client) (ledgerView, error) {
	var v ledgerView
	if err := c.Query(ctx, "evidence", nil, &v.evidence); err != nil {
		return v, fmt.Errorf("query evidence: %w", err)
	}
	if err := c.Query(ctx, "slashes", nil, &v.slashes); err != nil {
		return v, fmt.Errorf("query slashes: %w", err)
	}
	return v, nil
}

// providerSlashes counts the slashes of providers with these addresses.
func (v ledgerView) providerSlashes(addrs map[string]bool) int {
	n := 0
	for _, s := range v.slashes {
		if s.Role == "provider" && addrs[s.Address] {
			n++
		}
	}
	return n
}

func runCheatDevnet(ctx context.Context, cfg devnetBenchConfig, strategy string) (r devnetCheatRun) {
	start := time.Now()
	r.Strategy = strategy
	defer func() { r.Elapsed = time.Since(start).Seconds() }()
	n, err := startBenchNet(ctx, cfg, strategy, 0, nil)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer n.stop()
	var cheater *fleet.Provider
	honest := map[string]bool{}
	names := n.fl.Names()
	for _, p := range n.fl.Providers() {
		if p.Cheat != "" {
			cheater = p
		} else {
			honest[p.Address] = true
		}
	}
	if cheater == nil {
		r.Error = "the fleet has no cheater"
		return r
	}
	runCtx, cancel := context.WithTimeout(ctx, cfg.MaxDuration)
	defer cancel()

	// The watcher polls the gateway, the cheater and the ledger twice a
	// second; the sender stops when it sees the slash.
	type seen struct {
		served, shopped uint64
		firstAt         time.Time
		firstHeight     int64
		slash           *ledger.SlashRecord
		slashAt         time.Time
		view            ledgerView
		err             error
	}
	u := &userTraffic{url: n.fl.GatewayURL(), key: n.fl.APIKey(), mix: cfg.Mix, seed: cfg.Seed, rate: cfg.Rate}
	results := make(chan seen, 1)
	slashed := make(chan struct{})
	go func() {
		var s seen
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		defer func() { results <- s }()
		for {
			var gw uint64
			for _, p := range n.fl.Traffic().Providers {
				if p.Address == cheater.Address {
					gw = p.Requests
				}
			}
			answered := cheater.Answered()
			if s.firstAt.IsZero() && (gw > 0 || answered > 0) {
				s.firstAt, s.firstHeight = time.Now(), n.d.Height(0)
			}
			v, err := readLedger(runCtx, n.client)
			if err == nil {
				s.view = v
				for i, sl := range v.slashes {
					if sl.Address == cheater.Address && sl.Role == "provider" && s.slash == nil {
						s.slash, s.slashAt = &v.slashes[i], time.Now()
					}
				}
			}
			// Counts stop at the slash: what the cheater got away with. The verifier shops
			// through the gateway too: what the gateway sent the cheater beyond the users'
			// answers it served are the shopper requests.
			s.served = u.servedBy(cheater.Address)
			if gw > s.served {
				s.shopped = gw - s.served
			}
			if s.slash != nil {
				close(slashed)
				return
			}
			select {
			case <-runCtx.Done():
				if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
					s.err = err
				}
				return
			case <-t.C:
			}
		}
	}()
	var lastErr error
send:
	for u.sent < cfg.MaxRequests {
		select {
		case <-slashed:
			break send
		case <-runCtx.Done():
			break send
		case <-u.next():
		}
		if err := u.send(runCtx); err != nil && runCtx.Err() == nil {
			lastErr = err
		}
	}
	if u.sent >= cfg.MaxRequests {
		// The cap of requests is hit: give the network until the time cap
		// to finish a vote already under way.
		select {
		case <-slashed:
		case <-runCtx.Done():
		}
	}
	cancel()
	s := <-results
	r.Sent, r.Errors, r.Served, r.Audited = u.sent, u.errors, s.served, s.shopped
	r.FirstServedHeight = s.firstHeight
	// The final ledger view, after the run: false accusations filed late count too.
	if v, err := readLedger(ctx, n.client); err == nil {
		s.view = v
	}
	for _, e := range s.view.evidence {
		if e.Provider == cheater.Address {
			if r.Evidence == 0 {
				r.EvidenceHeight, r.Verdict = e.Height, e.Summary.Verdict
			}
			r.Evidence++
		} else {
			r.HonestEvidence++
			r.Accused = append(r.Accused, accusationOf(e, names[e.Provider]))
		}
	}
	r.HonestSlashed = s.view.providerSlashes(honest)
	if s.slash != nil {
		var pv ledger.ProviderView
		if err := n.client.Query(ctx, "provider/"+cheater.Address, nil, &pv); err != nil {
			r.Error = fmt.Sprintf("query the cheater: %v", err)
		}
		r.Caught = pv.Jailed && !pv.Active
		r.SlashHeight = s.slash.Height
		if !s.firstAt.IsZero() {
			r.SecondsToSlash = s.slashAt.Sub(s.firstAt).Seconds()
			r.BlocksToSlash = s.slash.Height - s.firstHeight
		}
	}
	if s.err != nil {
		r.Error = s.err.Error()
	}
	if lastErr != nil {
		r.LastRequestError = lastErr.Error()
	}
	return r
}

// runHonestDevnet runs the three honest demo providers, and one behind
// Ollama when cfg.Ollama is set, with no cheater: every evidence record and
// every slash of a provider is a false accusation.
func runHonestDevnet(ctx context.Context, cfg devnetBenchConfig) (h devnetHonestRun) {
	start := time.Now()
	defer func() { h.Elapsed = time.Since(start).Seconds() }()
	var engines []fleet.Engine
	if cfg.Ollama == "" {
		h.Ollama = "left out: no ollama binary (build it with scripts/build-peer.sh)"
	} else {
		base, stop, err := startOllama(ctx, cfg.Ollama, filepath.Join(cfg.ModelsDir, fleet.ServedModel+".gguf"), fleet.ServedModel)
		if err != nil {
			h.Ollama = "left out: " + err.Error()
		} else {
			defer stop()
			engines = append(engines, fleet.Engine{Name: "ollama", BaseURL: base + "/v1", Profile: "ollama", ModelName: fleet.ServedModel})
		}
	}
	cfg.Progress("devnet: honest-only run: " + map[bool]string{true: "with a provider behind Ollama", false: h.Ollama}[len(engines) > 0])
	hc := cfg
	if hc.HonestShop > 0 {
		hc.ShopEvery = hc.HonestShop
	}
	h.ShopEvery = hc.ShopEvery.Seconds()
	builtin := 0 // all three
	if len(engines) > 0 {
		// Fewer built-in providers: more of the verifier's audits go to the engine's.
		builtin = cfg.HonestBuiltin
	}
	n, err := startBenchNet(ctx, hc, "", builtin, engines)
	if err != nil {
		h.Error = err.Error()
		return h
	}
	defer n.stop()
	runCtx, cancel := context.WithTimeout(ctx, cfg.HonestTime)
	defer cancel()
	u := &userTraffic{url: n.fl.GatewayURL(), key: n.fl.APIKey(), mix: cfg.Mix, seed: cfg.Seed ^ 0x40e57, rate: cfg.Rate}
	trafficStart := time.Now()
	for u.sent < cfg.HonestN {
		select {
		case <-runCtx.Done():
		case <-u.next():
		}
		if runCtx.Err() != nil {
			break
		}
		if err := u.send(runCtx); err != nil && runCtx.Err() == nil {
			cfg.Logger.Warn("honest request", "err", err)
		}
	}
	h.Sent, h.Errors, h.Seconds = u.sent, u.errors, time.Since(trafficStart).Seconds()
	v, err := readLedger(ctx, n.client)
	if err != nil {
		h.Error = err.Error()
		return h
	}
	gw := map[string]uint64{}
	for _, p := range n.fl.Traffic().Providers {
		gw[p.Address] = p.Requests
	}
	for _, p := range n.fl.Providers() {
		hp := devnetHonestProvider{Name: p.Name, Engine: p.Engine(), Served: u.servedBy(p.Address), Answered: p.Answered()}
		if gw[p.Address] > hp.Served {
			hp.Shopped = gw[p.Address] - hp.Served // the verifier shops through the gateway
		}
		for _, e := range v.evidence {
			if e.Provider == p.Address {
				hp.Evidence++
				h.Accused = append(h.Accused, accusationOf(e, p.Name))
			}
		}
		hp.Slashed = v.providerSlashes(map[string]bool{p.Address: true})
		h.Evidence += hp.Evidence
		h.Slashed += hp.Slashed
		h.Providers = append(h.Providers, hp)
	}
	return h
}

// startOllama serves gguf as model name with the ollama binary on a free
// 127.0.0.1 port (as internal/provider's Ollama peer test does) and returns
// its base URL and a stop function.
func startOllama(ctx context.Context, bin, gguf, name string) (string, func(), error) {
	home, err := os.MkdirTemp("", "mycel-bench-ollama-")
	if err != nil {
		return "", nil, fmt.Errorf("ollama: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(home)
		return "", nil, fmt.Errorf("ollama: %w", err)
	}
	host := ln.Addr().String()
	ln.Close()
	env := append(os.Environ(), "OLLAMA_HOST="+host, "OLLAMA_MODELS="+filepath.Join(home, "models"), "HOME="+home)
	logf, err := os.Create(filepath.Join(home, "ollama.log"))
	if err != nil {
		os.RemoveAll(home)
		return "", nil, fmt.Errorf("ollama: %w", err)
	}
	serve := exec.Command(bin, "serve")
	serve.Env, serve.Stdout, serve.Stderr = env, logf, logf
	if err := serve.Start(); err != nil {
		logf.Close()
		os.RemoveAll(home)
		return "", nil, fmt.Errorf("ollama serve: %w", err)
	}
	stop := func() {
		stopOllama(serve)
		logf.Close()
		os.RemoveAll(home)
	}
	fail := func(err error) (string, func(), error) {
		b, _ := os.ReadFile(filepath.Join(home, "ollama.log"))
		stop()
		if len(b) > 400 {
			b = b[len(b)-400:]
		}
		return "", nil, fmt.Errorf("%w (log: %s)", err, strings.TrimSpace(string(b)))
	}
	base := "http://" + host
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/api/version")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fail(fmt.Errorf("ollama did not come up: %w", err))
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	mf := filepath.Join(home, "Modelfile")
	if err := os.WriteFile(mf, []byte("FROM "+gguf+"\n"), 0o644); err != nil {
		return fail(fmt.Errorf("ollama: %w", err))
	}
	create := exec.CommandContext(ctx, bin, "create", name, "-f", mf)
	create.Env = env
	if out, err := create.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("ollama create: %w: %s", err, out))
	}
	return base, stop, nil
}

// printDevnetReport writes the devnet phase's tables.
func printDevnetReport(w io.Writer, rep devnetBenchReport) error {
	fmt.Fprintf(w, "DEVNET: a fresh network per run (1 validator, honest demo providers, 1 verifier re-checking every shopper answer, shopping every %.0fs, the gateway); epochs of %d blocks, vote window %d blocks, %d ms commit timeout\n",
		rep.ShopEvery, rep.EpochLength, rep.VoteBlocks, rep.BlockMs)
	if len(rep.Cheaters) > 0 {
		fmt.Fprintf(w, "per cheater: user requests (the users' mix) through the gateway's OpenAI API, one at a time, %g a second, until the slash or %d requests / %.0fs; counts are up to the slash, seconds and blocks from the cheater's first answered request to the slash\n",
			rep.Rate, rep.MaxRequests, rep.MaxSeconds)
		if err := printCheatRuns(w, rep.Cheaters); err != nil {
			return err
		}
	}
	if err := printHonestRun(w, rep.Honest); err != nil {
		return err
	}
	fmt.Fprintf(w, "devnet phase elapsed %.0fs\n", rep.Elapsed)
	return nil
}

// printCheatRuns writes the devnet phase's table of cheaters.
func printCheatRuns(w io.Writer, runs []devnetCheatRun) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHEATER\tCAUGHT\tUSER REQS SENT\tSERVED BY CHEATER\tSHOPPED FROM IT\tSECONDS TO SLASH\tBLOCKS TO SLASH\tEVIDENCE\tVERDICT\tHONEST ACCUSED\tHONEST SLASHED\tRUN\tERROR")
	for _, r := range runs {
		secs, blocks := "-", "-"
		if r.SlashHeight > 0 {
			secs, blocks = fmt.Sprintf("%.1f", r.SecondsToSlash), fmt.Sprintf("%d", r.BlocksToSlash)
		}
		errText := r.Error
		if errText == "" && r.Errors > 0 {
			errText = fmt.Sprintf("%d request errors, last: %.80s", r.Errors, r.LastRequestError)
		}
		fmt.Fprintf(tw, "%s\t%v\t%d\t%d\t%d\t%s\t%s\t%d\t%s\t%d\t%d\t%.0fs\t%s\n", r.Strategy, r.Caught, r.Sent, r.Served, r.Audited,
			secs, blocks, r.Evidence, r.Verdict, r.HonestEvidence, r.HonestSlashed, r.Elapsed, errText)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range runs {
		printAccusations(w, r.Accused)
	}
	return nil
}

func printAccusations(w io.Writer, as []devnetAccusation) {
	for _, a := range as {
		fmt.Fprintf(w, "FALSE ACCUSATION of %s (%s): verdict %s, %d of %d positions mismatched, max |dlogprob| %.3g, %d tokens claimed / %d expected; answer of %d tokens, logprobs %v; request %.300s\n",
			a.Provider, a.Status, a.Summary.Verdict, a.Summary.Mismatches, a.Summary.PositionsChecked, float64(a.Summary.MaxLogprobDevMicro)/1e6,
			a.Summary.ClaimedTokens, a.Summary.ExpectedTokens, a.Tokens, a.Logprobs, a.Request)
	}
}

// printHonestRun writes the devnet phase's honest-only table.
func printHonestRun(w io.Writer, h *devnetHonestRun) error {
	if h != nil {
		fmt.Fprintf(w, "\nDEVNET honest-only, %.0fs of traffic, the verifier shopping every %.0fs: %d user requests (%d errors), %d evidence records, %d provider slashes; Ollama: %s%s\n",
			h.Seconds, h.ShopEvery, h.Sent, h.Errors, h.Evidence, h.Slashed, orDash(h.Ollama, "included"), map[bool]string{true: "; error: " + h.Error, false: ""}[h.Error != ""])
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PROVIDER\tENGINE\tSERVED (USERS)\tSHOPPED + RE-CHECKED\tEVIDENCE\tSLASHED")
		for _, p := range h.Providers {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", p.Name, p.Engine, p.Served, p.Shopped, p.Evidence, p.Slashed)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		printAccusations(w, h.Accused)
	}
	return nil
}

func orDash(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

// devnetFailure is the devnet phase's verdict: a cheater not caught, or any
// honest provider accused or slashed.
func devnetFailure(rep devnetBenchReport) error {
	var bad []string
	for _, r := range rep.Cheaters {
		if !r.Caught {
			bad = append(bad, r.Strategy+" not caught")
		}
		if r.HonestEvidence > 0 || r.HonestSlashed > 0 {
			bad = append(bad, fmt.Sprintf("%s run: %d honest accusations, %d honest slashes", r.Strategy, r.HonestEvidence, r.HonestSlashed))
		}
	}
	if h := rep.Honest; h != nil && (h.Evidence > 0 || h.Slashed > 0) {
		bad = append(bad, fmt.Sprintf("honest run: %d accusations, %d slashes", h.Evidence, h.Slashed))
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("bench verify: devnet: %s", strings.Join(bad, "; "))
}

// devnetFlags are the devnet phase's flags of `mycel bench verify`.
type devnetFlags struct {
	on, only      *bool
	cheaters      *string
	maxRequests   *int
	maxTime       *time.Duration
	honest        *int
	honestTime    *time.Duration
	honestShop    *time.Duration
	rate          *float64
	honestBuiltin *int
	ollama        *string
	shopEvery     *time.Duration
	logLevel      *string
}

func addDevnetFlags(fs *flag.FlagSet) devnetFlags {
	return devnetFlags{
		on:            fs.Bool("devnet", false, "also run the devnet phase: per cheater a fresh network, requests through the gateway until the ledger slashes it"),
		only:          fs.Bool("devnet-only", false, "run only the devnet phase"),
		cheaters:      fs.String("devnet-cheaters", strings.Join(allCheaters(), ","), "cheaters of the devnet phase, comma-separated"),
		maxRequests:   fs.Int("devnet-max-requests", 400, "cap of user requests per devnet run"),
		maxTime:       fs.Duration("devnet-max-time", 3*time.Minute, "cap of one devnet run's traffic"),
		honest:        fs.Int("devnet-honest", 2000, "cap of user requests of the devnet's honest-only run (0 skips it)"),
		honestShop:    fs.Duration("devnet-honest-shop-every", time.Second, "the devnet verifier's pause between shopper requests in the honest-only run"),
		honestBuiltin: fs.Int("devnet-honest-builtin", 1, "built-in providers beside the one behind Ollama in the honest-only run (1-3; all three without Ollama)"),
		rate:          fs.Float64("devnet-rate", 5, "user requests a second through the gateway (0: back to back)"),
		honestTime:    fs.Duration("devnet-honest-time", 150*time.Second, "how long the devnet's honest-only run sends requests (the verifier shops meanwhile)"),
		ollama:        fs.String("ollama", "bin/ollama", "ollama binary for the honest-only run's provider behind Ollama (left out if missing)"),
		shopEvery:     fs.Duration("devnet-shop-every", 3*time.Second, "the devnet verifier's pause between shopper requests"),
		logLevel:      fs.String("devnet-log-level", "error", "log level of the devnet's daemons: debug|info|warn|error"),
	}
}

func allCheaters() []string {
	var out []string
	for _, s := range cheat.Strategies() {
		out = append(out, string(s))
	}
	return out
}

// runDevnetPhase runs the devnet phase with the flags' settings.
func runDevnetPhase(ctx context.Context, f devnetFlags, models string, mix verifier.Mix, seed uint64, stderr io.Writer) (devnetBenchReport, error) {
	var cheaters []string
	for _, c := range strings.Split(*f.cheaters, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		if !slices.Contains(allCheaters(), c) {
			return devnetBenchReport{}, fmt.Errorf("bench verify: --devnet-cheaters: %q: want some of %s", c, strings.Join(allCheaters(), ","))
		}
		cheaters = append(cheaters, c)
	}
	if *f.maxRequests <= 0 || *f.maxTime <= 0 || *f.honestTime <= 0 {
		return devnetBenchReport{}, errors.New("bench verify: --devnet-max-requests, --devnet-max-time and --devnet-honest-time must be positive")
	}
	logger, err := newLogger(stderr, *f.logLevel)
	if err != nil {
		return devnetBenchReport{}, fmt.Errorf("bench verify: %w", err)
	}
	ollama := *f.ollama
	if ollama != "" {
		if _, err := os.Stat(ollama); err != nil {
			fmt.Fprintf(stderr, "bench verify: no ollama at %s (build it with scripts/build-peer.sh); the honest-only run leaves it out\n", ollama)
			ollama = ""
		} else if abs, err := filepath.Abs(ollama); err == nil {
			ollama = abs
		}
	}
	return benchVerifyDevnet(ctx, devnetBenchConfig{
		Cheaters: cheaters, MaxRequests: *f.maxRequests, MaxDuration: *f.maxTime, HonestN: *f.honest, HonestTime: *f.honestTime, HonestShop: *f.honestShop, Rate: *f.rate, HonestBuiltin: *f.honestBuiltin, Ollama: ollama,
		ModelsDir: models, Mix: mix, Seed: seed, ShopEvery: *f.shopEvery, Logger: logger,
		Progress: func(s string) { fmt.Fprintln(stderr, s) },
	}), nil
}

// stopOllama stops an `ollama serve` process: interrupted, it unloads its model runners
// (child processes that a kill of the server alone would leave running) and exits; killed
// if it has not exited within 10 s.
func stopOllama(serve *exec.Cmd) {
	done := make(chan struct{})
	go func() {
		_ = serve.Wait()
		close(done)
	}()
	if serve.Process.Signal(os.Interrupt) == nil {
		select {
		case <-done:
			return
		case <-time.After(10 * time.Second):
		}
	}
	_ = serve.Process.Kill()
	<-done
}
