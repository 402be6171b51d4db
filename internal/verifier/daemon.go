package verifier

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
)

// Chain is what the verifier daemon needs from the ledger (a thin layer over
// chainclient in cmd/mycel; a fake in tests).
type Chain interface {
	// Epoch returns the current epoch.
	Epoch(ctx context.Context) (ledger.EpochView, error)
	// Providers lists the registered providers.
	Providers(ctx context.Context) ([]ledger.ProviderView, error)
	// ModelSHA256 returns the registered file hash of a model id.
	ModelSHA256(ctx context.Context, modelID string) (string, error)
	// Evidence lists evidence still open for votes.
	Evidence(ctx context.Context) ([]ledger.Evidence, error)
	// Registered reports whether this verifier is registered and active.
	Registered(ctx context.Context) (bool, error)
	// Submit signs and submits msgs in one transaction and waits for it.
	// An error wrapping ErrRefused means the ledger refused it; any other
	// error leaves open whether it landed (a timeout).
	Submit(ctx context.Context, msgs ...any) error
}

// ErrRefused marks a transaction the ledger refused: it did not land and
// will not.
var ErrRefused = errors.New("refused by the ledger")

// Shopped is one shopper request and what came back.
type Shopped struct {
	Body     []byte // the request body sent
	System   string
	User     string
	Params   ShopperParams
	Answer   Answer
	Receipt  channel.Receipt
	Duration time.Duration
}

// Shopper sends requests that look like any consumer's to a provider and
// returns the answer with the provider's signed receipt.
type Shopper interface {
	Shop(ctx context.Context, p ledger.ProviderView, modelID string, params ShopperParams) (Shopped, error)
}

// Checkers returns the checker of a registered model file (loading the file
// by its hash); an error means the verifier cannot re-check that model.
type Checkers interface {
	Checker(ctx context.Context, sha256Hex string) (*Checker, PromptFunc, error)
}

// PromptFunc builds the reference prompt token ids of a system and user
// message (Prompt with the model's template and tokenizer).
type PromptFunc func(system, user string) ([]int32, error)

// Config configures a Verifier.
type Config struct {
	Address string // the verifier's account
	Stake   uint64 // registered when not yet a verifier
	// ShopEvery is the pause between shopper requests (jittered ±50%).
	ShopEvery time.Duration
	// Poll is how often the ledger's epoch is read.
	Poll time.Duration
	// AuditFloorBps and AuditCleanEpochs are the ledger's audit schedule
	// parameters (params query).
	AuditFloorBps, AuditCleanEpochs uint64
	// RecheckAll re-checks every shopped answer, not only those the seed
	// selects (the selected ones are always re-checked and reported).
	RecheckAll bool
	// EvidenceBond is locked with every accusation.
	EvidenceBond uint64
	// CapacityTokens is the output length of a capacity job.
	CapacityTokens int
	Mix            Mix
	Bands          Bands
	Logger         *slog.Logger
	// StateDir holds StateFile, the state a restarted daemon needs to
	// reveal its seeds and weights and report its audits (empty: the state
	// lives only in memory).
	StateDir string
}

