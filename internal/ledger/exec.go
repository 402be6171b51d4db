package ledger

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/bits"
	"strconv"

	"github.com/mycel-network/mycel/internal/tx"
)

// exec runs one transaction in a child overlay of parent and merges it only on success.
func (l *Ledger) exec(parent *overlay, raw []byte, height int64, check bool) (res Result) {
	defer func() {
		// The ledger must never panic on input; a panic here is a bug, reported as a failed
		// transaction that changed nothing.
		if r := recover(); r != nil {
			res = errResult(fail(CodeInternal, "internal error: %v", r))
		}
	}()
	o := newOverlay(parent)
	events, err := l.runTx(o, raw, height, check)
	if err != nil {
		return errResult(err)
	}
	o.mergeInto(parent)
	return Result{Code: CodeOK, Log: "ok", Events: events}
}

// spend is what a message takes from the sender's balance.
func spend(m any) uint64 {
	switch m := m.(type) {
	case tx.Send:
		return m.Amount
	case tx.RegisterProvider:
		return m.Stake
	case tx.UpdateProvider:
		return m.AddStake
	case tx.RegisterVerifier:
		return m.Stake
	case tx.OpenChannel:
		return m.Deposit
	case tx.TopUpChannel:
		return m.Amount
	case tx.SubmitEvidence:
		return m.Bond
	}
	return 0
}

func (l *Ledger) runTx(o *overlay, raw []byte, height int64, check bool) ([]Event, error) {
	t, err := tx.Decode(raw)
	if err != nil {
		return nil, fail(CodeDecode, "%v", err)
	}
	b := t.Body
	if b.ChainID != l.chainID {
		return nil, fail(CodeChainID, "wrong chain id: transaction is for %.64q, this chain is %q", b.ChainID, l.chainID)
	}
	if err := l.verifySignature(t, raw, check); err != nil {
		return nil, fail(CodeSignature, "bad signature: %v", err)
	}
	if err := t.ValidateBasic(); err != nil {
		switch {
		case errors.Is(err, tx.ErrUnknownMsg):
			return nil, fail(CodeUnknownMsg, "unknown message: %v", err)
		case errors.Is(err, tx.ErrMalformed):
			return nil, fail(CodeDecode, "malformed message: %v", err)
		default:
			return nil, fail(CodeInvalid, "invalid transaction: %v", err)
		}
	}
	if b.Fee < l.params.MinFee {
		return nil, fail(CodeFee, "fee too low: %dumyc, minimum %dumyc", b.Fee, l.params.MinFee)
	}
	msgs := make([]any, len(b.Msgs))
	total := b.Fee
	for i, m := range b.Msgs {
		v, err := m.Decode()
		if err != nil { // ValidateBasic decoded it already
			return nil, fail(CodeDecode, "malformed message %d: %v", i, err)
		}
		msgs[i] = v
		var carry uint64
		total, carry = bits.Add64(total, spend(v), 0)
		if carry != 0 {
			return nil, fail(CodeOverflow, "amount overflow: fee plus amounts of the transaction exceed 2^64-1 umyc")
		}
	}

	acct, err := l.account(o, b.Sender)
	if err != nil {
		return nil, err
	}
	if b.Nonce != acct.Nonce {
		return nil, fail(CodeNonce, "wrong nonce: account %s has nonce %d, transaction has %d", b.Sender, acct.Nonce, b.Nonce)
	}
	if acct.PubKey == nil {
		acct.PubKey = bytes.Clone(t.PubKey)
	} else if !bytes.Equal(acct.PubKey, t.PubKey) {
		return nil, fail(CodeSignature, "bad signature: public key differs from the one recorded for %s", b.Sender)
	}
	if acct.Balance < b.Fee {
		return nil, fail(CodeInsufficientFunds, "insufficient funds: balance %dumyc, need %dumyc for the fee", acct.Balance, b.Fee)
	}
	acct.Balance -= b.Fee
	acct.Nonce++
	if err := putJSON(o, keyAccount(b.Sender), acct); err != nil {
		return nil, err
	}
	if b.Fee > 0 {
		// Fees go to the reward pool, paid out with the emission to providers and verifiers.
		ep, err := l.epoch(o)
		if err != nil {
			return nil, err
		}
		if ep.RewardPool, err = add(ep.RewardPool, b.Fee, "reward pool"); err != nil {
			return nil, err
		}
		if err := putJSON(o, keyEpoch, ep); err != nil {
			return nil, err
		}
	}
	events := []Event{{Type: "tx", Attrs: []Attr{
		{"sender", b.Sender}, {"nonce", u64(b.Nonce)}, {"fee", u64(b.Fee)},
	}}}
	x := &msgCtx{l: l, o: o, height: height, sender: b.Sender}
	for i, m := range msgs {
		evs, err := x.run(m)
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				return nil, &Error{Code: e.Code, Msg: fmt.Sprintf("message %d (%s): %s", i, b.Msgs[i].Type, e.Msg)}
			}
			return nil, fail(CodeInternal, "message %d (%s): %v", i, b.Msgs[i].Type, err)
		}
		events = append(events, evs...)
	}
	return events, nil
}

