package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mycel-network/mycel/internal/channel"
)

// payer holds the gateway's payment channels, one per provider: it opens a channel the first
// time a provider is used, tops it up before it runs dry, signs a voucher per request for
// everything delivered so far, verifies receipts and closes idle channels.
type payer struct {
	chain   Chain
	key     ed25519.PrivateKey
	address string
	deposit uint64 // first deposit and top-up amount

	mu       sync.Mutex
	chainID  string
	channels map[string]*payChannel
}

type payChannel struct {
	provider string
	mu       sync.Mutex // held while opening or topping up
	id       uint64
	deposit  uint64
	owed     uint64 // cumulative umyc the gateway owes: verified receipts + delivered parts of broken streams
	maxCum   uint64 // largest Cumulative a verified receipt claimed
	lastUsed time.Time
	last     channel.Voucher // the latest voucher signed, reused while owed is unchanged
	// unsure is the most the provider may have delivered beyond what the gateway counted:
	// the maximum cost of attempts that ended without a receipt (cancelled hedges, broken
	// answers). A provider's claim after a 402 is adopted only within it.
	unsure uint64
	// pending are receipts received on the channel whose verification (after the client's
	// answer) has not finished; each channel is closed when it has.
	pending map[*pendingReceipt]struct{}
}

// pendingReceipt is one receipt awaiting asynchronous verification.
type pendingReceipt struct{ done chan struct{} }

func newPayer(chain Chain, key ed25519.PrivateKey, address string, deposit uint64) *payer {
	return &payer{chain: chain, key: key, address: address, deposit: deposit, channels: map[string]*payChannel{}}
}

func (p *payer) getChainID(ctx context.Context) (string, error) {
	p.mu.Lock()
	id := p.chainID
	p.mu.Unlock()
	if id != "" {
		return id, nil
	}
	id, err := p.chain.ChainID(ctx)
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	p.chainID = id
	p.mu.Unlock()
	return id, nil
}

func (p *payer) channel(provider string) *payChannel {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.channels[provider]
	if c == nil {
		c = &payChannel{provider: provider}
		p.channels[provider] = c
	}
	return c
}

// voucher returns the voucher to attach to a request to provider that may cost up to
// maxCost: it opens the channel or tops it up first if the deposit would not cover it.
func (p *payer) voucher(ctx context.Context, provider string, maxCost uint64, now time.Time) (channel.Voucher, error) {
	chainID, err := p.getChainID(ctx)
	if err != nil {
		return channel.Voucher{}, fmt.Errorf("voucher: %w", err)
	}
	c := p.channel(provider)
	c.mu.Lock()
	defer c.mu.Unlock()
	need := max(p.deposit, 2*maxCost)
	if c.id == 0 {
		id, err := p.chain.OpenChannel(ctx, provider, need)
		if err != nil {
			return channel.Voucher{}, fmt.Errorf("voucher: %w", err)
		}
		c.id, c.deposit = id, need
	} else if c.deposit-min(c.owed, c.deposit) < maxCost {
		if err := p.chain.TopUp(ctx, c.id, need); err != nil {
			return channel.Voucher{}, fmt.Errorf("voucher: %w", err)
		}
		c.deposit += need
	}
	c.lastUsed = now
	if c.last.ChannelID != c.id || c.last.Amount != c.owed || c.last.Signature == nil {
		// Concurrent requests between two receipts share one signature.
		c.last = channel.SignVoucher(chainID, c.id, c.owed, p.key)
	}
	return c.last, nil
}

// expect registers a receipt received from provider that will be verified after the client's
// answer; the caller passes the result to verified once it has been settled (or rejected).
func (p *payer) expect(provider string) *pendingReceipt {
	c := p.channel(provider)
	pr := &pendingReceipt{done: make(chan struct{})}
	c.mu.Lock()
	if c.pending == nil {
		c.pending = map[*pendingReceipt]struct{}{}
	}
	c.pending[pr] = struct{}{}
	c.mu.Unlock()
	return pr
}

// verified ends pr and, when no other receipt is pending on provider's channel, signs the
// voucher the next request will need now, off the request path: its amount is what the
// gateway owes once this receipt is accounted.
func (p *payer) verified(ctx context.Context, provider string, pr *pendingReceipt) {
	c := p.channel(provider)
	c.mu.Lock()
	delete(c.pending, pr)
	close(pr.done)
	id, owed := c.id, c.owed
	stale := len(c.pending) == 0 && id != 0 && (c.last.ChannelID != id || c.last.Amount != owed || c.last.Signature == nil)
	c.mu.Unlock()
	if !stale {
		return
	}
	chainID, err := p.getChainID(ctx)
	if err != nil {
		return // the request path signs it then
	}
	v := channel.SignVoucher(chainID, id, owed, p.key)
	c.mu.Lock()
	if c.id == id && c.owed == owed {
		c.last = v
	}
	c.mu.Unlock()
}

