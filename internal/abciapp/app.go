// Package abciapp adapts the Mycel ledger to CometBFT's ABCI++ (v0.38) and
// persists its state in pebble. It is the only package that imports
// CometBFT's abci types.
//
// Durability: FinalizeBlock executes a block and computes its app hash;
// Commit writes the block's state changes, height and app hash in one
// synced pebble batch. After a crash the store is at the last committed
// block, Info reports it, and CometBFT's handshake replays any later block.
package abciapp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
)

// Version is reported in Info.
const Version = "mycel-ledger/1"

// CodeQueryFailed is the ABCI code of a failed query when the ledger gives
// no more specific one.
const CodeQueryFailed uint32 = 1

// Options configure an App.
type Options struct {
	// Logger receives the app's logs; nil discards them.
	Logger *slog.Logger
	// RetainBlocks, when positive, lets CometBFT prune blocks older than the
	// last RetainBlocks heights. Zero keeps every block.
	RetainBlocks int64
}

// App is the Mycel ledger as an abci.Application.
type App struct {
	abci.BaseApplication

	mu      sync.Mutex
	store   *store
	logger  *slog.Logger
	retain  int64
	led     *ledger.Ledger // nil until InitChain on a fresh store
	last    commitPoint    // last persisted block
	pending *pendingBlock  // finalized but not yet committed
	closed  bool
	// checked remembers the sender and nonce of transactions CheckTx
	// accepted, so that PrepareProposal need not decode them again.
	checked map[[32]byte]txMeta
}

type txMeta struct {
	sender string
	nonce  uint64
}

// maxChecked bounds the checked cache (it is only a cache: a transaction
// missing from it is decoded).
const maxChecked = 1 << 18

type pendingBlock struct {
	height  int64
	appHash []byte
	changes []ledger.KV
}

var _ abci.Application = (*App)(nil)

// Open opens (or creates) the app store in dir and restores the ledger from
// it.
func Open(dir string, opts Options) (*App, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s, err := openStore(dir, logger)
	if err != nil {
		return nil, err
	}
	a := &App{store: s, logger: logger, retain: opts.RetainBlocks, checked: map[[32]byte]txMeta{}}
	if err := a.restore(); err != nil {
		s.close()
		return nil, err
	}
	return a, nil
}

func (a *App) restore() error {
	cp, err := a.store.commitPoint()
	if err != nil {
		return err
	}
	a.last = cp
	if cp.Height == 0 {
		return nil
	}
	kvs, err := a.store.state()
	if err != nil {
		return err
	}
	led, err := ledger.Restore(cp.ChainID, cp.Height, kvs)
	if err != nil {
		return fmt.Errorf("restore ledger at height %d: %w", cp.Height, err)
	}
	if got := led.AppHash(); !bytes.Equal(got, cp.AppHash) {
		return fmt.Errorf("restore ledger at height %d: app hash %X, store says %X", cp.Height, got, cp.AppHash)
	}
	a.led = led
	a.logger.Info("restored ledger", "height", cp.Height, "app_hash", fmt.Sprintf("%X", cp.AppHash), "keys", len(kvs))
	return nil
}

// Close closes the store. Call it after the node using the app has stopped.
func (a *App) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	a.led = nil
	return a.store.close()
}

// LastCommit returns the height and app hash of the last persisted block.
func (a *App) LastCommit() (int64, []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last.Height, append([]byte(nil), a.last.AppHash...)
}

func (a *App) notReady() string {
	if a.closed {
		return "app closed"
	}
	return "chain not initialised"
}

// Info reports the last committed height and app hash so that CometBFT can
// replay the blocks the app has not seen.
func (a *App) Info(_ context.Context, _ *abci.RequestInfo) (*abci.ResponseInfo, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &abci.ResponseInfo{
		Data:             "mycel",
		Version:          Version,
		AppVersion:       1,
		LastBlockHeight:  a.last.Height,
		LastBlockAppHash: a.last.AppHash,
	}, nil
}

// InitChain builds the genesis state from the app_state JSON.
func (a *App) InitChain(_ context.Context, req *abci.RequestInitChain) (*abci.ResponseInitChain, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errors.New("init chain: app closed")
	}
	if a.last.Height != 0 {
		return nil, fmt.Errorf("init chain: store already at height %d", a.last.Height)
	}
	var gen ledger.Genesis
	if len(bytes.TrimSpace(req.AppStateBytes)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(req.AppStateBytes))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&gen); err != nil {
			return nil, fmt.Errorf("init chain: app_state: %w", err)
		}
	} else {
		gen.Params = ledger.DefaultParams()
	}
	if err := gen.Validate(); err != nil {
		return nil, fmt.Errorf("init chain: genesis: %w", err)
	}
	led := ledger.New(req.ChainId)
	h := ledger.Header{Height: req.InitialHeight, Time: req.Time, ChainID: req.ChainId}
	if err := led.InitChain(h, gen); err != nil {
		return nil, fmt.Errorf("init chain: %w", err)
	}
	a.led = led
	a.last.ChainID = req.ChainId
	return &abci.ResponseInitChain{AppHash: led.AppHash()}, nil
}