// verifySignature checks t's signature unless CheckTx already verified these exact bytes.
func (l *Ledger) verifySignature(t tx.Tx, raw []byte, check bool) error {
	h := sha256.Sum256(raw)
	if _, ok := l.verified[h]; ok {
		if !check {
			delete(l.verified, h)
		}
		return nil
	}
	if err := t.VerifySignature(); err != nil {
		return err
	}
	if check {
		if l.verified == nil || len(l.verified) >= maxVerified {
			l.verified = make(map[[32]byte]struct{})
		}
		l.verified[h] = struct{}{}
	}
	return nil
}

func u64(v uint64) string { return strconv.FormatUint(v, 10) }
func i64(v int64) string  { return strconv.FormatInt(v, 10) }

// add returns a+b or a CodeOverflow error naming what overflowed.
func add(a, b uint64, what string) (uint64, error) {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return 0, fail(CodeOverflow, "amount overflow: %s %dumyc + %dumyc exceeds 2^64-1", what, a, b)
	}
	return s, nil
}

func (l *Ledger) account(g getter, addr string) (Account, error) {
	a, ok, err := getJSON[Account](g, keyAccount(addr))
	if err != nil {
		return Account{}, err
	}
	if !ok {
		a = Account{Address: addr}
	}
	return a, nil
}

func (l *Ledger) supply(g getter) (Supply, error) {
	s, _, err := getJSON[Supply](g, keySupply)
	return s, err
}

func (l *Ledger) epoch(g getter) (Epoch, error) {
	e, _, err := getJSON[Epoch](g, keyEpoch)
	return e, err
}

// debit takes amount from addr's balance.
func (l *Ledger) debit(o *overlay, addr string, amount uint64, what string) error {
	a, err := l.account(o, addr)
	if err != nil {
		return err
	}
	if a.Balance < amount {
		return fail(CodeInsufficientFunds, "insufficient funds: balance %dumyc, need %dumyc for %s", a.Balance, amount, what)
	}
	a.Balance -= amount
	return putJSON(o, keyAccount(addr), a)
}

// credit adds amount to addr's balance, creating the account if needed.
func (l *Ledger) credit(o *overlay, addr string, amount uint64) error {
	a, err := l.account(o, addr)
	if err != nil {
		return err
	}
	if a.Balance, err = add(a.Balance, amount, "balance of "+addr); err != nil {
		return err
	}
	return putJSON(o, keyAccount(addr), a)
}

// msgCtx executes messages of one transaction.
type msgCtx struct {
	l      *Ledger
	o      *overlay
	height int64
	sender string
}

