package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
)

// Chain is what the gateway needs from the ledger. LedgerChain implements it over
// chainclient; tests use fakes.
type Chain interface {
	// ChainID returns the chain id vouchers are signed for.
	ChainID(ctx context.Context) (string, error)
	// Providers returns every registered provider.
	Providers(ctx context.Context) ([]ledger.ProviderView, error)
	// Models returns every registered model.
	Models(ctx context.Context) ([]ledger.Model, error)
	// PubKey returns the public key of an account (a provider's, to verify its receipts).
	PubKey(ctx context.Context, addr string) (ed25519.PublicKey, error)
	// Epoch returns the ledger's current epoch number.
	Epoch(ctx context.Context) (uint64, error)
	// OpenChannel locks deposit umyc from the gateway's account for provider and returns the
	// new channel's id once committed.
	OpenChannel(ctx context.Context, provider string, deposit uint64) (uint64, error)
	// TopUp adds amount umyc to the deposit of channel id.
	TopUp(ctx context.Context, id, amount uint64) error
	// CloseChannel starts closing channel id.
	CloseChannel(ctx context.Context, id uint64) error
}

// Anchorer records the Merkle root of an epoch's receipts on the ledger (AnchorReceipts):
// root is the ReceiptLog's RFC 6962 root, auditRoot tx.AnchorRoot over the same receipts'
// (provider, request id). Anchoring an epoch that is already anchored must succeed.
type Anchorer interface {
	Anchor(ctx context.Context, epoch uint64, root, auditRoot string, count uint64) error
}

// LedgerChain is Chain over a chainclient.Client, sending transactions from Key (the gateway's
// consumer account).
type LedgerChain struct {
	Client *chainclient.Client
	Key    keys.Key
}

var (
	_ Chain    = LedgerChain{}
	_ Anchorer = LedgerChain{}
)

// Anchor implements Anchorer with an AnchorReceipts transaction.
func (c LedgerChain) Anchor(ctx context.Context, epoch uint64, root, auditRoot string, count uint64) error {
	_, err := c.Client.Submit(ctx, c.Key, tx.AnchorReceipts{Epoch: epoch, Root: root, Count: count, AuditRoot: auditRoot})
	if err != nil && strings.Contains(err.Error(), "already anchored") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("anchor epoch %d: %w", epoch, err)
	}
	return nil
}

// ChainID implements Chain.
func (c LedgerChain) ChainID(ctx context.Context) (string, error) { return c.Client.ChainID(ctx) }

// Providers implements Chain.
func (c LedgerChain) Providers(ctx context.Context) ([]ledger.ProviderView, error) {
	var ps []ledger.ProviderView
	if err := c.Client.Query(ctx, "providers", nil, &ps); err != nil {
		return nil, err
	}
	return ps, nil
}

// Models implements Chain.
func (c LedgerChain) Models(ctx context.Context) ([]ledger.Model, error) {
	var ms []ledger.Model
	if err := c.Client.Query(ctx, "models", nil, &ms); err != nil {
		return nil, err
	}
	return ms, nil
}

// PubKey implements Chain.
func (c LedgerChain) PubKey(ctx context.Context, addr string) (ed25519.PublicKey, error) {
	a, err := c.Client.Account(ctx, addr)
	if err != nil {
		return nil, err
	}
	if len(a.PubKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("account %s has no public key on the ledger", addr)
	}
	return ed25519.PublicKey(a.PubKey), nil
}

// Epoch implements Chain.
func (c LedgerChain) Epoch(ctx context.Context) (uint64, error) {
	var e ledger.EpochView
	if err := c.Client.Query(ctx, "epoch", nil, &e); err != nil {
		return 0, err
	}
	return e.Number, nil
}

// OpenChannel implements Chain.
func (c LedgerChain) OpenChannel(ctx context.Context, provider string, deposit uint64) (uint64, error) {
	res, err := c.Client.Submit(ctx, c.Key, tx.OpenChannel{Provider: provider, Deposit: deposit})
	if err != nil {
		return 0, fmt.Errorf("open channel to %s: %w", provider, err)
	}
	for _, e := range res.Events {
		if e.Type != "open_channel" {
			continue
		}
		for _, a := range e.Attrs {
			if a.Key == "channel_id" {
				id, err := strconv.ParseUint(a.Value, 10, 64)
				if err != nil {
					return 0, fmt.Errorf("open channel to %s: bad channel id %q", provider, a.Value)
				}
				return id, nil
			}
		}
	}
	return 0, errors.New("open channel: no channel id in the transaction's events")
}

// TopUp implements Chain.
func (c LedgerChain) TopUp(ctx context.Context, id, amount uint64) error {
	if _, err := c.Client.Submit(ctx, c.Key, tx.TopUpChannel{ChannelID: id, Amount: amount}); err != nil {
		return fmt.Errorf("top up channel %d: %w", id, err)
	}
	return nil
}

// CloseChannel implements Chain.
func (c LedgerChain) CloseChannel(ctx context.Context, id uint64) error {
	if _, err := c.Client.Submit(ctx, c.Key, tx.CloseChannel{ChannelID: id}); err != nil {
		return fmt.Errorf("close channel %d: %w", id, err)
	}
	return nil
}