func (c *Config) setDefaults() {
	if c.ShopEvery <= 0 {
		c.ShopEvery = 2 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.AuditFloorBps == 0 {
		c.AuditFloorBps = 500
	}
	if c.AuditCleanEpochs == 0 {
		c.AuditCleanEpochs = 30
	}
	if c.CapacityTokens <= 0 {
		c.CapacityTokens = 64
	}
	if c.Mix.MaxTokens == nil {
		c.Mix = DefaultMix()
	}
}

// Verifier is the verifier daemon: it shops, re-checks, accuses, votes,
// proves capacity and commits weights, epoch after epoch.
type Verifier struct {
	cfg      Config
	chain    Chain
	shop     Shopper
	checkers Checkers
	log      *slog.Logger
	rand     io.Reader

	saveMu    sync.Mutex // orders the writes of StateFile
	mu        sync.Mutex
	epoch     uint64
	seeds     map[uint64][]byte // epoch -> secret audit seed
	committed map[uint64]bool   // epochs whose seed is committed
	unsure    map[uint64]bool   // epochs whose seed commitment was in flight when the last run stopped
	seedTried map[uint64]bool   // epochs whose seed commitment was sent (once is enough)
	started   map[uint64]bool   // epochs whose start (reveals of the previous one) is done
	reveals   map[uint64]int    // reveal attempts per epoch
	weights   map[uint64]weightCommit
	tallies   map[string]*Tally // provider -> this epoch's audits
	capacity  map[string]bool   // provider/epoch measured
	voted     map[uint64]bool
	material  map[string]Shopped     // request id -> what this verifier sent and got (for votes)
	accused   map[string]bool        // request ids accused
	exact     map[string]bool        // providers seen on the built-in engine
	shopped   map[uint64][]auditLeaf // epoch -> this verifier's shopper receipts, in order
	anchored  map[uint64]bool        // epochs whose shopper receipts are closed (their anchor is sent or on the ledger)
	anchorOK  map[uint64]bool        // epochs whose anchor the ledger took
	reported  map[uint64]bool        // epochs whose audit reports are on the ledger
	reportTry map[uint64]int         // anchor/report attempts per epoch
	n         int
}

// auditLeaf is one shopper receipt of an epoch and what its audit found.
type auditLeaf struct {
	leaf            tx.AnchorLeaf
	audited, failed bool
}

type weightCommit struct {
	weights   []tx.ProviderWeight
	salt      string
	hash      string
	committed bool // the ledger took it (false: in flight)
}

// New returns a verifier. rand supplies the secret seeds and salts (nil:
// crypto/rand).
func New(cfg Config, chain Chain, shop Shopper, checkers Checkers, rnd io.Reader) (*Verifier, error) {
	if chain == nil || shop == nil || checkers == nil {
		return nil, errors.New("new verifier: chain, shopper and checkers are required")
	}
	if cfg.Address == "" {
		return nil, errors.New("new verifier: address is required")
	}
	cfg.setDefaults()
	if cfg.Bands.Alpha == 0 {
		cfg.Bands = DefaultBands()
	}
	if err := cfg.Bands.Validate(); err != nil {
		return nil, fmt.Errorf("new verifier: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	v := &Verifier{
		cfg: cfg, chain: chain, shop: shop, checkers: checkers, log: log, rand: rnd,
		seeds: map[uint64][]byte{}, committed: map[uint64]bool{}, unsure: map[uint64]bool{}, weights: map[uint64]weightCommit{},
		seedTried: map[uint64]bool{}, started: map[uint64]bool{}, reveals: map[uint64]int{},
		tallies: map[string]*Tally{}, capacity: map[string]bool{}, voted: map[uint64]bool{},
		material: map[string]Shopped{}, accused: map[string]bool{}, exact: map[string]bool{},
		shopped: map[uint64][]auditLeaf{}, anchored: map[uint64]bool{}, anchorOK: map[uint64]bool{}, reported: map[uint64]bool{},
		reportTry: map[uint64]int{},
	}
	if err := v.load(); err != nil {
		return nil, fmt.Errorf("new verifier: %w", err)
	}
	return v, nil
}

// Run registers the verifier if needed, then works until ctx is cancelled
// (it returns nil then).
func (v *Verifier) Run(ctx context.Context) error {
	ok, err := v.chain.Registered(ctx)
	if err != nil {
		return fmt.Errorf("verifier: %w", err)
	}
	if !ok {
		if v.cfg.Stake == 0 {
			return errors.New("verifier: not registered and no stake configured")
		}
		if err := v.chain.Submit(ctx, tx.RegisterVerifier{Stake: v.cfg.Stake}); err != nil {
			return fmt.Errorf("verifier: register: %w", err)
		}
		v.log.Info("registered verifier", "address", v.cfg.Address, "stake", v.cfg.Stake)
	}
	poll := time.NewTicker(v.cfg.Poll)
	defer poll.Stop()
	shop := time.NewTimer(0)
	defer shop.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
			if err := v.Tick(ctx); err != nil && ctx.Err() == nil {
				v.log.Warn("verifier tick", "err", err)
			}
		case <-shop.C:
			if err := v.ShopOnce(ctx); err != nil && ctx.Err() == nil {
				v.log.Warn("shopper request", "err", err)
			}
			shop.Reset(v.jitter())
		}
	}
}

func (v *Verifier) jitter() time.Duration {
	var b [8]byte
	if _, err := io.ReadFull(v.rand, b[:]); err != nil {
		return v.cfg.ShopEvery
	}
	f := 0.5 + float64(splitmix64(uint64(b[0])|uint64(b[1])<<8|uint64(b[2])<<16|uint64(b[3])<<24)>>11)/(1<<53)
	return time.Duration(f * float64(v.cfg.ShopEvery))
}

// Tick follows the epoch: it commits this epoch's seed, reveals the last
// epoch's seed and weights, commits this epoch's weights in its second
// half, proves capacity and votes on open evidence.
func (v *Verifier) Tick(ctx context.Context) error {
	ep, err := v.chain.Epoch(ctx)
	if err != nil {
		return fmt.Errorf("tick: %w", err)
	}
	e := ep.Number
	var errs []error
	v.mu.Lock()
	newEpoch := e != v.epoch || !v.started[e]
	v.epoch = e
	v.mu.Unlock()
	if newEpoch {
		errs = append(errs, v.startEpoch(ctx, e))
	}
	if e > 0 {
		errs = append(errs, v.reportAudits(ctx, e-1))
	}
	// The next epoch's seed is committed during this one (the ledger
	// allows it), so it is in place however late the first tick of the
	// next epoch comes.
	errs = append(errs, v.commitSeed(ctx, e+1))
	// Commit weights once the epoch is half over.
	length := ep.NextEpochHeight - ep.LastHeight
	if length > 0 && ep.Height-ep.LastHeight >= length/2 {
		errs = append(errs, v.commitWeights(ctx, e))
	}
	errs = append(errs, v.vote(ctx))
	return errors.Join(errs...)
}

// maxRevealTries bounds how often the reveals of an epoch are sent: a
// transient failure is retried, a refusal (outside the window) is not
// repeated every tick.
const maxRevealTries = 5