// CheckTx runs the ledger's mempool check, for new transactions and
// rechecks alike.
//
// Between FinalizeBlock and Commit the ledger's check-state has already
// been reset to the new block's state, while CometBFT's mempool still holds
// the transactions it will recheck after Commit. A transaction arriving in
// that window is checked against the new state; if it fails only because
// its nonce is ahead of the sender's (its predecessors are still in the
// mempool), it is accepted on its stateless checks, and the recheck that
// follows Commit (from a check-state Commit resets again) checks it fully,
// in mempool order.
func (a *App) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.led == nil {
		return &abci.ResponseCheckTx{Code: CodeQueryFailed, Log: a.notReady()}, nil
	}
	var r ledger.Result
	if a.pending != nil {
		r = a.checkInWindow(req.Tx)
	} else {
		r = a.led.CheckTx(req.Tx)
	}
	a.remember(req.Tx, r.Code == ledger.CodeOK)
	return &abci.ResponseCheckTx{
		Code: r.Code, Codespace: r.Codespace, Log: r.Log, GasUsed: r.GasUsed, Events: events(r.Events),
	}, nil
}

// checkInWindow is CheckTx between FinalizeBlock and Commit.
func (a *App) checkInWindow(raw []byte) ledger.Result {
	t, r := statelessCheck(raw, a.last.ChainID)
	if r.Code != ledger.CodeOK {
		return r
	}
	full := a.led.CheckTx(raw)
	if full.Code == ledger.CodeNonce && t.Body.Nonce > a.nonce(t.Body.Sender) {
		return r
	}
	return full
}

// remember records (ok) or forgets the sender and nonce of a checked
// transaction.
func (a *App) remember(raw []byte, ok bool) {
	h := sha256.Sum256(raw)
	if !ok {
		delete(a.checked, h)
		return
	}
	if _, seen := a.checked[h]; seen {
		return
	}
	t, err := tx.Decode(raw) // cheap next to the signature check just done
	if err != nil {
		return
	}
	if len(a.checked) >= maxChecked {
		clear(a.checked)
	}
	a.checked[h] = txMeta{sender: t.Body.Sender, nonce: t.Body.Nonce}
}

// statelessCheck decodes raw and checks its chain id, signature and
// message contents, with the ledger's codes.
func statelessCheck(raw []byte, chainID string) (tx.Tx, ledger.Result) {
	var t tx.Tx
	bad := func(code uint32, err error) (tx.Tx, ledger.Result) {
		return t, ledger.Result{Code: code, Codespace: ledger.Codespace, Log: err.Error()}
	}
	t, err := tx.Decode(raw)
	if err != nil {
		return bad(ledger.CodeDecode, err)
	}
	// The ledger's order (runTx): chain id, signature, contents, so that a
	// transaction wrong in several ways gets the same code here as in a block.
	if t.Body.ChainID != chainID {
		return bad(ledger.CodeChainID, fmt.Errorf("transaction for chain %q, this is %q", t.Body.ChainID, chainID))
	}
	if err := t.VerifySignature(); err != nil {
		return bad(ledger.CodeSignature, err)
	}
	if err := t.ValidateBasic(); err != nil {
		switch {
		case errors.Is(err, tx.ErrUnknownMsg):
			return bad(ledger.CodeUnknownMsg, err)
		case errors.Is(err, tx.ErrMalformed):
			return bad(ledger.CodeDecode, err)
		}
		return bad(ledger.CodeInvalid, err)
	}
	return t, ledger.Result{Code: ledger.CodeOK, Log: "ok (stateless; full check after commit)"}
}

// PrepareProposal keeps the mempool's order and stops at the byte limit.
// It drops transactions that fail a fresh, cheap check against the
// committed state: undecodable bytes, another chain id, or a nonce that is
// not the sender's next one given the transactions already in the proposal
// (a replay, or a gap left by a dropped transaction). Signatures and funds
// were checked by CheckTx; execution records any later failure.
func (a *App) PrepareProposal(_ context.Context, req *abci.RequestPrepareProposal) (*abci.ResponsePrepareProposal, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	txs := make([][]byte, 0, len(req.Txs))
	next := map[string]uint64{}
	var size int64
	for _, raw := range req.Txs {
		if size+int64(len(raw)) > req.MaxTxBytes {
			break
		}
		m, ok := a.checked[sha256.Sum256(raw)]
		if !ok {
			t, err := tx.Decode(raw)
			if err != nil || t.Body.ChainID != a.last.ChainID {
				continue
			}
			m = txMeta{sender: t.Body.Sender, nonce: t.Body.Nonce}
		}
		want, ok := next[m.sender]
		if !ok {
			want = a.nonce(m.sender)
		}
		if m.nonce != want {
			continue
		}
		next[m.sender] = want + 1
		size += int64(len(raw))
		txs = append(txs, raw)
	}
	return &abci.ResponsePrepareProposal{Txs: txs}, nil
}