func (x *msgCtx) run(m any) ([]Event, error) {
	switch m := m.(type) {
	case tx.Send:
		return x.send(m)
	case tx.RegisterModel:
		return x.registerModel(m)
	case tx.RegisterProvider:
		return x.registerProvider(m)
	case tx.UpdateProvider:
		return x.updateProvider(m)
	case tx.RegisterVerifier:
		return x.registerVerifier(m)
	case tx.Unbond:
		return x.unbond(m)
	case tx.OpenChannel:
		return x.openChannel(m)
	case tx.TopUpChannel:
		return x.topUpChannel(m)
	case tx.RedeemVoucher:
		return x.redeemVoucher(m)
	case tx.CloseChannel:
		return x.closeChannel(m)
	case tx.AnchorReceipts:
		return x.anchorReceipts(m)
	case tx.CommitAuditSeed:
		return x.commitAuditSeed(m)
	case tx.RevealAuditSeed:
		return x.revealAuditSeed(m)
	case tx.SubmitAuditReport:
		return x.submitAuditReport(m)
	case tx.SubmitEvidence:
		return x.submitEvidence(m)
	case tx.VoteEvidence:
		return x.voteEvidence(m)
	case tx.CommitWeights:
		return x.commitWeights(m)
	case tx.RevealWeights:
		return x.revealWeights(m)
	case tx.RecordCapacity:
		return x.recordCapacity(m)
	}
	return nil, fail(CodeUnknownMsg, "unknown message %T", m)
}

func (x *msgCtx) send(m tx.Send) ([]Event, error) {
	if err := x.l.debit(x.o, x.sender, m.Amount, "the send"); err != nil {
		return nil, err
	}
	if err := x.l.credit(x.o, m.To, m.Amount); err != nil {
		return nil, err
	}
	return []Event{{Type: "transfer", Attrs: []Attr{
		{"sender", x.sender}, {"recipient", m.To}, {"amount", u64(m.Amount)},
	}}}, nil
}

func (x *msgCtx) registerModel(m tx.RegisterModel) ([]Event, error) {
	old, ok, err := getJSON[Model](x.o, keyModel(m.ID))
	if err != nil {
		return nil, err
	}
	if ok {
		if old.SHA256 != m.SHA256 {
			return nil, fail(CodeInvalid, "model %q already registered with sha256 %s; a model id is bound to one file forever", m.ID, old.SHA256)
		}
		return nil, fail(CodeInvalid, "model %q already registered", m.ID)
	}
	if err := putJSON(x.o, keyModel(m.ID), Model{RegisterModel: m, RegisteredBy: x.sender, Height: x.height}); err != nil {
		return nil, err
	}
	return []Event{{Type: "register_model", Attrs: []Attr{
		{"model_id", m.ID}, {"sha256", m.SHA256}, {"sender", x.sender},
	}}}, nil
}

func (x *msgCtx) checkModels(models []tx.ServedModel) error {
	for _, sm := range models {
		_, ok, err := getJSON[Model](x.o, keyModel(sm.ModelID))
		if err != nil {
			return err
		}
		if !ok {
			return fail(CodeNotFound, "model %q not registered", sm.ModelID)
		}
	}
	return nil
}

func (x *msgCtx) registerProvider(m tx.RegisterProvider) ([]Event, error) {
	_, ok, err := getJSON[Provider](x.o, keyProvider(x.sender))
	if err != nil {
		return nil, err
	}
	if ok {
		return nil, fail(CodeInvalid, "%s already registered as a provider; use update_provider", x.sender)
	}
	if m.Stake < x.l.params.MinProviderStake {
		return nil, fail(CodeInvalid, "provider stake %dumyc below the minimum %dumyc", m.Stake, x.l.params.MinProviderStake)
	}
	if err := x.checkModels(m.Models); err != nil {
		return nil, err
	}
	if err := x.l.debit(x.o, x.sender, m.Stake, "the stake"); err != nil {
		return nil, err
	}
	p := Provider{
		Address: x.sender, Stake: m.Stake, Endpoint: m.Endpoint, Hardware: m.Hardware,
		Models: m.Models, Unbonding: []Unbonding{}, Height: x.height,
	}
	if err := putJSON(x.o, keyProvider(x.sender), p); err != nil {
		return nil, err
	}
	return []Event{{Type: "register_provider", Attrs: []Attr{
		{"provider", x.sender}, {"stake", u64(m.Stake)}, {"endpoint", m.Endpoint},
	}}}, nil
}