func (v *Verifier) startEpoch(ctx context.Context, e uint64) error {
	var msgs []any
	v.mu.Lock()
	// A seed whose commitment was in flight when the last run stopped may
	// be on the ledger: it is revealed too (a refusal costs only its
	// message, see below).
	if prev, ok := v.seeds[e-1]; ok && e > 0 && (v.committed[e-1] || v.unsure[e-1]) {
		msgs = append(msgs, tx.RevealAuditSeed{Epoch: e - 1, Seed: hex.EncodeToString(prev)})
	}
	if wc, ok := v.weights[e-1]; ok && e > 0 {
		msgs = append(msgs, tx.RevealWeights{Epoch: e - 1, Weights: wc.weights, Salt: wc.salt})
	}
	v.reveals[e]++
	tries := v.reveals[e]
	if !v.committed[e] {
		// One more chance for this epoch's own seed: the attempt made
		// during the previous epoch may have failed, and the ledger still
		// takes a commitment in the epoch's first blocks.
		delete(v.seedTried, e)
	}
	v.mu.Unlock()
	var errs []error
	done := true
	if len(msgs) > 0 {
		if err := v.chain.Submit(ctx, msgs...); err != nil {
			// One refused reveal (say a weights commitment that never
			// landed) must not hold back the other: send them one by one.
			all := len(msgs) > 1
			if all {
				for _, m := range msgs {
					if err := v.chain.Submit(ctx, m); err != nil {
						errs = append(errs, fmt.Errorf("epoch %d: reveal epoch %d: %T: %w", e, e-1, m, err))
						all = false
					}
				}
			} else {
				errs = append(errs, fmt.Errorf("epoch %d: reveal epoch %d: %w", e, e-1, err))
			}
			done = all || tries >= maxRevealTries
		}
	}
	if done {
		v.mu.Lock()
		v.started[e] = true
		v.mu.Unlock()
		v.mustSave()
	}
	errs = append(errs, v.commitSeed(ctx, e))
	// Epochs before the last are over for good (state loaded after a long
	// stop may hold several).
	v.mu.Lock()
	old := func(k uint64) bool { return k+1 < e }
	maps.DeleteFunc(v.seeds, func(k uint64, _ []byte) bool { return old(k) })
	maps.DeleteFunc(v.weights, func(k uint64, _ weightCommit) bool { return old(k) })
	maps.DeleteFunc(v.shopped, func(k uint64, _ []auditLeaf) bool { return old(k) })
	for _, m := range []map[uint64]int{v.reveals, v.reportTry} {
		maps.DeleteFunc(m, func(k uint64, _ int) bool { return old(k) })
	}
	for _, m := range []map[uint64]bool{v.unsure, v.committed, v.seedTried, v.anchored, v.anchorOK, v.reported} {
		maps.DeleteFunc(m, func(k uint64, _ bool) bool { return old(k) })
	}
	v.mu.Unlock()
	v.log.Info("epoch started", "epoch", e, "messages", len(msgs))
	return errors.Join(errs...)
}

// commitSeed commits a fresh secret audit seed for epoch e, once: a refused
// commitment (outside the ledger's window) is not repeated; audits of an
// epoch without a committed seed are skipped, since they could not be proven.
//
// The seed is saved (Config.StateDir) before its commitment is sent, so a
// daemon killed at any point can still reveal it. A restarted daemon
// re-sends the commitment of a seed that was in flight: accepted, or
// refused because the ledger already holds it, the seed is the one to
// reveal.
func (v *Verifier) commitSeed(ctx context.Context, e uint64) error {
	v.mu.Lock()
	if v.unsure[e] {
		seed := v.seeds[e]
		delete(v.unsure, e)
		v.seedTried[e] = true
		v.mu.Unlock()
		if err := v.chain.Submit(ctx, tx.CommitAuditSeed{Epoch: e, Commitment: tx.AuditSeedCommitment(seed)}); err != nil {
			v.log.Info("audit seed commitment re-sent after a restart was refused; assuming the first one landed", "epoch", e, "err", err)
		}
		v.mu.Lock()
		v.committed[e] = true
		v.mu.Unlock()
		v.mustSave()
		return nil
	}
	skip := v.committed[e] || v.seedTried[e]
	v.seedTried[e] = true
	v.mu.Unlock()
	if skip {
		return nil
	}
	seed := make([]byte, 32)
	if _, err := io.ReadFull(v.rand, seed); err != nil {
		return fmt.Errorf("audit seed: %w", err)
	}
	v.mu.Lock()
	v.seeds[e] = seed
	v.mu.Unlock()
	v.mustSave()
	if err := v.chain.Submit(ctx, tx.CommitAuditSeed{Epoch: e, Commitment: tx.AuditSeedCommitment(seed)}); err != nil {
		v.mu.Lock()
		if errors.Is(err, ErrRefused) {
			delete(v.seeds, e)
		} else {
			// It may have landed: keep the seed, re-send its commitment
			// (commitSeed at the epoch's start) and reveal it.
			v.unsure[e] = true
		}
		v.mu.Unlock()
		v.mustSave()
		return fmt.Errorf("commit audit seed for epoch %d: %w", e, err)
	}
	v.mu.Lock()
	v.committed[e] = true
	v.mu.Unlock()
	v.mustSave()
	return nil
}

