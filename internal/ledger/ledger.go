// Package ledger is Mycel's pure, deterministic state machine: accounts, models, providers,
// verifiers, payment channels, slashing, epochs and fees, receipt anchors, audit seeds and
// reports, evidence votes, Yuma consensus rewards, reputation and proven capacity. It has no I/O, no wall clock, no
// goroutines, no floats and no map-order dependence, and it never panics on input. A thin ABCI
// shell (internal/abciapp) drives it: InitChain or Restore once, then per block BeginBlock,
// DeliverTx for each transaction, EndBlock and Commit; CheckTx and Query at any time.
// docs/spec/ledger.md specifies every message, check, state change and event.
//
// A Ledger is not safe for concurrent use; the caller serialises calls.
package ledger

import (
	"bytes"
	"fmt"
	"time"
)

// Header is what the ledger needs of a block header.
type Header struct {
	Height  int64
	Time    time.Time // block time, from CometBFT; the ledger's only clock
	ChainID string
}

// Attr is one key/value attribute of an Event.
type Attr struct {
	Key   string
	Value string
}

// Event is an ABCI event.
type Event struct {
	Type  string
	Attrs []Attr
}

// Result is the outcome of CheckTx or DeliverTx. Code is CodeOK or one of the Code constants;
// Log says in words what happened.
type Result struct {
	Code      uint32
	Codespace string
	Log       string
	Events    []Event
	GasUsed   int64
}

// Ledger is the state machine.
type Ledger struct {
	chainID     string
	initialized bool
	params      Params

	height    int64  // last committed height
	hash      []byte // app hash at height
	committed *store

	block   *overlay // writes of the block in progress; nil between blocks
	header  Header
	check   *overlay // mempool check-state over committed state
	pending *overlay // committed writes not yet returned by Commit (InitChain's)

	// verified holds sha256 of transactions whose signature CheckTx verified, so DeliverTx of
	// the same bytes skips the ed25519 check. Verification is a pure function of the bytes,
	// so this cannot change any result; it only halves the signature work per transaction.
	verified map[[32]byte]struct{}
}

// maxVerified bounds the verified-signature cache; it is cleared when full.
const maxVerified = 100_000

// New returns an empty ledger for chainID; call InitChain or use Restore instead.
func New(chainID string) *Ledger {
	s := newStore()
	return &Ledger{chainID: chainID, committed: s, check: newOverlay(s)}
}

// ChainID returns the chain id the ledger was created for.
func (l *Ledger) ChainID() string { return l.chainID }

// Height returns the last committed height (initial height − 1 right after InitChain).
func (l *Ledger) Height() int64 { return l.height }

// AppHash returns the app hash of the last committed state.
func (l *Ledger) AppHash() []byte { return bytes.Clone(l.hash) }

// Params returns the chain parameters.
func (l *Ledger) Params() Params { return l.params }

// InitChain writes the genesis state and computes its app hash at height h.Height−1
// (h.Height is CometBFT's initial height; 0 means 1). The genesis writes are returned, for
// persisting, by the next Commit (together with the first block's), or by a Commit called
// before any BeginBlock.
func (l *Ledger) InitChain(h Header, g Genesis) error {
	if l.initialized {
		return fmt.Errorf("init chain: already initialised: %w", ErrState)
	}
	if h.ChainID != "" && h.ChainID != l.chainID {
		return fmt.Errorf("init chain: chain id %q, ledger is for %q: %w", h.ChainID, l.chainID, ErrState)
	}
	if h.Height < 0 {
		return fmt.Errorf("init chain: negative initial height: %w", ErrState)
	}
	if h.Height == 0 {
		h.Height = 1
	}
	if err := g.Validate(); err != nil {
		return fmt.Errorf("init chain: %w", err)
	}
	o := newOverlay(l.committed)
	if err := writeGenesis(o, h.Height-1, g); err != nil {
		return fmt.Errorf("init chain: %w", err)
	}
	l.committed.apply(o)
	l.params = g.Params
	l.height = h.Height - 1
	l.hash = appHash(l.height, l.committed.root())
	l.pending = o
	l.initialized = true
	l.check = newOverlay(l.committed)
	return nil
}