func (x *msgCtx) updateProvider(m tx.UpdateProvider) ([]Event, error) {
	p, ok, err := getJSON[Provider](x.o, keyProvider(x.sender))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(CodeNotFound, "%s is not a registered provider", x.sender)
	}
	if m.Endpoint != "" {
		p.Endpoint = m.Endpoint
	}
	if !m.Hardware.IsZero() {
		p.Hardware = m.Hardware
	}
	if len(m.Models) > 0 {
		if err := x.checkModels(m.Models); err != nil {
			return nil, err
		}
		p.Models = m.Models
	}
	if m.AddStake > 0 {
		if err := x.l.debit(x.o, x.sender, m.AddStake, "the added stake"); err != nil {
			return nil, err
		}
		if p.Stake, err = add(p.Stake, m.AddStake, "provider stake"); err != nil {
			return nil, err
		}
	}
	if err := putJSON(x.o, keyProvider(x.sender), p); err != nil {
		return nil, err
	}
	return []Event{{Type: "update_provider", Attrs: []Attr{
		{"provider", x.sender}, {"stake", u64(p.Stake)}, {"endpoint", p.Endpoint},
	}}}, nil
}

func (x *msgCtx) registerVerifier(m tx.RegisterVerifier) ([]Event, error) {
	_, ok, err := getJSON[Verifier](x.o, keyVerifier(x.sender))
	if err != nil {
		return nil, err
	}
	if ok {
		return nil, fail(CodeInvalid, "%s already registered as a verifier", x.sender)
	}
	if m.Stake < x.l.params.MinVerifierStake {
		return nil, fail(CodeInvalid, "verifier stake %dumyc below the minimum %dumyc", m.Stake, x.l.params.MinVerifierStake)
	}
	if err := x.l.debit(x.o, x.sender, m.Stake, "the stake"); err != nil {
		return nil, err
	}
	v := Verifier{Address: x.sender, Stake: m.Stake, Unbonding: []Unbonding{}, Height: x.height}
	if err := putJSON(x.o, keyVerifier(x.sender), v); err != nil {
		return nil, err
	}
	return []Event{{Type: "register_verifier", Attrs: []Attr{
		{"verifier", x.sender}, {"stake", u64(m.Stake)},
	}}}, nil
}

// bond is the part of Provider and Verifier that staking code touches.
type bond struct {
	stake     *uint64
	unbonding *[]Unbonding
	jailed    *uint64
	save      func() error
}

// loadBond loads addr's record in role; ok is false if there is none.
func loadBond(o *overlay, addr, role string) (b bond, ok bool, err error) {
	switch role {
	case tx.RoleProvider:
		p, ok, err := getJSON[Provider](o, keyProvider(addr))
		if err != nil || !ok {
			return bond{}, ok, err
		}
		pp := &p
		return bond{&pp.Stake, &pp.Unbonding, &pp.JailedUntilEpoch, func() error { return putJSON(o, keyProvider(addr), *pp) }}, true, nil
	case tx.RoleVerifier:
		v, ok, err := getJSON[Verifier](o, keyVerifier(addr))
		if err != nil || !ok {
			return bond{}, ok, err
		}
		vp := &v
		return bond{&vp.Stake, &vp.Unbonding, &vp.JailedUntilEpoch, func() error { return putJSON(o, keyVerifier(addr), *vp) }}, true, nil
	}
	return bond{}, false, fail(CodeInvalid, "role %q: want provider or verifier", role)
}

