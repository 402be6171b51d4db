package provider

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"time"

	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
)

// MemChain is an in-memory Chain for tests and benchmarks: channels, keys and models are set
// by hand; Submit applies redemptions (with the ledger's rules) and records every message.
type MemChain struct {
	ID string
	// Sender is the address Submit acts as (the provider's).
	Sender string
	// Params are the ledger parameters (DefaultParams).
	LedgerParams ledger.Params
	// BlockTime is the block interval: a closing channel closes ChannelChallengeBlocks × BlockTime
	// after StartClose (default 1 s).
	BlockTime time.Duration

	mu        sync.Mutex
	channels  map[uint64]ledger.Channel
	pubs      map[string]ed25519.PublicKey
	models    map[string]ledger.Model
	providers map[string]ledger.ProviderView
	submitted []any
}

// NewMemChain returns an empty chain with the given id.
func NewMemChain(chainID string) *MemChain {
	return &MemChain{ID: chainID, LedgerParams: ledger.DefaultParams(), BlockTime: time.Second, channels: map[uint64]ledger.Channel{}, pubs: map[string]ed25519.PublicKey{},
		models: map[string]ledger.Model{}, providers: map[string]ledger.ProviderView{}}
}

// SetChannel adds or replaces a channel.
func (c *MemChain) SetChannel(ch ledger.Channel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.channels[ch.ID] = ch
}

// SetPubKey records an account's public key.
func (c *MemChain) SetPubKey(addr string, pub ed25519.PublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pubs[addr] = pub
}

// SetModel registers a model.
func (c *MemChain) SetModel(m tx.RegisterModel) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.models[m.ID] = ledger.Model{RegisterModel: m, RegisteredBy: "genesis"}
}

// Submitted returns the messages submitted so far.
func (c *MemChain) Submitted() []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]any(nil), c.submitted...)
}

// StartClose starts closing a channel as its consumer would: CloseAt is set at once, and the
// channel closes ChannelChallengeBlocks block times later (a redemption after that fails).
// The returned channel is closed then.
func (c *MemChain) StartClose(id uint64) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	done := make(chan struct{})
	ch := c.channels[id]
	ch.CloseAt = int64(c.LedgerParams.ChannelChallengeBlocks) + 1
	c.channels[id] = ch
	time.AfterFunc(time.Duration(c.LedgerParams.ChannelChallengeBlocks)*c.BlockTime, func() {
		c.mu.Lock()
		ch := c.channels[id]
		ch.Closed = true
		c.channels[id] = ch
		c.mu.Unlock()
		close(done)
	})
	return done
}

// Params implements Chain.
func (c *MemChain) Params(context.Context) (ledger.Params, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.LedgerParams, nil
}

// BlockInterval implements Chain.
func (c *MemChain) BlockInterval(context.Context) (time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.BlockTime, nil
}

// ChainID implements Chain.
func (c *MemChain) ChainID(context.Context) (string, error) { return c.ID, nil }

// Channel implements Chain.
func (c *MemChain) Channel(_ context.Context, id uint64) (ledger.Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.channels[id]
	if !ok {
		return ch, fmt.Errorf("channel %d: %w", id, ledger.ErrNotFound)
	}
	return ch, nil
}

// ProviderChannels implements Chain.
func (c *MemChain) ProviderChannels(_ context.Context, addr string) ([]ledger.Channel, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ledger.Channel
	for _, ch := range c.channels {
		if ch.Provider == addr {
			out = append(out, ch)
		}
	}
	return out, nil
}

// PubKey implements Chain.
func (c *MemChain) PubKey(_ context.Context, addr string) (ed25519.PublicKey, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pubs[addr], nil
}

// Model implements Chain.
func (c *MemChain) Model(_ context.Context, id string) (ledger.Model, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.models[id]
	if !ok {
		return m, fmt.Errorf("model %s: %w", id, ledger.ErrNotFound)
	}
	return m, nil
}

// Provider implements Chain.
func (c *MemChain) Provider(_ context.Context, addr string) (ledger.ProviderView, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.providers[addr]
	if !ok {
		return p, fmt.Errorf("provider %s: %w", addr, ledger.ErrNotFound)
	}
	return p, nil
}

// Submit implements Chain: RedeemVoucher follows the ledger's rules (chain id, signature,
// stale); RegisterProvider and UpdateProvider are recorded. The sender is the provider of
// the redeemed channel.
func (c *MemChain) Submit(_ context.Context, msgs ...any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		switch m := m.(type) {
		case tx.RedeemVoucher:
			v := m.Voucher
			if v.ChainID != c.ID {
				return fmt.Errorf("redeem: wrong chain id")
			}
			ch, ok := c.channels[v.ChannelID]
			if !ok {
				return fmt.Errorf("redeem: channel %d: %w", v.ChannelID, ledger.ErrNotFound)
			}
			if err := v.Verify(c.pubs[ch.Consumer]); err != nil {
				return fmt.Errorf("redeem: %w", err)
			}
			if ch.Closed {
				return fmt.Errorf("redeem: channel %d is closed", ch.ID)
			}
			due := min(v.Amount, ch.Deposit)
			if due <= ch.Redeemed {
				return fmt.Errorf("redeem: stale voucher")
			}
			ch.Redeemed = due
			c.channels[ch.ID] = ch
		case tx.RegisterProvider:
			c.providers[c.Sender] = ledger.ProviderView{Provider: ledger.Provider{Address: c.Sender, Stake: m.Stake, Endpoint: m.Endpoint, Hardware: m.Hardware, Models: m.Models}, Active: true}
		case tx.UpdateProvider:
			p, ok := c.providers[c.Sender]
			if !ok {
				return fmt.Errorf("update provider: not registered")
			}
			if m.Endpoint != "" {
				p.Endpoint = m.Endpoint
			}
			if !m.Hardware.IsZero() {
				p.Hardware = m.Hardware
			}
			if len(m.Models) > 0 {
				p.Models = m.Models
			}
			p.Stake += m.AddStake
			c.providers[c.Sender] = p
		}
		c.submitted = append(c.submitted, m)
	}
	return nil
}