// drain waits until the receipts pending on provider's channel when it is called have been
// verified (after a 402, so that the voucher retried covers them).
func (p *payer) drain(ctx context.Context, provider string) error {
	c := p.channel(provider)
	c.mu.Lock()
	waits := make([]chan struct{}, 0, len(c.pending))
	for pr := range c.pending {
		waits = append(waits, pr.done)
	}
	c.mu.Unlock()
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// errReceipt marks a receipt that failed verification.
var errReceipt = errors.New("receipt rejected")

// settle verifies a receipt for a request sent to provider on its channel and adds its cost
// to what the gateway owes. sentHash is the hex sha256 of the body the gateway sent; want
// are the prices the provider registered for the model.
func (p *payer) settle(ctx context.Context, provider string, pub ed25519.PublicKey, r channel.Receipt, requestID, sentHash string, priceIn, priceOut uint64) error {
	chainID, err := p.getChainID(ctx)
	if err != nil {
		return err
	}
	if err := r.Verify(pub); err != nil {
		return fmt.Errorf("%w: %w", errReceipt, err)
	}
	c := p.channel(provider)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case r.ChainID != chainID:
		return fmt.Errorf("%w: chain id %q, want %q", errReceipt, r.ChainID, chainID)
	case r.Provider != provider:
		return fmt.Errorf("%w: provider %s, want %s", errReceipt, r.Provider, provider)
	case r.Consumer != p.address:
		return fmt.Errorf("%w: consumer %s, want %s", errReceipt, r.Consumer, p.address)
	case r.ChannelID != c.id:
		return fmt.Errorf("%w: channel %d, want %d", errReceipt, r.ChannelID, c.id)
	case r.RequestID != requestID:
		return fmt.Errorf("%w: request id %q, want %q", errReceipt, r.RequestID, requestID)
	case r.RequestHash != "" && r.RequestHash != sentHash:
		return fmt.Errorf("%w: request hash does not match the body sent", errReceipt)
	case r.PriceInPerMTok > priceIn || r.PriceOutPerMTok > priceOut:
		return fmt.Errorf("%w: prices %d/%d above the registered %d/%d", errReceipt, r.PriceInPerMTok, r.PriceOutPerMTok, priceIn, priceOut)
	}
	c.owed += r.Cost
	c.maxCum = max(c.maxCum, r.Cumulative)
	return nil
}

// bill adds umyc the gateway owes provider for tokens delivered without a receipt (a broken
// stream).
func (p *payer) bill(provider string, umyc uint64) {
	c := p.channel(provider)
	c.mu.Lock()
	c.owed += umyc
	c.mu.Unlock()
}

// uncertain records that an attempt on provider's channel that may have cost up to maxCost
// ended without a receipt.
func (p *payer) uncertain(provider string, maxCost uint64) {
	c := p.channel(provider)
	c.mu.Lock()
	c.unsure += maxCost
	c.mu.Unlock()
}

// reconcile is called after the provider answered 402 with claimed = its delivered total: it
// adopts the claim when it exceeds what the gateway owes by no more than the uncertain
// attempts could have cost plus slack (rounding), and reports whether it did.
func (p *payer) reconcile(provider string, claimed, slack uint64) (ok bool, beyondUnsure uint64) {
	c := p.channel(provider)
	c.mu.Lock()
	defer c.mu.Unlock()
	if claimed <= c.owed {
		return true, 0
	}
	extra := claimed - c.owed
	if extra > c.unsure+slack {
		return false, extra - min(extra, c.unsure)
	}
	beyondUnsure = extra - min(extra, c.unsure)
	c.unsure -= min(extra, c.unsure)
	c.owed = claimed
	return true, beyondUnsure
}

// channelID returns the id of provider's channel, 0 if none is open.
func (p *payer) channelID(provider string) uint64 {
	c := p.channel(provider)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.id
}

// idle returns channels unused since before cutoff and forgets them; the caller settles and
// closes them.
func (p *payer) idle(cutoff time.Time) []ChannelState {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []ChannelState
	for prov, c := range p.channels {
		c.mu.Lock()
		if c.id != 0 && c.lastUsed.Before(cutoff) {
			out = append(out, ChannelState{Provider: c.provider, ID: c.id, Deposit: c.deposit, Owed: c.owed})
			delete(p.channels, prov)
		}
		c.mu.Unlock()
	}
	return out
}

// ChannelState is one open payment channel as the gateway sees it.
type ChannelState struct {
	Provider string `json:"provider"`
	ID       uint64 `json:"id"`
	Deposit  uint64 `json:"deposit"`
	Owed     uint64 `json:"owed"`
}

func (p *payer) snapshot() []ChannelState {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []ChannelState
	for _, c := range p.channels {
		c.mu.Lock()
		if c.id != 0 {
			out = append(out, ChannelState{Provider: c.provider, ID: c.id, Deposit: c.deposit, Owed: c.owed})
		}
		c.mu.Unlock()
	}
	return out
}