// nonce returns the committed nonce of addr (0 for an unknown account).
func (a *App) nonce(addr string) uint64 {
	if a.led == nil {
		return 0
	}
	v, err := a.led.Query("account/"+addr, nil)
	if err != nil {
		return 0
	}
	var acc struct {
		Nonce uint64 `json:"nonce"`
	}
	if json.Unmarshal(v, &acc) != nil {
		return 0
	}
	return acc.Nonce
}

// ProcessProposal rejects a block carrying a transaction larger than a
// transaction may be; everything else is decided by execution, which
// records failures per transaction (decoding every transaction here would
// cost as much as executing it).
func (a *App) ProcessProposal(_ context.Context, req *abci.RequestProcessProposal) (*abci.ResponseProcessProposal, error) {
	for _, raw := range req.Txs {
		if len(raw) > tx.MaxTxBytes {
			return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_REJECT}, nil
		}
	}
	return &abci.ResponseProcessProposal{Status: abci.ResponseProcessProposal_ACCEPT}, nil
}

// FinalizeBlock executes a decided block and returns its app hash. The
// state changes are held until Commit.
func (a *App) FinalizeBlock(_ context.Context, req *abci.RequestFinalizeBlock) (*abci.ResponseFinalizeBlock, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.led == nil {
		return nil, fmt.Errorf("finalize block: %s", a.notReady())
	}
	if a.pending != nil {
		return nil, fmt.Errorf("finalize block %d: block %d not committed", req.Height, a.pending.height)
	}
	h := ledger.Header{Height: req.Height, Time: req.Time, ChainID: a.last.ChainID}
	if err := a.led.BeginBlock(h); err != nil {
		return nil, fmt.Errorf("finalize block %d: %w", req.Height, err)
	}
	results := make([]*abci.ExecTxResult, len(req.Txs))
	for i, raw := range req.Txs {
		delete(a.checked, sha256.Sum256(raw))
		r := a.led.DeliverTx(raw)
		results[i] = &abci.ExecTxResult{
			Code: r.Code, Codespace: r.Codespace, Log: r.Log, GasUsed: r.GasUsed, Events: events(r.Events),
		}
	}
	ev := a.led.EndBlock()
	appHash, changes := a.led.Commit()
	a.pending = &pendingBlock{height: req.Height, appHash: appHash, changes: changes}
	return &abci.ResponseFinalizeBlock{Events: events(ev), TxResults: results, AppHash: appHash}, nil
}

// Commit persists the finalized block.
func (a *App) Commit(_ context.Context, _ *abci.RequestCommit) (*abci.ResponseCommit, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errors.New("commit: app closed")
	}
	p := a.pending
	if p == nil {
		return nil, errors.New("commit: no finalized block")
	}
	cp := commitPoint{Height: p.height, AppHash: p.appHash, ChainID: a.last.ChainID}
	if err := a.store.commit(p.changes, cp); err != nil {
		return nil, err
	}
	a.last = cp
	a.pending = nil
	// Reset the check-state again: transactions checked in the window after
	// FinalizeBlock are rechecked by CometBFT now, in mempool order.
	if _, extra := a.led.Commit(); len(extra) != 0 {
		return nil, fmt.Errorf("commit height %d: ledger had %d uncommitted changes after the block", cp.Height, len(extra))
	}
	var retain int64
	if a.retain > 0 && p.height > a.retain {
		retain = p.height - a.retain + 1
	}
	return &abci.ResponseCommit{RetainHeight: retain}, nil
}

// Query answers "/<ledger path>" (e.g. "/account/myc1…") with the ledger's
// JSON, from the latest committed state (a query for an older height is an
// error). Failures carry a code and a log.
func (a *App) Query(_ context.Context, req *abci.RequestQuery) (*abci.ResponseQuery, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.led == nil {
		return &abci.ResponseQuery{Code: CodeQueryFailed, Log: a.notReady()}, nil
	}
	if req.Height != 0 && req.Height != a.last.Height {
		return &abci.ResponseQuery{Code: CodeQueryFailed, Height: a.last.Height,
			Log: fmt.Sprintf("query at height %d: only the latest state (height %d) is kept; query with height 0", req.Height, a.last.Height)}, nil
	}
	path := strings.TrimPrefix(req.Path, "/")
	v, err := a.led.Query(path, req.Data)
	if err != nil {
		return &abci.ResponseQuery{Code: queryCode(err), Log: err.Error(), Height: a.last.Height}, nil
	}
	return &abci.ResponseQuery{Value: v, Height: a.last.Height}, nil
}

// queryCode maps a query error to the ledger's code table.
func queryCode(err error) uint32 {
	if c := ledger.ErrorCode(err); c != ledger.CodeOK {
		return c
	}
	return CodeQueryFailed
}

func events(in []ledger.Event) []abci.Event {
	if len(in) == 0 {
		return nil
	}
	out := make([]abci.Event, len(in))
	for i, e := range in {
		attrs := make([]abci.EventAttribute, len(e.Attrs))
		for j, at := range e.Attrs {
			attrs[j] = abci.EventAttribute{Key: at.Key, Value: at.Value, Index: true}
		}
		out[i] = abci.Event{Type: e.Type, Attributes: attrs}
	}
	return out
}