// Weights returns the weight vector of the audits so far: each audited
// provider gets its pass rate (in millionths), zero if its combined test
// rejected or any audit failed; sorted by provider.
func (v *Verifier) Weights() []tx.ProviderWeight {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []tx.ProviderWeight
	for p, t := range v.tallies {
		w := uint32(1_000_000 * t.PassRate())
		if t.Failed > 0 || (t.PITCount > 0 && t.LogP() < logAlpha(v.cfg.Bands.Alpha)) {
			w = 0
		}
		out = append(out, tx.ProviderWeight{Provider: p, Weight: w})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Provider < out[j].Provider })
	return out
}

// commitWeights commits the weight vector of epoch e, once. The vector and
// its salt are saved before the commitment is sent; one in flight (a failed
// send, or a restart) is re-sent as it was (the ledger lets a commitment be
// replaced within the epoch), so the reveal always matches.
func (v *Verifier) commitWeights(ctx context.Context, e uint64) error {
	v.mu.Lock()
	wc, have := v.weights[e]
	v.mu.Unlock()
	if have && wc.committed {
		return nil
	}
	if !have {
		ws := v.Weights()
		salt := make([]byte, 16)
		if _, err := io.ReadFull(v.rand, salt); err != nil {
			return fmt.Errorf("weights salt: %w", err)
		}
		wc = weightCommit{weights: ws, salt: hex.EncodeToString(salt)}
		wc.hash = tx.WeightsCommitment(e, v.cfg.Address, ws, wc.salt)
		v.mu.Lock()
		v.weights[e] = wc
		v.mu.Unlock()
		v.mustSave()
	}
	if err := v.chain.Submit(ctx, tx.CommitWeights{Epoch: e, Hash: wc.hash}); err != nil {
		return fmt.Errorf("commit weights: %w", err)
	}
	wc.committed = true
	v.mu.Lock()
	v.weights[e] = wc
	v.tallies = map[string]*Tally{} // the next epoch scores afresh
	v.mu.Unlock()
	v.mustSave()
	return nil
}

// ShopOnce sends one shopper request to a provider, re-checks it when the
// epoch's seed selects it (or always with RecheckAll) and accuses the
// provider when the re-check fails. Once per epoch and provider it sends a
// seeded capacity job and records the measured throughput.
func (v *Verifier) ShopOnce(ctx context.Context) error {
	provs, err := v.chain.Providers(ctx)
	if err != nil {
		return fmt.Errorf("shop: %w", err)
	}
	var active []ledger.ProviderView
	for _, p := range provs {
		if p.Active && !p.Jailed && len(p.Models) > 0 {
			active = append(active, p)
		}
	}
	if len(active) == 0 {
		return nil
	}
	v.mu.Lock()
	v.n++
	n := v.n
	e := v.epoch
	seed := v.seeds[e]
	if !v.committed[e] {
		seed = nil
	}
	v.mu.Unlock()
	if seed == nil {
		return nil // no committed seed yet: audits must be provable
	}
	streamSeed := splitmix64(seedFrom(seed) ^ 0x5e0b)
	pick := int(splitmix64(streamSeed^uint64(n)) % uint64(len(active)))
	p := active[pick]
	model := p.Models[int(splitmix64(streamSeed^uint64(n)<<1)%uint64(len(p.Models)))].ModelID
	sha, err := v.chain.ModelSHA256(ctx, model)
	if err != nil {
		return fmt.Errorf("shop: %w", err)
	}
	capKey := fmt.Sprintf("%s/%d", p.Address, e)
	v.mu.Lock()
	needCap := !v.capacity[capKey]
	v.mu.Unlock()
	params := v.cfg.Mix.Draw(streamSeed, n)
	if needCap {
		// A seeded benchmark job: a seed-derived prompt, a fixed length.
		s := int64(splitmix64(streamSeed^uint64(e)) >> 2)
		zero := 0.0
		// Streaming and logprobs follow the mix like every other request.
		params = ShopperParams{PoolIndex: splitmix64(streamSeed ^ uint64(e)), Seed: &s, Temperature: &zero, MaxTokens: v.cfg.CapacityTokens,
			Stream: params.Stream, Logprobs: params.Logprobs}
	}
	got, err := v.shop.Shop(ctx, p, model, params)
	if err != nil {
		return fmt.Errorf("shop %s: %w", p.Address, err)
	}
	if needCap && got.Duration > 0 {
		tps := uint64(float64(got.Receipt.TokensOut) / got.Duration.Seconds() * 1000)
		if err := v.chain.Submit(ctx, tx.RecordCapacity{Provider: p.Address, ModelID: model, TokensPerSecMilli: tps, Epoch: e}); err != nil {
			v.log.Warn("record capacity", "provider_id", p.Address, "err", err)
		} else {
			v.mu.Lock()
			v.capacity[capKey] = true
			v.mu.Unlock()
		}
	}
	rep := ProviderAuditBps(p, v.cfg.AuditFloorBps, v.cfg.AuditCleanEpochs)
	selected := ledger.AuditSelected(seed, p.Address, got.Receipt.RequestID, rep)
	if !selected && !v.cfg.RecheckAll {
		v.recordLeaf(e, got.Receipt, false, false)
		return nil
	}
	r, err := v.recheck(ctx, sha, got)
	if err != nil {
		v.recordLeaf(e, got.Receipt, false, false)
		return fmt.Errorf("recheck %s: %w", got.Receipt.RequestID, err)
	}
	v.recordLeaf(e, got.Receipt, true, !r.Honest)
	v.mu.Lock()
	t := v.tallies[p.Address]
	if t == nil {
		t = &Tally{}
		v.tallies[p.Address] = t
	}
	rejected, logP, _ := t.Add(r, v.cfg.Bands.Alpha)
	v.material[got.Receipt.RequestID] = got
	v.mu.Unlock()
	v.mustSave()
	v.log.Info("audit", "provider_id", p.Address, "request_id", got.Receipt.RequestID, "honest", r.Honest, "rejected", rejected,
		"failed", r.Failed(), "selected", selected, "tally_log_p", logP)
	// Evidence is about one answer: it is filed when that answer's own
	// re-check fails, which every other verifier can reproduce from its
	// material. A tally that rejects only over many answers zeroes the
	// provider's weight (Weights) instead.
	if !r.Honest {
		return v.accuse(ctx, got, r)
	}
	return nil
}