func writeGenesis(o *overlay, height int64, g Genesis) error {
	var total uint64
	for _, a := range g.Accounts {
		total += a.Balance // Validate checked for overflow
		if err := putJSON(o, keyAccount(a.Address), Account{Address: a.Address, Balance: a.Balance}); err != nil {
			return err
		}
	}
	for _, m := range g.Models {
		if err := putJSON(o, keyModel(m.ID), Model{RegisterModel: m, RegisteredBy: "genesis", Height: height}); err != nil {
			return err
		}
	}
	for _, kv := range []struct {
		key string
		v   any
	}{
		{keyParams, g.Params},
		{keySupply, Supply{Genesis: total}},
		{keyEpoch, Epoch{LastHeight: height}},
		{keyCounters, Counters{NextChannelID: 1}},
	} {
		if err := putJSON(o, kv.key, kv.v); err != nil {
			return err
		}
	}
	return nil
}

// Restore rebuilds a ledger from the full persisted state (every KV written by Commit, with
// deletions applied) as of the given committed height. Its AppHash equals the one Commit
// returned at that height.
func Restore(chainID string, height int64, state []KV) (*Ledger, error) {
	l := New(chainID)
	o := newOverlay(l.committed)
	for _, kv := range state {
		if kv.Delete {
			continue
		}
		o.set(string(kv.Key), bytes.Clone(kv.Value))
	}
	l.committed.apply(o)
	p, ok, err := getJSON[Params](l.committed, keyParams)
	if err != nil || !ok {
		return nil, fmt.Errorf("restore: no valid params in state: %w", ErrState)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	l.params = p
	l.height = height
	l.hash = appHash(height, l.committed.root())
	l.initialized = true
	l.check = newOverlay(l.committed)
	return l, nil
}

// BeginBlock starts block h, which must be the next height on this chain.
func (l *Ledger) BeginBlock(h Header) error {
	switch {
	case !l.initialized:
		return fmt.Errorf("begin block: ledger not initialised: %w", ErrState)
	case l.block != nil:
		return fmt.Errorf("begin block %d: block %d still in progress: %w", h.Height, l.header.Height, ErrState)
	case h.Height != l.height+1:
		return fmt.Errorf("begin block %d: want height %d: %w", h.Height, l.height+1, ErrState)
	case h.ChainID != "" && h.ChainID != l.chainID:
		return fmt.Errorf("begin block %d: chain id %q, ledger is for %q: %w", h.Height, h.ChainID, l.chainID, ErrState)
	}
	l.header = h
	l.block = newOverlay(l.committed)
	return nil
}

// DeliverTx executes a transaction in the current block. It is all-or-nothing: a non-zero
// Code means no state changed (no fee, no nonce increment).
func (l *Ledger) DeliverTx(raw []byte) Result {
	if l.block == nil {
		return errResult(fail(CodeInternal, "deliver tx: no block in progress"))
	}
	return l.exec(l.block, raw, l.header.Height, false)
}

// CheckTx checks a transaction for the mempool against the check-state: committed state plus
// every transaction CheckTx accepted since the last Commit, so one sender can queue several
// transactions with consecutive nonces. Commit resets the check-state.
func (l *Ledger) CheckTx(raw []byte) Result {
	if !l.initialized {
		return errResult(fail(CodeInternal, "check tx: ledger not initialised"))
	}
	return l.exec(l.check, raw, l.height+1, true)
}

// EndBlock completes unbondings and channel closes due at this height and, at epoch
// boundaries, mints the epoch's emission. It returns the events.
func (l *Ledger) EndBlock() []Event {
	if l.block == nil {
		return nil
	}
	return l.endBlock(l.block, l.header.Height)
}

// Commit makes the block's writes the committed state and returns the new app hash and every
// key changed since the last Commit, sorted by key (values are shared with the ledger: do not
// modify them). The caller persists both atomically. It
// resets the check-state. Called with no block in progress it returns the current app hash
// and any pending genesis writes without advancing the height.
func (l *Ledger) Commit() (appHashOut []byte, changes []KV) {
	union := l.pending
	l.pending = nil
	if l.block != nil {
		l.committed.apply(l.block)
		if union == nil {
			union = l.block
		} else {
			l.block.mergeInto(union)
		}
		l.height = l.header.Height
		l.hash = appHash(l.height, l.committed.root())
		l.block = nil
	}
	l.check = newOverlay(l.committed)
	if union != nil {
		changes = union.kvs()
	}
	return l.AppHash(), changes
}

// kvs returns the overlay's writes as sorted KVs.
func (o *overlay) kvs() []KV {
	ks := o.sortedKeys()
	out := make([]KV, 0, len(ks))
	for _, k := range ks {
		e := o.w[k]
		if e.del {
			out = append(out, KV{Key: []byte(k), Delete: true})
		} else {
			out = append(out, KV{Key: []byte(k), Value: e.val})
		}
	}
	return out
}

func errResult(err error) Result {
	code := ErrorCode(err)
	return Result{Code: code, Codespace: Codespace, Log: err.Error()}
}
