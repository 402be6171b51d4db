package provider

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"

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
//
// Beside pebble, the store keeps a voucher journal: a file to which every change of a
// channel's latest voucher is appended with one write(2) (LogVoucher). A voucher usually
// reaches pebble in the synced batch of the receipt of its request, but a request may end
// without a receipt (429, 402, backend failure, cancelled) or run for minutes, and a
// voucher that pays for earlier receipts must not be lost meanwhile. An unsynced pebble
// write would not do: pebble v1 keeps a NoSync record in its WAL writer's user-space buffer
// until the next synced write or a full 32 KiB block (record.LogWriter.SyncRecord), so
// kill -9 loses it. The journal's write reaches the kernel before LogVoucher returns, so it
// survives kill -9; OpenStore replays it into pebble (synced) and empties it.
//
// The journal is not fsynced: kill -9 (the crash the provider promises to survive) keeps
// what the kernel holds, and an fdatasync per voucher would double the disk cost of every
// request (one sync per receipt already, 60–100 µs on the reference machine). What a power
// loss can cost is bounded and recoverable: the increment of vouchers that arrived since
// their channel's last synced record (the receipt of the previous request, in the gateway's
// pay-as-you-go flow), and the consumer's next request on the channel must bring a voucher
// covering everything delivered, which is synced.
type Store struct {
	db   *pebble.DB
	sync *pebble.WriteOptions
	fs   vfs.FS
	dir  string

	jmu        sync.Mutex
	journal    vfs.File
	journalLen int64
	oldJournal bool // journalOld exists: rotated, not yet dropped
}

// Journal file names in the store directory.
const (
	journalName    = "vouchers.jnl"
	journalOldName = "vouchers.jnl.old"
)

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
	po := &pebble.Options{Logger: quietLogger{}, FS: vfs.Default}
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
	s := &Store{db: db, sync: wo, fs: po.FS, dir: dir}
	if err := s.openJournal(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	return s, nil
}

// Close closes the store.
func (s *Store) Close() error {
	s.jmu.Lock()
	jerr := s.journal.Close()
	s.jmu.Unlock()
	return errors.Join(s.db.Close(), jerr)
}