// recordLeaf keeps a shopper receipt of epoch e (the epoch whose seed chose
// its audit) for the epoch's anchor. A receipt that arrives after the
// epoch's anchor was sent is left out: the ledger could not bind it.
func (v *Verifier) recordLeaf(e uint64, rc channel.Receipt, audited, failed bool) {
	if tx.ValidateRequestID(rc.RequestID) != nil {
		return
	}
	v.mu.Lock()
	if v.anchored[e] {
		v.mu.Unlock()
		return
	}
	v.shopped[e] = append(v.shopped[e], auditLeaf{leaf: tx.AnchorLeaf{Provider: rc.Provider, RequestID: rc.RequestID}, audited: audited, failed: failed})
	v.mu.Unlock()
	v.mustSave()
}

// reportAudits anchors the shopper receipts of the ended epoch e from the
// verifier's account (AnchorReceipts with an audit root over their
// provider and request id) and reports, chunk by chunk, which of them it
// audited and which failed (SubmitAuditReport). This is what the ledger
// counts: the seed-demanded audits (a verifier missing one gets no
// dividends) and the providers' passed and failed audits, from which their
// clean epochs and audit probabilities follow. Both messages are taken in
// epoch e+1; a refusal is retried a bounded number of times.
func (v *Verifier) reportAudits(ctx context.Context, e uint64) error {
	v.mu.Lock()
	done := v.reported[e] || len(v.shopped[e]) == 0 || v.reportTry[e] >= maxRevealTries
	anchored := v.anchorOK[e]
	if !done {
		v.reportTry[e]++
		v.anchored[e] = true // no more leaves for e: the anchor fixes them
	}
	ls := append([]auditLeaf(nil), v.shopped[e]...)
	v.mu.Unlock()
	if done {
		return nil
	}
	leaves := make([]tx.AnchorLeaf, len(ls))
	for i, l := range ls {
		leaves[i] = l.leaf
	}
	root := tx.AnchorRoot(leaves)
	// The epoch's leaves stay closed after a failed anchor: one whose
	// outcome is unknown may have landed with this root.
	var anchorErr error
	if !anchored {
		if err := v.chain.Submit(ctx, tx.AnchorReceipts{Epoch: e, Root: root, Count: uint64(len(leaves)), AuditRoot: root}); err != nil {
			anchorErr = fmt.Errorf("anchor shopper receipts of epoch %d: %w", e, err)
			if !errors.Is(err, ErrRefused) {
				return anchorErr
			}
			// Refused: perhaps because it is already there (a run killed
			// before it saved the anchor's success). The reports below
			// succeed exactly then.
		} else {
			v.mu.Lock()
			v.anchorOK[e] = true
			v.mu.Unlock()
			v.mustSave()
		}
	}
	var msgs []any
	for k := uint64(0); k < tx.AnchorChunks(uint64(len(leaves))); k++ {
		lo, hi := k*tx.AuditChunkLeaves, min(uint64(len(leaves)), (k+1)*tx.AuditChunkLeaves)
		m := tx.SubmitAuditReport{Epoch: e, Anchor: v.cfg.Address, Chunk: k, Leaves: leaves[lo:hi],
			Proof: tx.AnchorChunkProof(leaves, k), Audited: []uint32{}, Failed: []uint32{}}
		for i := lo; i < hi; i++ {
			if ls[i].audited {
				m.Audited = append(m.Audited, uint32(i-lo))
			}
			if ls[i].failed {
				m.Failed = append(m.Failed, uint32(i-lo))
			}
		}
		msgs = append(msgs, m)
	}
	if err := v.chain.Submit(ctx, msgs...); err != nil {
		return errors.Join(anchorErr, fmt.Errorf("audit reports of epoch %d: %w", e, err))
	}
	v.mu.Lock()
	v.anchorOK[e] = true
	v.reported[e] = true
	v.mu.Unlock()
	v.mustSave()
	v.log.Info("audits reported", "epoch", e, "receipts", len(leaves))
	return nil
}

