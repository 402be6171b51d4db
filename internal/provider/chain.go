package provider

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/ledger"
)

// Chain is what the provider needs from the ledger.
type Chain interface {
	// ChainID returns the chain id.
	ChainID(ctx context.Context) (string, error)
	// Channel returns a channel; an unknown id gives an error wrapping ledger.ErrNotFound.
	Channel(ctx context.Context, id uint64) (ledger.Channel, error)
	// ProviderChannels returns every channel whose provider is addr.
	ProviderChannels(ctx context.Context, addr string) ([]ledger.Channel, error)
	// PubKey returns an account's public key (nil if the ledger has not seen it).
	PubKey(ctx context.Context, addr string) (ed25519.PublicKey, error)
	// Model returns a registered model; unknown ids wrap ledger.ErrNotFound.
	Model(ctx context.Context, id string) (ledger.Model, error)
	// Provider returns a registered provider; unknown addresses wrap ledger.ErrNotFound.
	Provider(ctx context.Context, addr string) (ledger.ProviderView, error)
	// Submit signs msgs with the provider's key, broadcasts them and waits for the commit.
	Submit(ctx context.Context, msgs ...any) error
	// Params returns the ledger's parameters.
	Params(ctx context.Context) (ledger.Params, error)
	// BlockInterval returns the chain's average block interval, 0 when it cannot tell yet.
	BlockInterval(ctx context.Context) (time.Duration, error)
}

// ClientChain implements Chain over a chain client and the provider's sender.
type ClientChain struct {
	C *chainclient.Client
	S *chainclient.Sender
}

// ChainID implements Chain.
func (c ClientChain) ChainID(ctx context.Context) (string, error) { return c.C.ChainID(ctx) }

// Channel implements Chain.
func (c ClientChain) Channel(ctx context.Context, id uint64) (ledger.Channel, error) {
	var ch ledger.Channel
	err := c.C.Query(ctx, "channel/"+strconv.FormatUint(id, 10), nil, &ch)
	return ch, err
}

// ProviderChannels implements Chain.
func (c ClientChain) ProviderChannels(ctx context.Context, addr string) ([]ledger.Channel, error) {
	var all []ledger.Channel
	if err := c.C.Query(ctx, "channels", []byte(addr), &all); err != nil {
		return nil, err
	}
	out := all[:0]
	for _, ch := range all {
		if ch.Provider == addr {
			out = append(out, ch)
		}
	}
	return out, nil
}

// PubKey implements Chain.
func (c ClientChain) PubKey(ctx context.Context, addr string) (ed25519.PublicKey, error) {
	a, err := c.C.Account(ctx, addr)
	if err != nil {
		return nil, err
	}
	if len(a.PubKey) != ed25519.PublicKeySize {
		return nil, nil
	}
	return ed25519.PublicKey(a.PubKey), nil
}

// Model implements Chain.
func (c ClientChain) Model(ctx context.Context, id string) (ledger.Model, error) {
	var m ledger.Model
	err := c.C.Query(ctx, "model/"+id, nil, &m)
	return m, err
}

// Provider implements Chain.
func (c ClientChain) Provider(ctx context.Context, addr string) (ledger.ProviderView, error) {
	var p ledger.ProviderView
	err := c.C.Query(ctx, "provider/"+addr, nil, &p)
	return p, err
}

// Params implements Chain.
func (c ClientChain) Params(ctx context.Context) (ledger.Params, error) {
	var p ledger.Params
	err := c.C.Query(ctx, "params", nil, &p)
	return p, err
}

// BlockInterval implements Chain: the average interval over the blocks the node keeps.
func (c ClientChain) BlockInterval(ctx context.Context) (time.Duration, error) {
	st, err := c.C.RPC().Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("node status: %w", err)
	}
	si := st.SyncInfo
	n := si.LatestBlockHeight - si.EarliestBlockHeight
	if n < 2 || !si.LatestBlockTime.After(si.EarliestBlockTime) {
		return 0, nil
	}
	return si.LatestBlockTime.Sub(si.EarliestBlockTime) / time.Duration(n), nil
}

// Submit implements Chain.
func (c ClientChain) Submit(ctx context.Context, msgs ...any) error {
	if c.S == nil {
		return errors.New("submit: no sender")
	}
	if _, err := c.S.Submit(ctx, msgs...); err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	return nil
}