// openJournal replays the voucher journal (a rotated one first) into pebble, synced, and
// starts an empty one.
func (s *Store) openJournal() error {
	latest := map[uint64]channel.Voucher{}
	var order []uint64
	for _, name := range []string{journalOldName, journalName} {
		f, err := s.fs.Open(s.fs.PathJoin(s.dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("voucher journal: %w", err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("voucher journal %s: %w", name, err)
		}
		for line := range bytes.Lines(b) {
			var v channel.Voucher
			if json.Unmarshal(line, &v) != nil || v.ChannelID == 0 {
				continue // a line torn by the crash (only the last one can be)
			}
			if _, ok := latest[v.ChannelID]; !ok {
				order = append(order, v.ChannelID)
			}
			latest[v.ChannelID] = v // in write order: the last is the channel's latest
		}
	}
	if len(order) > 0 {
		b := s.db.NewBatch()
		defer b.Close()
		for _, id := range order {
			rec, ok, err := s.Channel(id)
			if err != nil {
				return err
			}
			if !ok {
				rec = ChannelRecord{ID: id}
			}
			rec.Latest = latest[id]
			cb, _ := json.Marshal(rec)
			_ = b.Set(chanKey(id), cb, nil)
		}
		if err := b.Commit(pebble.Sync); err != nil {
			return fmt.Errorf("replay voucher journal: %w", err)
		}
	}
	f, err := s.fs.Create(s.fs.PathJoin(s.dir, journalName)) // truncates: all of it is in pebble
	if err != nil {
		return fmt.Errorf("voucher journal: %w", err)
	}
	s.journal = f
	if err := s.fs.Remove(s.fs.PathJoin(s.dir, journalOldName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("voucher journal: %w", err)
	}
	return nil
}

// LogVoucher appends v to the voucher journal: the new latest voucher of its channel. It
// returns once the kernel has the line (see Store).
func (s *Store) LogVoucher(v channel.Voucher) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("journal voucher: %w", err)
	}
	b = append(b, '\n')
	s.jmu.Lock()
	defer s.jmu.Unlock()
	n, err := s.journal.Write(b)
	s.journalLen += int64(n)
	if err != nil {
		return fmt.Errorf("journal voucher of channel %d: %w", v.ChannelID, err)
	}
	return nil
}

// JournalLen returns the size of the current voucher journal in bytes.
func (s *Store) JournalLen() int64 {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	return s.journalLen
}

// RotateJournal starts a new voucher journal, keeping the current one until DropOldJournal.
// Compaction: rotate, write every channel record changed since its last write (synced), then
// drop the old journal. If an earlier rotation was never dropped, it does nothing (the old
// journal stays until a DropOldJournal after a successful write).
func (s *Store) RotateJournal() error {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	if s.oldJournal {
		return nil
	}
	if err := s.journal.Close(); err != nil {
		return fmt.Errorf("rotate voucher journal: %w", err)
	}
	if err := s.fs.Rename(s.fs.PathJoin(s.dir, journalName), s.fs.PathJoin(s.dir, journalOldName)); err != nil {
		return fmt.Errorf("rotate voucher journal: %w", err)
	}
	f, err := s.fs.Create(s.fs.PathJoin(s.dir, journalName))
	if err != nil {
		return fmt.Errorf("rotate voucher journal: %w", err)
	}
	s.journal, s.journalLen, s.oldJournal = f, 0, true
	return nil
}

// DropOldJournal removes the journal RotateJournal set aside.
func (s *Store) DropOldJournal() error {
	s.jmu.Lock()
	defer s.jmu.Unlock()
	if !s.oldJournal {
		return nil
	}
	if err := s.fs.Remove(s.fs.PathJoin(s.dir, journalOldName)); err != nil {
		return fmt.Errorf("drop old voucher journal: %w", err)
	}
	s.oldJournal = false
	return nil
}

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

// SaveChannelsSync writes channel records in one synced batch.
func (s *Store) SaveChannelsSync(recs []ChannelRecord) error {
	if len(recs) == 0 {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, r := range recs {
		cb, _ := json.Marshal(r)
		_ = b.Set(chanKey(r.ID), cb, nil)
	}
	if err := b.Commit(s.sync); err != nil {
		return fmt.Errorf("store %d channel records: %w", len(recs), err)
	}
	return nil
}

// Commit writes a receipt and its channel's record in one synced batch, without the values
// behind its logprobs commitment (the receipt cannot be revealed; see CommitRevealable).
func (s *Store) Commit(r ChannelRecord, rc channel.Receipt) error {
	rb, _ := json.Marshal(rc)
	return s.commitEncoded(r, rc, rb, false, nil, nil)
}

// CommitRevealable writes a receipt, the token ids and logprobs its logprobs commitment
// hashes (see Committed) and its channel's record in one synced batch.
func (s *Store) CommitRevealable(r ChannelRecord, rc channel.Receipt, ids []int32, logprobs []float32) error {
	rb, _ := json.Marshal(rc)
	return s.commitEncoded(r, rc, rb, true, ids, logprobs)
}

// commitEncoded is Commit with the receipt's JSON already made.
func (s *Store) commitEncoded(r ChannelRecord, rc channel.Receipt, rb []byte, revealable bool, ids []int32, logprobs []float32) error {
	b := s.db.NewBatch()
	defer b.Close()
	cb, _ := json.Marshal(r)
	_ = b.Set(chanKey(r.ID), cb, nil)
	_ = b.Set(receiptKey(rc.ChannelID, rc.RequestID), rb, nil)
	if revealable {
		_ = b.Set(committedKey(rc.RequestID, rc.ChannelID), encodeCommitted(ids, logprobs), nil)
	}
	if err := b.Commit(s.sync); err != nil {
		return fmt.Errorf("store receipt %s: %w", rc.RequestID, err)
	}
	return nil
}

// Committed values: for every receipt, the token ids and float32 logprobs its logprobs
// commitment hashes, under "lpc/" || request id || 0x00 || u64be(channel id), as the
// commitment's pre-image without its domain (u32be id, u32be float bits per token). They
// are kept as long as the receipt (the store keeps receipts for good), and the reveal
// endpoint serves them to the channel's consumer.

func committedKey(requestID string, channelID uint64) []byte {
	k := append(append([]byte("lpc/"), requestID...), 0)
	return binary.BigEndian.AppendUint64(k, channelID)
}

func encodeCommitted(ids []int32, logprobs []float32) []byte {
	n := min(len(ids), len(logprobs))
	b := make([]byte, 0, 8*n)
	for i := 0; i < n; i++ {
		b = binary.BigEndian.AppendUint32(b, uint32(ids[i]))
		b = binary.BigEndian.AppendUint32(b, math.Float32bits(logprobs[i]))
	}
	return b
}

// CommittedFor is what the store holds for one receipt of a request id.
type CommittedFor struct {
	ChannelID uint64
	IDs       []int32
	Logprobs  []float32
}

// Committed returns, for every channel with a receipt for requestID (request ids are
// chosen by consumers, so two channels may share one), the ids and logprobs the receipt
// committed to.
func (s *Store) Committed(requestID string) ([]CommittedFor, error) {
	lo := append(append([]byte("lpc/"), requestID...), 0)
	hi := append(append([]byte("lpc/"), requestID...), 1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("store committed logprobs of %s: %w", requestID, err)
	}
	defer it.Close()
	var out []CommittedFor
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != len(lo)+8 || len(v)%8 != 0 {
			return nil, fmt.Errorf("store committed logprobs: corrupt record %x", k)
		}
		c := CommittedFor{ChannelID: binary.BigEndian.Uint64(k[len(lo):]), IDs: make([]int32, len(v)/8), Logprobs: make([]float32, len(v)/8)}
		for i := range c.IDs {
			c.IDs[i] = int32(binary.BigEndian.Uint32(v[8*i:]))
			c.Logprobs[i] = math.Float32frombits(binary.BigEndian.Uint32(v[8*i+4:]))
		}
		out = append(out, c)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("store committed logprobs of %s: %w", requestID, err)
	}
	return out, nil
}
