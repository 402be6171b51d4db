package gatewaytest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"sync"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
)

// Key returns a deterministic ed25519 key and its address for name.
func Key(name string) (ed25519.PrivateKey, string) {
	seed := sha256.Sum256([]byte("gatewaytest/" + name))
	k := ed25519.NewKeyFromSeed(seed[:])
	return k, address.FromPubKey(k.Public().(ed25519.PublicKey))
}

// Anchor is one AnchorReceipts the fake ledger recorded.
type Anchor struct {
	Epoch     uint64
	Root      string
	AuditRoot string
	Count     uint64
}

// Ledger is an in-memory stand-in for the chain the gateway talks to (it implements
// gateway.Chain and gateway.Anchorer).
type Ledger struct {
	chainID string

	mu        sync.Mutex
	providers []ledger.ProviderView
	models    []ledger.Model
	pubkeys   map[string]ed25519.PublicKey
	channels  map[uint64]*ledger.Channel
	epoch     uint64
	anchors   []Anchor
	opened    int
	topups    int
	closed    []uint64
	down      error // answers of Providers and Models while set
}

// NewLedger returns an empty ledger.
func NewLedger(chainID string) *Ledger {
	return &Ledger{chainID: chainID, pubkeys: map[string]ed25519.PublicKey{}, channels: map[uint64]*ledger.Channel{}}
}

// AddModel registers a model id.
func (l *Ledger) AddModel(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.models = append(l.models, ledger.Model{RegisterModel: tx.RegisterModel{ID: id}})
}

// AddProvider registers an active provider serving one model.
func (l *Ledger) AddProvider(addr, endpoint string, pub ed25519.PublicKey, model string, priceIn, priceOut uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.providers = append(l.providers, ledger.ProviderView{Provider: ledger.Provider{Address: addr, Stake: 1000, Endpoint: endpoint,
		Models: []tx.ServedModel{{ModelID: model, PriceInPerMTok: priceIn, PriceOutPerMTok: priceOut}}}, Active: true})
	l.pubkeys[addr] = pub
}

// Jail marks a provider jailed (inactive).
func (l *Ledger) Jail(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.providers {
		if l.providers[i].Address == addr {
			l.providers[i].Jailed, l.providers[i].Active = true, false
		}
	}
}

// SetRecord sets a provider's verification record as the ledger's providers query reports it.
func (l *Ledger) SetRecord(addr string, rep *ledger.Reputation, auditPassRateBps *uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.providers {
		if l.providers[i].Address == addr {
			l.providers[i].Reputation, l.providers[i].AuditPassRateBps = rep, auditPassRateBps
		}
	}
}

// SetCapacity sets a provider's proven capacity as the ledger's providers query reports it
// (nil: no proof).
func (l *Ledger) SetCapacity(addr string, c *ledger.Capacity) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.providers {
		if l.providers[i].Address == addr {
			l.providers[i].ProvenCapacity = c
		}
	}
}

// SetDown makes Providers and Models fail with err (nil: answer again).
func (l *Ledger) SetDown(err error) {
	l.mu.Lock()
	l.down = err
	l.mu.Unlock()
}

// SetEpoch sets the current epoch.
func (l *Ledger) SetEpoch(e uint64) {
	l.mu.Lock()
	l.epoch = e
	l.mu.Unlock()
}

// Anchors returns the anchors recorded.
func (l *Ledger) Anchors() []Anchor {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Anchor(nil), l.anchors...)
}

// Channels returns all channels.
func (l *Ledger) Channels() []ledger.Channel {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ledger.Channel
	for i := uint64(1); i <= uint64(len(l.channels)); i++ {
		out = append(out, *l.channels[i])
	}
	return out
}

// Counts returns how many channels were opened and topped up.
func (l *Ledger) Counts() (opened, topups int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.opened, l.topups
}

// ChainID implements gateway.Chain.
func (l *Ledger) ChainID(context.Context) (string, error) { return l.chainID, nil }

// Providers implements gateway.Chain.
func (l *Ledger) Providers(context.Context) ([]ledger.ProviderView, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down != nil {
		return nil, l.down
	}
	return append([]ledger.ProviderView(nil), l.providers...), nil
}

// Models implements gateway.Chain.
func (l *Ledger) Models(context.Context) ([]ledger.Model, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down != nil {
		return nil, l.down
	}
	return append([]ledger.Model(nil), l.models...), nil
}

// PubKey implements gateway.Chain.
func (l *Ledger) PubKey(_ context.Context, addr string) (ed25519.PublicKey, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k, ok := l.pubkeys[addr]
	if !ok {
		return nil, fmt.Errorf("account %s has no public key", addr)
	}
	return k, nil
}

// Epoch implements gateway.Chain.
func (l *Ledger) Epoch(context.Context) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch, nil
}

// OpenChannel implements gateway.Chain.
func (l *Ledger) OpenChannel(_ context.Context, provider string, deposit uint64) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := uint64(len(l.channels) + 1)
	l.channels[id] = &ledger.Channel{ID: id, Provider: provider, Deposit: deposit}
	l.opened++
	return id, nil
}

// TopUp implements gateway.Chain.
func (l *Ledger) TopUp(_ context.Context, id, amount uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.channels[id]
	if c == nil {
		return fmt.Errorf("no channel %d", id)
	}
	c.Deposit += amount
	l.topups++
	return nil
}

// CloseChannel implements gateway.Chain.
func (l *Ledger) CloseChannel(_ context.Context, id uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.channels[id]
	if c == nil {
		return fmt.Errorf("no channel %d", id)
	}
	c.CloseAt = 1
	l.closed = append(l.closed, id)
	return nil
}

// Anchor implements gateway.Anchorer.
func (l *Ledger) Anchor(_ context.Context, epoch uint64, root, auditRoot string, count uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, a := range l.anchors {
		if a.Epoch == epoch {
			return nil // already anchored, as the ledger answers
		}
	}
	l.anchors = append(l.anchors, Anchor{epoch, root, auditRoot, count})
	return nil
}
