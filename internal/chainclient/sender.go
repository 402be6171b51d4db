package chainclient

import (
	"context"
	"sync"

	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/ledger"
)

// Sender sends many transactions from one key without waiting for each to
// commit: it tracks the next nonce locally and broadcasts in nonce order.
// It is safe for concurrent use.
type Sender struct {
	c   *Client
	key keys.Key

	mu     sync.Mutex
	nonce  uint64
	loaded bool
}

// NewSender returns a Sender for key.
func (c *Client) NewSender(key keys.Key) *Sender { return &Sender{c: c, key: key} }

// Broadcast signs msgs with the next nonce and broadcasts them, returning
// the transaction hash once CheckTx accepted it. After a rejection the next
// call re-reads the nonce from the ledger.
func (s *Sender) Broadcast(ctx context.Context, msgs ...any) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded {
		acc, err := s.c.Account(ctx, s.key.Address)
		if err != nil {
			return nil, err
		}
		s.nonce, s.loaded = acc.Nonce, true
	}
	raw, err := s.c.Sign(ctx, s.key, s.nonce, "", msgs...)
	if err != nil {
		return nil, err
	}
	hash, err := s.c.Broadcast(ctx, raw)
	if err != nil {
		// The nonce may or may not have been used (a timeout after CheckTx
		// passed); ask the ledger next time.
		s.loaded = false
		return nil, err
	}
	s.nonce++
	return hash, nil
}

// Submit broadcasts msgs and waits for the transaction to commit.
func (s *Sender) Submit(ctx context.Context, msgs ...any) (TxResult, error) {
	hash, err := s.Broadcast(ctx, msgs...)
	if err != nil {
		return TxResult{}, err
	}
	r, err := s.c.Wait(ctx, hash)
	if err != nil && Code(err) == ledger.CodeNonce {
		s.mu.Lock()
		s.loaded = false
		s.mu.Unlock()
	}
	return r, err
}