func (x *msgCtx) unbond(m tx.Unbond) ([]Event, error) {
	b, ok, err := loadBond(x.o, x.sender, m.Role)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(CodeNotFound, "%s is not a registered %s", x.sender, m.Role)
	}
	if *b.stake < m.Amount {
		return nil, fail(CodeInsufficientFunds, "insufficient funds: bonded %s stake %dumyc, unbond %dumyc", m.Role, *b.stake, m.Amount)
	}
	*b.stake -= m.Amount
	done := x.height + int64(x.l.params.UnbondingBlocks)
	*b.unbonding = append(*b.unbonding, Unbonding{Amount: m.Amount, CompleteHeight: done})
	if err := b.save(); err != nil {
		return nil, err
	}
	q, _, err := getJSON[[]QueueEntry](x.o, keyUnbondQueue(done))
	if err != nil {
		return nil, err
	}
	e := QueueEntry{Address: x.sender, Role: m.Role}
	found := false
	for _, qe := range q {
		found = found || qe == e
	}
	if !found {
		if err := putJSON(x.o, keyUnbondQueue(done), append(q, e)); err != nil {
			return nil, err
		}
	}
	return []Event{{Type: "unbond", Attrs: []Attr{
		{"address", x.sender}, {"role", m.Role}, {"amount", u64(m.Amount)}, {"complete_height", i64(done)},
	}}}, nil
}

// active reports whether a bonded record is active: enough stake and not jailed.
func active(stake, min, jailedUntil, epoch uint64) bool {
	return stake >= min && epoch >= jailedUntil
}

func (x *msgCtx) openChannel(m tx.OpenChannel) ([]Event, error) {
	if m.Provider == x.sender {
		return nil, fail(CodeInvalid, "cannot open a channel to yourself")
	}
	p, ok, err := getJSON[Provider](x.o, keyProvider(m.Provider))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(CodeNotFound, "provider %s not registered", m.Provider)
	}
	ep, err := x.l.epoch(x.o)
	if err != nil {
		return nil, err
	}
	if ep.Number < p.JailedUntilEpoch {
		return nil, fail(CodeJailed, "provider %s is jailed until epoch %d (now %d)", m.Provider, p.JailedUntilEpoch, ep.Number)
	}
	if p.Stake < x.l.params.MinProviderStake {
		return nil, fail(CodeInvalid, "provider %s is inactive: stake %dumyc below the minimum %dumyc", m.Provider, p.Stake, x.l.params.MinProviderStake)
	}
	if err := x.l.debit(x.o, x.sender, m.Deposit, "the deposit"); err != nil {
		return nil, err
	}
	c, _, err := getJSON[Counters](x.o, keyCounters)
	if err != nil {
		return nil, err
	}
	id := c.NextChannelID
	c.NextChannelID++
	if err := putJSON(x.o, keyCounters, c); err != nil {
		return nil, err
	}
	ch := Channel{ID: id, Consumer: x.sender, Provider: m.Provider, Deposit: m.Deposit, OpenedHeight: x.height}
	if err := putJSON(x.o, keyChannel(id), ch); err != nil {
		return nil, err
	}
	return []Event{{Type: "open_channel", Attrs: []Attr{
		{"channel_id", u64(id)}, {"consumer", x.sender}, {"provider", m.Provider}, {"deposit", u64(m.Deposit)},
	}}}, nil
}

func (x *msgCtx) loadChannel(id uint64) (Channel, error) {
	ch, ok, err := getJSON[Channel](x.o, keyChannel(id))
	if err != nil {
		return Channel{}, err
	}
	if !ok {
		return Channel{}, fail(CodeNotFound, "channel %d not found", id)
	}
	return ch, nil
}