// ProviderAuditBps is the audit probability of a provider from its
// reputation (100% when it has none yet).
func ProviderAuditBps(p ledger.ProviderView, floorBps, cleanEpochs uint64) uint64 {
	if p.Reputation == nil {
		return 10_000
	}
	if p.Reputation.AuditBps > 0 {
		return p.Reputation.AuditBps
	}
	return ledger.AuditProbabilityBps(p.Reputation.CleanEpochs, floorBps, cleanEpochs)
}

func (v *Verifier) recheck(ctx context.Context, sha string, got Shopped) (Report, error) {
	c, prompt, err := v.checkers.Checker(ctx, sha)
	if err != nil {
		return Report{}, err
	}
	ids, err := prompt(got.System, got.User)
	if err != nil {
		return Report{}, err
	}
	// The profile is sticky per provider: once a receipt of it carried the
	// reference's exact logprobs commitment, it runs the built-in engine
	// and is held to bit-exactness for good. Until then it is judged as a
	// peer engine (the ledger has no engine field to declare it).
	prov := got.Receipt.Provider
	v.mu.Lock()
	exact := v.exact[prov]
	v.mu.Unlock()
	// An answer to a request without logprobs carries no token ids: the
	// re-check uses the tokenizer's own tokenisation of the text.
	fromText := len(got.Answer.IDs) == 0 && got.Answer.Text != ""
	if fromText {
		if got.Answer.IDs, err = c.Tokenize(got.Answer.Text); err != nil {
			return Report{}, err
		}
		got.Answer.Logprobs = nil
	}
	job := Job{RequestBody: got.Body, Prompt: ids, Sampling: got.Params.Sampling(), ModelSHA256: sha, Profile: ProfileBuiltin}
	claim := ClaimFromReceipt(got.Receipt)
	r, err := c.Check(ctx, job, got.Answer, claim)
	if err != nil {
		return Report{}, err
	}
	if f, ok := r.Finding("logprobs_commitment"); ok && !f.Failed && len(got.Answer.IDs) > 0 {
		// The commitment binds the ids: rebuilt ones are the provider's.
		if !exact {
			v.mu.Lock()
			v.exact[prov] = true
			v.mu.Unlock()
		}
		return r, nil
	}
	if !exact {
		job.Profile = ProfilePeer
		if r, err = c.Check(ctx, job, got.Answer, claim); err != nil {
			return Report{}, err
		}
	}
	if fromText {
		r = relaxTextIDs(r, got.Receipt.TokensOut, len(got.Answer.IDs), job.Sampling.MaxTokens)
	}
	return r, nil
}

// idExactChecks compare token ids exactly. With ids rebuilt from the text
// (the request asked for no logprobs) and not confirmed by the receipt's
// commitment, a mismatch may be the provider's honest non-canonical
// tokenisation, so these do not count; the statistical checks, the hashes
// and the finish checks still do.
var idExactChecks = map[string]bool{"logprobs_commitment": true, "greedy_argmax": true, "seeded_regen": true, "text_tokens": true}

// relaxTextIDs drops the id-exact failures of a report on ids rebuilt from
// the text and holds the billed token count to the rebuilt count with a
// slack of max(2, n/8) tokens (a tokenisation differs by a few tokens; an
// inflated count by more). The length checks use the billed count: padding
// is billing beyond max_tokens, truncation finishing "length" below it.
func relaxTextIDs(r Report, claimed uint64, n, maxTokens int) Report {
	out := r
	out.Findings = nil
	out.Honest = true
	for _, f := range r.Findings {
		switch {
		case idExactChecks[f.Check] && f.Failed:
			f.Failed = false
			f.Detail = "not counted: token ids rebuilt from the text"
		case f.Check == "tokens_out":
			slack := max(2, n/8)
			f.Statistic = float64(claimed) - float64(n)
			f.Threshold = float64(slack)
			f.Failed = claimed > uint64(n+slack)
			f.Detail = "token ids rebuilt from the text"
		case f.Check == "max_tokens" && maxTokens > 0:
			f.Statistic = float64(claimed) - float64(maxTokens)
			f.Failed = claimed > uint64(maxTokens)
			f.Detail = "billed tokens beyond max_tokens"
		case f.Check == "finish_length" && maxTokens > 0:
			f.Statistic = float64(claimed)
			f.Failed = claimed < uint64(maxTokens)
			f.Detail = "finish length with fewer billed tokens than max_tokens"
		}
		out.Honest = out.Honest && !f.Failed
		out.Findings = append(out.Findings, f)
	}
	return out
}

