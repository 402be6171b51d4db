package provider

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/vfs"

	"github.com/mycel-network/mycel/internal/channel"
)

// ChannelRecord is what the provider keeps per payment channel.
type ChannelRecord struct {
	ID uint64 `json:"id"`
	// Delivered is the provider's delivered total on the channel: the Cumulative of its
	// latest receipt.
	Delivered uint64 `json:"delivered"`
	// Latest is the voucher with the largest amount received (it may exceed Delivered when
	// the consumer paid ahead).
	Latest channel.Voucher `json:"latest"`
	// Redeemable is the largest voucher whose amount does not exceed Delivered: the one the
	// provider redeems, so that a consumer never pays for tokens it did not receive.
	Redeemable channel.Voucher `json:"redeemable"`
	// Redeemed is what the ledger has paid on the channel, as last seen.
	Redeemed uint64 `json:"redeemed"`
	Receipts uint64 `json:"receipts"`
}

// Store persists channel records and receipts in pebble. Every write that a client learns
// about (a receipt) is synced before it is sent.
type Store struct {
	db   *pebble.DB
	sync *pebble.WriteOptions
}

// StoreOptions configures OpenStore.
type StoreOptions struct {
	// InMemory keeps everything in memory (tests and benchmarks).
	InMemory bool
	// NoSync skips fsync on commits (benchmarks only: a crash may lose receipts).
	NoSync bool
	// FS, if set, is the file system (tests use vfs.NewStrictMem to simulate crashes).
	FS vfs.FS
}

// OpenStore opens (creating) the store in dir.
func OpenStore(dir string, opts StoreOptions) (*Store, error) {
	po := &pebble.Options{Logger: quietLogger{}}
	switch {
	case opts.FS != nil:
		po.FS = opts.FS
	case opts.InMemory:
		po.FS = vfs.NewMem()
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	wo := pebble.Sync
	if opts.NoSync {
		wo = pebble.NoSync
	}
	return &Store{db: db, sync: wo}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...)) // pebble's contract: Fatalf must not return
}

func chanKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte("chan/"), id)
}

func receiptKey(channelID uint64, requestID string) []byte {
	k := binary.BigEndian.AppendUint64([]byte("rcpt/"), channelID)
	return append(append(k, '/'), requestID...)
}

// Channel returns the record of a channel.
func (s *Store) Channel(id uint64) (ChannelRecord, bool, error) {
	var r ChannelRecord
	ok, err := s.get(chanKey(id), &r)
	return r, ok, err
}

// Channels returns every channel record in id order.
func (s *Store) Channels() ([]ChannelRecord, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte("chan/"), UpperBound: []byte("chan0")})
	if err != nil {
		return nil, fmt.Errorf("store channels: %w", err)
	}
	defer it.Close()
	var out []ChannelRecord
	for it.First(); it.Valid(); it.Next() {
		var r ChannelRecord
		if err := json.Unmarshal(it.Value(), &r); err != nil {
			return nil, fmt.Errorf("store channels: corrupt record %x: %w", it.Key(), err)
		}
		out = append(out, r)
	}
	return out, it.Error()
}

// Receipt returns a stored receipt.
func (s *Store) Receipt(channelID uint64, requestID string) (channel.Receipt, bool, error) {
	var r channel.Receipt
	ok, err := s.get(receiptKey(channelID, requestID), &r)
	return r, ok, err
}

// HasReceipt reports whether a receipt for the request exists.
func (s *Store) HasReceipt(channelID uint64, requestID string) (bool, error) {
	_, closer, err := s.db.Get(receiptKey(channelID, requestID))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store get: %w", err)
	}
	closer.Close()
	return true, nil
}

func (s *Store) get(key []byte, v any) (bool, error) {
	b, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store get: %w", err)
	}
	defer closer.Close()
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("store get %q: corrupt value: %w", key, err)
	}
	return true, nil
}

// SaveChannel writes a channel record (a new voucher, a redemption). It is not synced on its
// own: the next Commit (or SaveChannelSync) makes it durable.
func (s *Store) SaveChannel(r ChannelRecord) error {
	b, _ := json.Marshal(r)
	if err := s.db.Set(chanKey(r.ID), b, pebble.NoSync); err != nil {
		return fmt.Errorf("store channel %d: %w", r.ID, err)
	}
	return nil
}

// SaveChannelSync writes a channel record and syncs.
func (s *Store) SaveChannelSync(r ChannelRecord) error {
	b, _ := json.Marshal(r)
	if err := s.db.Set(chanKey(r.ID), b, s.sync); err != nil {
		return fmt.Errorf("store channel %d: %w", r.ID, err)
	}
	return nil
}

// Commit writes a receipt and its channel's record in one synced batch.
func (s *Store) Commit(r ChannelRecord, rc channel.Receipt) error {
	rb, _ := json.Marshal(rc)
	return s.commitEncoded(r, rc, rb)
}

// commitEncoded is Commit with the receipt's JSON already made.
func (s *Store) commitEncoded(r ChannelRecord, rc channel.Receipt, rb []byte) error {
	b := s.db.NewBatch()
	defer b.Close()
	cb, _ := json.Marshal(r)
	_ = b.Set(chanKey(r.ID), cb, nil)
	_ = b.Set(receiptKey(rc.ChannelID, rc.RequestID), rb, nil)
	if err := b.Commit(s.sync); err != nil {
		return fmt.Errorf("store receipt %s: %w", rc.RequestID, err)
	}
	return nil
}