func (x *msgCtx) topUpChannel(m tx.TopUpChannel) ([]Event, error) {
	ch, err := x.loadChannel(m.ChannelID)
	if err != nil {
		return nil, err
	}
	if ch.Consumer != x.sender {
		return nil, fail(CodeUnauthorized, "unauthorized: only the consumer %s can top up channel %d", ch.Consumer, ch.ID)
	}
	if ch.Closed || ch.CloseAt != 0 {
		return nil, fail(CodeInvalid, "channel %d is closing or closed", ch.ID)
	}
	if err := x.l.debit(x.o, x.sender, m.Amount, "the top-up"); err != nil {
		return nil, err
	}
	if ch.Deposit, err = add(ch.Deposit, m.Amount, "channel deposit"); err != nil {
		return nil, err
	}
	if err := putJSON(x.o, keyChannel(ch.ID), ch); err != nil {
		return nil, err
	}
	return []Event{{Type: "top_up_channel", Attrs: []Attr{
		{"channel_id", u64(ch.ID)}, {"amount", u64(m.Amount)}, {"deposit", u64(ch.Deposit)},
	}}}, nil
}

func (x *msgCtx) redeemVoucher(m tx.RedeemVoucher) ([]Event, error) {
	v := m.Voucher
	if v.ChainID != x.l.chainID {
		return nil, fail(CodeChainID, "voucher for chain %.64q, this chain is %q", v.ChainID, x.l.chainID)
	}
	ch, err := x.loadChannel(v.ChannelID)
	if err != nil {
		return nil, err
	}
	if ch.Provider != x.sender {
		return nil, fail(CodeUnauthorized, "unauthorized: only the provider %s can redeem vouchers of channel %d", ch.Provider, ch.ID)
	}
	if ch.Closed {
		return nil, fail(CodeInvalid, "channel %d is closed", ch.ID)
	}
	consumer, err := x.l.account(x.o, ch.Consumer)
	if err != nil {
		return nil, err
	}
	if err := v.Verify(consumer.PubKey); err != nil {
		return nil, fail(CodeSignature, "voucher not signed by the consumer %s: %v", ch.Consumer, errors.Unwrap(err))
	}
	due := min(v.Amount, ch.Deposit)
	if due <= ch.Redeemed {
		return nil, fail(CodeStaleVoucher, "stale voucher: channel %d already redeemed %dumyc, voucher pays up to %dumyc", ch.ID, ch.Redeemed, due)
	}
	pay := due - ch.Redeemed
	ch.Redeemed = due
	if err := putJSON(x.o, keyChannel(ch.ID), ch); err != nil {
		return nil, err
	}
	if err := x.l.credit(x.o, x.sender, pay); err != nil {
		return nil, err
	}
	return []Event{{Type: "redeem_voucher", Attrs: []Attr{
		{"channel_id", u64(ch.ID)}, {"provider", x.sender}, {"paid", u64(pay)}, {"redeemed", u64(ch.Redeemed)},
	}}}, nil
}

func (x *msgCtx) closeChannel(m tx.CloseChannel) ([]Event, error) {
	ch, err := x.loadChannel(m.ChannelID)
	if err != nil {
		return nil, err
	}
	if ch.Consumer != x.sender {
		return nil, fail(CodeUnauthorized, "unauthorized: only the consumer %s can close channel %d", ch.Consumer, ch.ID)
	}
	if ch.Closed || ch.CloseAt != 0 {
		return nil, fail(CodeInvalid, "channel %d is already closing or closed", ch.ID)
	}
	ch.CloseAt = x.height + int64(x.l.params.ChannelChallengeBlocks)
	if err := putJSON(x.o, keyChannel(ch.ID), ch); err != nil {
		return nil, err
	}
	q, _, err := getJSON[[]uint64](x.o, keyCloseQueue(ch.CloseAt))
	if err != nil {
		return nil, err
	}
	if err := putJSON(x.o, keyCloseQueue(ch.CloseAt), append(q, ch.ID)); err != nil {
		return nil, err
	}
	return []Event{{Type: "close_channel", Attrs: []Attr{
		{"channel_id", u64(ch.ID)}, {"close_at", i64(ch.CloseAt)},
	}}}, nil
}