func (v *Verifier) accuse(ctx context.Context, got Shopped, r Report) error {
	if !provable(got, r) {
		// Other verifiers could not reproduce the failure from the material: the
		// accusation would only cost the bond. The failed audit still counts in
		// the tally (Weights) and the audit report.
		v.log.Info("failed audit not provable: no evidence filed", "provider_id", got.Receipt.Provider,
			"request_id", got.Receipt.RequestID, "failed", r.Failed())
		return nil
	}
	v.mu.Lock()
	if v.accused[got.Receipt.RequestID] {
		v.mu.Unlock()
		return nil
	}
	v.accused[got.Receipt.RequestID] = true
	v.mu.Unlock()
	msg := tx.SubmitEvidence{Receipt: got.Receipt, Summary: Summary(r, got.Receipt), Bond: v.cfg.EvidenceBond, Material: Material(got)}
	if err := v.chain.Submit(ctx, msg); err != nil {
		return fmt.Errorf("submit evidence: %w", err)
	}
	v.log.Warn("evidence submitted", "provider_id", got.Receipt.Provider, "request_id", got.Receipt.RequestID, "verdict", msg.Summary.Verdict)
	return nil
}

// provable reports whether other verifiers can reproduce a failed report
// from the evidence material: a refused reveal, or revealed values the
// provider did not sign, fail logprobs_reveal only for the verifier that
// asked; with no other failed check the failure is not provable.
func provable(got Shopped, r Report) bool {
	if got.Answer.RevealSignature != "" {
		return true
	}
	for _, c := range r.Failed() {
		if c != "logprobs_reveal" {
			return true
		}
	}
	return false
}

