package provider

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/openai"
)

// HeaderDelivered carries the provider's delivered total on a 402 about a stale voucher.
const HeaderDelivered = "X-Mycel-Delivered"

var (
	errNoCredit   = errors.New("channel credit exhausted")
	errNoDeposit  = errors.New("channel deposit exhausted")
	errBadVoucher = errors.New("voucher signature invalid")
)

// payments tracks every channel: what was delivered, the vouchers received, what is being
// served on credit right now.
//
// Invariant (per channel): delivered + inflight ≤ min(verified + credit, deposit), where
// verified is the largest voucher amount whose signature was checked. Vouchers are verified
// lazily: the first of a channel at once, later ones only when serving would otherwise
// exceed the credit. A forged voucher therefore never raises the provider's exposure beyond
// the credit; it is rejected with 402 the moment it would be relied on.
type payments struct {
	chainID string
	self    string
	credit  uint64
	chain   Chain
	store   *Store

	onVerify  func()       // counts signature checks (metrics)
	onPending func(uint64) // reports the pending total (metrics)

	pendMu  sync.Mutex
	pending uint64 // Σ chanState.counted

	mu    sync.Mutex
	chans map[uint64]*chanState

	flushMu sync.Mutex // one flush at a time: it is the only holder of several chanState locks
}

// verify checks v's signature against the channel's consumer key. st.mu is held.
func (p *payments) verify(st *chanState, v channel.Voucher) error {
	if p.onVerify != nil {
		p.onVerify()
	}
	return v.Verify(st.pub)
}

type chanState struct {
	mu       sync.Mutex
	loaded   bool
	rec      ChannelRecord
	ch       ledger.Channel
	pub      ed25519.PublicKey
	verified uint64 // amount of the largest verified voucher
	inflight uint64 // umyc charged by requests still running

	counted uint64 // this channel's share of payments.pending

	checked   bool // a voucher of this channel has been verified
	dirty     bool // rec changed since it was last written
	dead      bool // loading failed; the state was dropped from the map
	redeeming bool // a redemption transaction is on its way
}

func payErr(format string, args ...any) *openai.Error {
	return &openai.Error{Status: http.StatusPaymentRequired, Type: openai.TypePayment, Code: openai.CodePaymentRequired, Message: fmt.Sprintf(format, args...)}
}

// state returns the channel's state, loading it from the store and the ledger on first use.
func (p *payments) state(ctx context.Context, id uint64) (*chanState, *openai.Error) {
	for {
		p.mu.Lock()
		st := p.chans[id]
		if st == nil {
			st = &chanState{}
			p.chans[id] = st
		}
		p.mu.Unlock()
		st.mu.Lock()
		switch {
		case st.loaded:
			st.mu.Unlock()
			return st, nil
		case st.dead:
			st.mu.Unlock()
			continue // another request's load failed and dropped it: start afresh
		}
		e := p.load(ctx, st, id)
		if e != nil {
			st.dead = true
			p.mu.Lock()
			if p.chans[id] == st {
				delete(p.chans, id)
			}
			p.mu.Unlock()
		}
		st.mu.Unlock()
		if e != nil {
			return nil, e
		}
		return st, nil
	}
}

// load reads a channel from the ledger and the store into st. st.mu is held.
func (p *payments) load(ctx context.Context, st *chanState, id uint64) *openai.Error {
	ch, err := p.chain.Channel(ctx, id)
	if err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			return payErr("payment channel %d does not exist on chain %s", id, p.chainID)
		}
		return &openai.Error{Status: http.StatusServiceUnavailable, Type: openai.TypeUnavailable, Message: "cannot read the payment channel from the ledger: " + err.Error()}
	}
	if ch.Provider != p.self {
		return payErr("payment channel %d is with provider %s, not with this provider (%s)", id, ch.Provider, p.self)
	}
	pub, err := p.chain.PubKey(ctx, ch.Consumer)
	if err != nil || pub == nil {
		return &openai.Error{Status: http.StatusServiceUnavailable, Type: openai.TypeUnavailable, Message: fmt.Sprintf("cannot read the public key of consumer %s: %v", ch.Consumer, err)}
	}
	rec, ok, err := p.store.Channel(id)
	if err != nil {
		return storeErr(err)
	}
	if !ok {
		rec = ChannelRecord{ID: id}
	}
	st.rec, st.ch, st.pub, st.loaded = rec, ch, pub, true
	st.rec.Redeemed = max(st.rec.Redeemed, ch.Redeemed)
	st.verified = rec.Redeemable.Amount // only verified vouchers become redeemable
	st.checked = rec.Redeemable.Signature != nil
	p.account(st)
	return nil
}

