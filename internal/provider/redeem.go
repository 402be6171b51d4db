package provider

import (
	"context"
	"math"
	"time"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
)

// assumedBlockInterval stands for the chain's block interval while it cannot be measured
// (a chain of one block): the interval of `mycel init`'s consensus timeouts.
const assumedBlockInterval = 100 * time.Millisecond

// minChannelPoll bounds the clamped channel poll from below.
const minChannelPoll = 10 * time.Millisecond

// channelPoll returns the interval of the channel poll: the configured channel_poll, clamped
// to a quarter of the close challenge window (channel_challenge_blocks × the chain's average
// block interval), so that the provider sees a consumer's close and gets its redemption
// committed before the channel closes. The rest of the window is for the redemption
// transaction (a block or two) and for blocks coming faster than the average (up to twice as
// fast still leaves a quarter of the window). A longer configured poll is clamped with a
// warning rather than refused: the block interval is measured, not configured, and changes
// with the chain's load and life, so refusing would make a start fail on a measurement the
// provider can accommodate at the price of a cheap query more often.
func (p *Provider) channelPoll(ctx context.Context) time.Duration {
	poll := p.cfg.ChannelPoll
	params, err := p.deps.Chain.Params(ctx)
	if err != nil {
		p.log.Warn("cannot read the ledger parameters; channel_poll not checked against the close challenge window", "err", err)
		return poll
	}
	block, err := p.deps.Chain.BlockInterval(ctx)
	if err != nil || block <= 0 {
		block = assumedBlockInterval
	}
	window := time.Duration(math.MaxInt64)
	if c := params.ChannelChallengeBlocks; c < uint64(math.MaxInt64/block) {
		window = time.Duration(c) * block
	}
	limit := max(window/4, minChannelPoll)
	if poll > limit {
		p.log.Warn("channel_poll could miss a channel's close challenge window; polling more often",
			"channel_poll", poll, "challenge_blocks", params.ChannelChallengeBlocks, "block_interval", block,
			"window", window, "poll", limit)
		return limit
	}
	return poll
}

// redeemLoop re-reads the provider's channels every pollEvery (channelPoll; redeeming at once
// any channel whose consumer started closing it) and redeems every channel with at least
// RedeemMinUmyc pending every RedeemInterval.
func (p *Provider) redeemLoop(ctx context.Context, pollEvery time.Duration) {
	poll := time.NewTicker(pollEvery)
	defer poll.Stop()
	periodic := time.NewTicker(p.cfg.RedeemInterval)
	defer periodic.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			p.refreshChannels(ctx)
			if p.deps.Store.JournalLen() > journalCompactBytes {
				if err := p.pay.compact(); err != nil {
					p.log.Error("compact voucher journal", "err", err)
				}
			}
		case <-periodic.C:
			p.redeemAll(ctx, max(p.cfg.RedeemMinUmyc, 1), "periodic")
		}
	}
}

// refreshChannels updates deposits and close heights from the ledger and redeems closing
// channels before their challenge window ends.
func (p *Provider) refreshChannels(ctx context.Context) {
	chs, err := p.deps.Chain.ProviderChannels(ctx, p.deps.Address)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("read channels", "err", err)
		}
		return
	}
	byID := make(map[uint64]ledger.Channel, len(chs))
	for _, ch := range chs {
		byID[ch.ID] = ch
	}
	for _, st := range p.pay.all() {
		st.mu.Lock()
		ch, ok := byID[st.rec.ID]
		if ok && st.loaded {
			st.ch = ch
			st.rec.Redeemed = max(st.rec.Redeemed, ch.Redeemed)
			p.pay.account(st)
		}
		closing := ok && ch.CloseAt != 0 && !ch.Closed
		st.mu.Unlock()
		if closing {
			p.redeem(ctx, st, "closing")
		}
	}
}

// redeemAll redeems every channel with at least minPending umyc redeemable.
func (p *Provider) redeemAll(ctx context.Context, minPending uint64, reason string) {
	for _, st := range p.pay.all() {
		st.mu.Lock()
		due := min(st.rec.Redeemable.Amount, st.ch.Deposit)
		worth := st.loaded && !st.ch.Closed && due > st.rec.Redeemed && due-st.rec.Redeemed >= minPending
		unverified := st.rec.Latest.Amount > st.verified && st.rec.Latest.Amount <= st.rec.Delivered
		st.mu.Unlock()
		if worth || unverified {
			p.redeem(ctx, st, reason)
		}
	}
}

// redeem submits the channel's redeemable voucher if it pays anything.
func (p *Provider) redeem(ctx context.Context, st *chanState, reason string) {
	st.mu.Lock()
	if !st.loaded || st.redeeming || st.ch.Closed {
		st.mu.Unlock()
		return
	}
	if l := st.rec.Latest; l.Amount > st.verified && l.Amount <= st.rec.Delivered {
		if err := p.pay.verify(st, l); err == nil {
			st.acceptVerified(l)
		} else {
			p.pay.forget(st)
			p.log.Warn("consumer voucher does not verify", "channel_id", st.rec.ID, "err", err)
		}
	}
	v := st.rec.Redeemable
	due := min(v.Amount, st.ch.Deposit)
	if due <= st.rec.Redeemed {
		st.mu.Unlock()
		return
	}
	st.redeeming = true
	id := st.rec.ID
	st.mu.Unlock()

	err := p.deps.Chain.Submit(ctx, tx.RedeemVoucher{Voucher: v})

	st.mu.Lock()
	defer st.mu.Unlock()
	st.redeeming = false
	if err != nil {
		p.metrics.Redemptions.WithLabelValues("error").Inc()
		if chainclient.Code(err) == ledger.CodeStaleVoucher {
			if ch, cerr := p.deps.Chain.Channel(ctx, id); cerr == nil {
				st.ch = ch
				st.rec.Redeemed = max(st.rec.Redeemed, ch.Redeemed)
				p.pay.account(st)
				_ = p.deps.Store.SaveChannelSync(st.rec)
			}
		}
		p.log.Warn("redeem voucher failed", "channel_id", id, "amount_umyc", v.Amount, "reason", reason, "err", err)
		return
	}
	paid := due - min(due, st.rec.Redeemed)
	st.rec.Redeemed = max(st.rec.Redeemed, due)
	p.pay.account(st)
	if err := p.deps.Store.SaveChannelSync(st.rec); err != nil {
		p.log.Error("store redemption", "channel_id", id, "err", err)
	}
	p.metrics.Redemptions.WithLabelValues("ok").Inc()
	p.metrics.RedeemedUmyc.Add(float64(paid))
	p.log.Info("voucher redeemed", "channel_id", id, "paid_umyc", paid, "redeemed_umyc", st.rec.Redeemed, "reason", reason)
}