// vote votes on open evidence this verifier can re-check: evidence about a
// request it shopped itself (it holds what it sent and got), or evidence
// carrying its material (request, answer text, token ids, logprobs), bound
// to the receipt by its request and output hashes. Evidence it cannot
// re-check gets no vote.
func (v *Verifier) vote(ctx context.Context) error {
	evs, err := v.chain.Evidence(ctx)
	if err != nil {
		return fmt.Errorf("vote: %w", err)
	}
	var errs []error
	for _, ev := range evs {
		v.mu.Lock()
		done := v.voted[ev.ID]
		got, have := v.material[ev.RequestID]
		v.mu.Unlock()
		if done || ev.Submitter == v.cfg.Address {
			continue
		}
		if have && got.Receipt.Provider != ev.Receipt.Provider {
			have = false
		}
		sha, err := v.chain.ModelSHA256(ctx, ev.Receipt.ModelID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var guilty bool
		if have {
			got.Receipt = ev.Receipt
			r, err := v.recheck(ctx, sha, got)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			guilty = !r.Honest
		} else {
			if ev.Material == nil {
				continue
			}
			g, ok, err := v.recheckEvidence(ctx, sha, ev)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !ok {
				continue // material this verifier cannot read back: abstain
			}
			guilty = g
		}
		if err := v.chain.Submit(ctx, tx.VoteEvidence{ID: ev.ID, Guilty: guilty}); err != nil {
			errs = append(errs, err)
			continue
		}
		v.log.Info("voted on evidence", "id", ev.ID, "provider_id", ev.Provider, "guilty", guilty)
		v.mu.Lock()
		v.voted[ev.ID] = true
		v.mu.Unlock()
		v.mustSave()
	}
	return errors.Join(errs...)
}

// Material is the evidence material of a shopped answer: the request body,
// the answer text, its token ids and the float32 bits of its logprobs, with
// the provider's signature when they are its signed reveal.
func Material(got Shopped) *tx.EvidenceMaterial {
	m := &tx.EvidenceMaterial{Request: string(got.Body), Output: got.Answer.Text, TokenIDs: got.Answer.IDs,
		RevealSignature: got.Answer.RevealSignature}
	if m.TokenIDs == nil {
		m.TokenIDs = []int32{}
	}
	for _, lp := range got.Answer.Logprobs {
		m.LogprobBits = append(m.LogprobBits, math.Float32bits(float32(lp)))
	}
	return m
}

// recheckEvidence re-checks evidence from its material. Request and output
// text are bound by the receipt (the ledger checked their hashes); the
// finish reason is the receipt's. Material carrying the provider's signed
// reveal (the ledger verified the signature against the provider's key)
// whose values do not hash to the receipt's commitment is guilty whatever
// the text's re-check says: the provider signed two contradicting
// statements. Otherwise logprobs count only when they hash, with
// the ids, to the receipt's logprobs commitment (otherwise they are the
// accuser's word and are dropped). Ids are bound by that commitment or, on
// the built-in engine, by the reference's own commitment; unbound ids could
// be a forger's re-tokenisation of an honest text, so the verdict is guilty
// only if the text's own tokenisation fails the re-check as well. ok is
// false when the material is not of a shape this verifier can re-check.
func (v *Verifier) recheckEvidence(ctx context.Context, sha string, ev ledger.Evidence) (guilty, ok bool, err error) {
	m := ev.Material
	if m.Check(ev.Receipt) != nil {
		return false, false, nil
	}
	if m.SignedRevealContradicts(ev.Receipt) {
		return true, true, nil
	}
	_, sys, user, params, err := ParseRequestBody([]byte(m.Request))
	if err != nil {
		v.log.Info("evidence material not re-checkable", "id", ev.ID, "err", err)
		return false, false, nil
	}
	got := Shopped{Body: []byte(m.Request), System: sys, User: user, Params: params, Receipt: ev.Receipt,
		Answer: Answer{IDs: m.TokenIDs, Text: m.Output, FinishReason: ev.Receipt.FinishReason}}
	bound := false
	if len(m.LogprobBits) == len(m.TokenIDs) && len(m.TokenIDs) > 0 {
		lps32 := make([]float32, len(m.LogprobBits))
		lps := make([]float64, len(m.LogprobBits))
		for i, b := range m.LogprobBits {
			lps32[i] = math.Float32frombits(b)
			lps[i] = float64(lps32[i])
		}
		if channel.LogprobsCommitment(m.TokenIDs, lps32) == ev.Receipt.LogprobsCommitment {
			got.Answer.Logprobs, bound = lps, true
		}
	}
	r, err := v.recheck(ctx, sha, got)
	if err != nil {
		return false, false, fmt.Errorf("recheck evidence %d: %w", ev.ID, err)
	}
	if f, ok := r.Finding("logprobs_commitment"); ok && !f.Failed {
		bound = true
	}
	if r.Honest || bound {
		return !r.Honest, true, nil
	}
	c, _, err := v.checkers.Checker(ctx, sha)
	if err != nil {
		return false, false, fmt.Errorf("recheck evidence %d: %w", ev.ID, err)
	}
	ids, err := c.Tokenize(m.Output)
	if err != nil {
		return false, false, fmt.Errorf("recheck evidence %d: %w", ev.ID, err)
	}
	got.Answer.IDs, got.Answer.Logprobs = ids, nil
	r2, err := v.recheck(ctx, sha, got)
	if err != nil {
		return false, false, fmt.Errorf("recheck evidence %d: %w", ev.ID, err)
	}
	return !r2.Honest, true, nil
}

// ClaimFromReceipt extracts the fields the re-check tests.
func ClaimFromReceipt(r channel.Receipt) Claim {
	return Claim{
		ModelSHA256: r.ModelSHA256, RequestHash: r.RequestHash, OutputHash: r.OutputHash,
		TokensIn: r.TokensIn, TokensOut: r.TokensOut, LogprobsCommitment: r.LogprobsCommitment,
		FinishReason: r.FinishReason,
	}
}

// QuantizationMaxDev is the largest |Δlogprob| (nats) between an answer's claimed logprobs and
// the reference's, teacher-forced on the answer's tokens, that Summary attributes to a
// quantised file rather than another model. Measured on the demo models (60 seeded answers
// each): the Q4_K_M file served as F32 stays within 0.28–1.18 nats, the substitute reaches
// 0.79–9.0 (median 4.9).
const QuantizationMaxDev = 1.5

// Summary turns a failed report into the ledger's evidence summary. The verdict names the
// likeliest cheat; it informs, the slash is the same.
func Summary(r Report, rc channel.Receipt) tx.EvidenceSummary {
	s := tx.EvidenceSummary{PositionsChecked: uint64(r.Tokens), ClaimedTokens: rc.TokensOut, ExpectedTokens: uint64(r.Tokens)}
	failed := map[string]bool{}
	lpDev := math.Inf(1) // the largest |Δlogprob| against the reference, if the answer had logprobs
	for _, f := range r.Findings {
		if f.Failed {
			failed[f.Check] = true
		}
		if f.Check == "logprobs_band" {
			s.MaxLogprobDevMicro = uint64(math.Min(f.Statistic, 1e6) * 1e6)
			lpDev = f.Statistic
		}
		if f.Check == "greedy_argmax" && f.Failed {
			s.Mismatches = uint64(f.Statistic)
		}
	}
	tokensOff := failed["likelihood_pit"] || failed["rank_topk"] || failed["greedy_argmax"]
	numbersOff := failed["logprobs_band"] || failed["logprobs_commitment"]
	switch {
	case failed["request_hash"] || failed["tokens_in"]:
		s.Verdict = tx.VerdictTamperedPrompt
	case failed["tokens_out"]:
		s.Verdict = tx.VerdictInflatedTokens
	case failed["max_tokens"]:
		s.Verdict = tx.VerdictPadding
	case failed["finish_length"] || failed["finish_stop"]:
		s.Verdict = tx.VerdictTruncation
	case (tokensOff || numbersOff) && !math.IsInf(lpDev, 1):
		// Another model's answer. Its log-probabilities, teacher-forced on its tokens, tell
		// which: within quantisation noise of the reference's, a quantised file; further, a
		// different model.
		s.Verdict = tx.VerdictSubstitution
		if lpDev <= QuantizationMaxDev {
			s.Verdict = tx.VerdictQuantization
		}
	case tokensOff:
		// Tokens the registered model would not produce.
		s.Verdict = tx.VerdictSubstitution
	case numbersOff:
		// The right tokens with another model's numbers.
		s.Verdict = tx.VerdictQuantization
	case failed["seeded_regen"] || failed["text_tokens"] || failed["output_hash"] || failed["token_vocab"] || failed["logprobs_reveal"]:
		s.Verdict = tx.VerdictMismatch
	default:
		s.Verdict = tx.VerdictSubstitution
	}
	if s.Mismatches > s.PositionsChecked {
		s.Mismatches = s.PositionsChecked
	}
	return s
}

func logAlpha(a float64) float64 { return math.Log(a) }