// account brings the pending total (delivered and not redeemed, on channels not closed) up
// to date with st after its delivered total, redeemed total or close state changed, and
// reports it. st.mu is held.
func (p *payments) account(st *chanState) {
	var n uint64
	if !st.ch.Closed && st.rec.Delivered > st.rec.Redeemed {
		n = st.rec.Delivered - st.rec.Redeemed
	}
	if n == st.counted {
		return
	}
	p.pendMu.Lock()
	defer p.pendMu.Unlock()
	p.pending = p.pending - st.counted + n
	st.counted = n
	if p.onPending != nil {
		p.onPending(p.pending)
	}
}

// refresh re-reads a channel's deposit and close state from the ledger (after a top-up).
func (p *payments) refresh(ctx context.Context, st *chanState) error {
	st.mu.Lock()
	id := st.rec.ID
	st.mu.Unlock()
	ch, err := p.chain.Channel(ctx, id)
	if err != nil {
		return err
	}
	st.mu.Lock()
	st.ch = ch
	st.rec.Redeemed = max(st.rec.Redeemed, ch.Redeemed)
	p.account(st)
	st.mu.Unlock()
	return nil
}

// admit checks a voucher attached to a request (or sent alone) and records it when it is the
// newest.
func (p *payments) admit(ctx context.Context, v channel.Voucher) (*chanState, *openai.Error) {
	if v.ChainID != p.chainID {
		return nil, payErr("voucher is for chain %q, this provider is on chain %q", v.ChainID, p.chainID)
	}
	if v.ChannelID == 0 {
		return nil, payErr("voucher has no channel id")
	}
	st, e := p.state(ctx, v.ChannelID)
	if e != nil {
		return nil, e
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ch.Closed || st.ch.CloseAt != 0 {
		return nil, payErr("payment channel %d is closed or closing; open a new one", v.ChannelID)
	}
	if v.Amount < st.rec.Delivered {
		return nil, payErr("stale voucher: amount %d umyc does not cover the %d umyc already delivered on channel %d", v.Amount, st.rec.Delivered, v.ChannelID)
	}
	newer := v.Amount > st.rec.Latest.Amount || st.rec.Latest.Signature == nil
	switch {
	case !st.checked:
		// The first voucher of a channel is checked at once: a wrong key or channel is
		// reported on the first request.
		if err := p.verify(st, v); err != nil {
			return nil, payErr("voucher for channel %d: %v", v.ChannelID, err)
		}
		st.checked = true
		st.dirty = true // acceptVerified may change Redeemable
		if newer {
			if err := p.setLatest(st, v); err != nil {
				return nil, storeErr(err)
			}
		}
		st.acceptVerified(v)
	case !newer:
		return st, nil // an older or repeated voucher: nothing new
	default:
		// Checked when the credit needs it. Journaled before the request goes on, so that a
		// request ending without a receipt, or a crash while it runs, loses no voucher.
		if err := p.setLatest(st, v); err != nil {
			return nil, storeErr(err)
		}
	}
	return st, nil
}

func storeErr(err error) *openai.Error {
	return &openai.Error{Status: http.StatusInternalServerError, Type: openai.TypeServer, Message: "provider store: " + err.Error()}
}

// setLatest makes v the channel's latest voucher and appends it to the store's voucher
// journal (Store.LogVoucher: it survives kill -9 at the cost of one write(2), no fsync). The
// channel record itself reaches pebble with the next receipt of the channel (one synced
// batch), a redemption, a journal compaction or shutdown (flush). st.mu is held.
func (p *payments) setLatest(st *chanState, v channel.Voucher) error {
	st.rec.Latest = v
	st.dirty = true
	return p.store.LogVoucher(v)
}

// forget drops a latest voucher that failed verification; the best verified one takes its
// place. st.mu is held. Journaling the change may fail without harm: a forged voucher
// brought back by a restart is checked, and forgotten, again.
func (p *payments) forget(st *chanState) {
	v := st.rec.Redeemable
	st.rec.Latest = v
	st.dirty = true
	if v.ChannelID == 0 {
		v.ChannelID = st.rec.ID // no verified voucher yet: journal an empty one of the channel
	}
	_ = p.store.LogVoucher(v)
}

// flush writes every channel record changed since its last write, in one synced batch.
func (p *payments) flush() error {
	var (
		recs []ChannelRecord
		sts  []*chanState
	)
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	all := p.all()
	for _, st := range all {
		st.mu.Lock() // held until the batch is written: no change may slip between
	}
	defer func() {
		for _, st := range all {
			st.mu.Unlock()
		}
	}()
	for _, st := range all {
		if st.loaded && st.dirty {
			recs, sts = append(recs, st.rec), append(sts, st)
		}
	}
	if err := p.store.SaveChannelsSync(recs); err != nil {
		return err
	}
	for _, st := range sts {
		st.dirty = false
	}
	return nil
}

// journalCompactBytes is the voucher journal's size beyond which compact runs (on the
// channel poll): about 10,000 vouchers.
const journalCompactBytes = 4 << 20

// compact empties the voucher journal: rotate it, write every changed channel record (synced),
// drop the rotated journal. A voucher journaled before the rotation was set under its
// channel's lock together with the dirty flag, so flush writes it.
func (p *payments) compact() error {
	if err := p.store.RotateJournal(); err != nil {
		return err
	}
	if err := p.flush(); err != nil {
		return err
	}
	return p.store.DropOldJournal()
}

// acceptVerified records a verified voucher. st.mu is held.
func (st *chanState) acceptVerified(v channel.Voucher) {
	st.verified = max(st.verified, v.Amount)
	st.checked = true
	if v.Amount <= st.rec.Delivered && v.Amount > st.rec.Redeemable.Amount {
		st.rec.Redeemable = v
	}
}

// limit is the most the channel may have delivered plus in flight. st.mu is held.
func (st *chanState) limit(credit uint64) uint64 {
	l := st.verified + credit
	if l < st.verified { // overflow
		l = ^uint64(0)
	}
	return min(l, st.ch.Deposit)
}

// charge reserves delta umyc for a running request. It verifies the latest voucher if that
// is what makes room; it returns errNoCredit, errNoDeposit or errBadVoucher otherwise.
func (p *payments) charge(st *chanState, delta uint64) error {
	if delta == 0 {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	need := st.rec.Delivered + st.inflight + delta
	if need > st.limit(p.credit) && st.rec.Latest.Amount > st.verified {
		if err := p.verify(st, st.rec.Latest); err != nil {
			p.forget(st) // the best verified voucher stays
			return fmt.Errorf("%w: %v", errBadVoucher, err)
		}
		st.acceptVerified(st.rec.Latest)
	}
	if need > st.limit(p.credit) {
		if need > st.ch.Deposit {
			return errNoDeposit
		}
		return errNoCredit
	}
	st.inflight += delta
	return nil
}

// refund returns umyc reserved by charge.
func (p *payments) refund(st *chanState, amount uint64) {
	st.mu.Lock()
	st.inflight -= min(amount, st.inflight)
	st.mu.Unlock()
}

// settle ends a request that reserved charged umyc and delivered cost umyc (cost ≤ charged):
// it adds cost to the delivered total, builds the receipt with the new cumulative, and writes
// receipt and channel record in one synced batch. It returns the signed receipt's JSON.
//
// The receipt is stored unsigned and signed while the batch is being synced: ed25519
// signatures are deterministic (RFC 8032), so the stored receipt's signature is recomputed
// identically whenever it is needed (serveReceipt), and signing overlaps the fsync instead of
// adding to it.
func (p *payments) settle(st *chanState, charged, cost uint64, key ed25519.PrivateKey, ids []int32, logprobs []float32, build func(cumulative uint64) channel.Receipt) ([]byte, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.inflight -= min(charged, st.inflight)
	prev := st.rec
	st.rec.Delivered += cost
	st.rec.Receipts++
	if st.rec.Latest.Amount <= st.rec.Delivered && st.rec.Latest.Amount <= st.verified {
		st.acceptVerified(st.rec.Latest)
	}
	r := build(st.rec.Delivered)
	r.Signature = nil
	unsigned, err := json.Marshal(r) // canonical: the sign bytes after the domain
	if err != nil {
		st.rec = prev
		return nil, fmt.Errorf("encode receipt: %w", err)
	}
	sigc := make(chan []byte, 1)
	go func() {
		msg := make([]byte, 0, len(channel.ReceiptDomain)+len(unsigned))
		msg = append(append(msg, channel.ReceiptDomain...), unsigned...)
		sigc <- ed25519.Sign(key, msg)
	}()
	err = p.store.commitEncoded(st.rec, r, unsigned, true, ids, logprobs)
	sig := <-sigc
	if err != nil {
		st.rec = prev
		return nil, err
	}
	st.dirty = false
	p.account(st)
	return signedJSON(unsigned, sig), nil
}

// signedJSON turns the JSON of an unsigned receipt into that of the signed one: the
// signature is the last field, base64 as encoding/json writes []byte.
func signedJSON(unsigned, sig []byte) []byte {
	out := make([]byte, 0, len(unsigned)+16+base64.StdEncoding.EncodedLen(len(sig)))
	out = append(out, unsigned[:len(unsigned)-1]...)
	out = append(out, `,"signature":"`...)
	out = base64.StdEncoding.AppendEncode(out, sig)
	return append(out, '"', '}')
}

// channelInfo answers GET /mycel/v1/channels/{id}.
type channelInfo struct {
	ID            uint64 `json:"id"`
	Consumer      string `json:"consumer"`
	Deposit       uint64 `json:"deposit"`
	Delivered     uint64 `json:"delivered"`
	VoucherAmount uint64 `json:"voucher_amount"`
	Verified      uint64 `json:"verified_amount"`
	InFlight      uint64 `json:"in_flight"`
	CreditLeft    uint64 `json:"credit_left"`
	Redeemed      uint64 `json:"redeemed"`
	Receipts      uint64 `json:"receipts"`
	Closing       bool   `json:"closing"`
}

func (p *payments) info(st *chanState) channelInfo {
	st.mu.Lock()
	defer st.mu.Unlock()
	used := st.rec.Delivered + st.inflight
	lim := st.limit(p.credit)
	if st.rec.Latest.Amount > st.verified {
		// An unverified newer voucher would be checked and used on demand.
		l := min(st.rec.Latest.Amount+p.credit, st.ch.Deposit)
		lim = max(lim, l)
	}
	left := uint64(0)
	if lim > used {
		left = lim - used
	}
	return channelInfo{ID: st.rec.ID, Consumer: st.ch.Consumer, Deposit: st.ch.Deposit, Delivered: st.rec.Delivered,
		VoucherAmount: st.rec.Latest.Amount, Verified: st.verified, InFlight: st.inflight, CreditLeft: left,
		Redeemed: st.rec.Redeemed, Receipts: st.rec.Receipts, Closing: st.ch.CloseAt != 0 || st.ch.Closed}
}

// delivered returns the delivered total of a loaded channel.
func (p *payments) delivered(id uint64) (uint64, bool) {
	p.mu.Lock()
	st := p.chans[id]
	p.mu.Unlock()
	if st == nil {
		return 0, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.rec.Delivered, st.loaded
}

// all returns the loaded channel states.
func (p *payments) all() []*chanState {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*chanState, 0, len(p.chans))
	for _, st := range p.chans {
		out = append(out, st)
	}
	return out
}
