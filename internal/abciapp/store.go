package abciapp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble"

	"github.com/mycel-network/mycel/internal/ledger"
)

// Pebble key layout. State keys live under "s/"; the commit point (height,
// app hash, chain id) under "m/". One synced batch writes a block's state
// changes together with its commit point, so the store is always at a block
// boundary.
var (
	statePrefix = []byte("s/")
	stateEnd    = []byte("s0") // '0' follows '/'
	keyHeight   = []byte("m/height")
	keyAppHash  = []byte("m/app_hash")
	keyChainID  = []byte("m/chain_id")
)

// store is the app's pebble database.
type store struct {
	db *pebble.DB
}

// commitPoint is what the store says about the last committed block.
type commitPoint struct {
	Height  int64
	AppHash []byte
	ChainID string
}

func openStore(dir string, logger *slog.Logger) (*store, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{logger}})
	if err != nil {
		return nil, fmt.Errorf("open app store %s: %w", dir, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

func (s *store) get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	return out, closer.Close()
}

// commitPoint reads the last commit point; Height 0 means nothing was
// committed yet.
func (s *store) commitPoint() (commitPoint, error) {
	var cp commitPoint
	h, err := s.get(keyHeight)
	if err != nil {
		return cp, fmt.Errorf("read height: %w", err)
	}
	if h == nil {
		return cp, nil
	}
	if len(h) != 8 {
		return cp, fmt.Errorf("read height: %d bytes, want 8", len(h))
	}
	cp.Height = int64(binary.BigEndian.Uint64(h))
	if cp.AppHash, err = s.get(keyAppHash); err != nil {
		return cp, fmt.Errorf("read app hash: %w", err)
	}
	id, err := s.get(keyChainID)
	if err != nil {
		return cp, fmt.Errorf("read chain id: %w", err)
	}
	cp.ChainID = string(id)
	return cp, nil
}

// state loads every state key/value pair in key order.
func (s *store) state() ([]ledger.KV, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: statePrefix, UpperBound: stateEnd})
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var kvs []ledger.KV
	for it.First(); it.Valid(); it.Next() {
		kvs = append(kvs, ledger.KV{
			Key:   append([]byte(nil), it.Key()[len(statePrefix):]...),
			Value: append([]byte(nil), it.Value()...),
		})
	}
	if err := it.Error(); err != nil {
		it.Close()
		return nil, fmt.Errorf("read state: %w", err)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	return kvs, nil
}

// commit writes changes and the new commit point in one synced batch.
func (s *store) commit(changes []ledger.KV, cp commitPoint) error {
	b := s.db.NewBatch()
	defer b.Close()
	key := make([]byte, 0, 64)
	for _, kv := range changes {
		key = append(append(key[:0], statePrefix...), kv.Key...)
		var err error
		if kv.Delete {
			err = b.Delete(key, nil)
		} else {
			err = b.Set(key, kv.Value, nil)
		}
		if err != nil {
			return fmt.Errorf("commit height %d: %w", cp.Height, err)
		}
	}
	var h [8]byte
	binary.BigEndian.PutUint64(h[:], uint64(cp.Height))
	for _, kv := range [][2][]byte{{keyHeight, h[:]}, {keyAppHash, cp.AppHash}, {keyChainID, []byte(cp.ChainID)}} {
		if err := b.Set(kv[0], kv[1], nil); err != nil {
			return fmt.Errorf("commit height %d: %w", cp.Height, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("commit height %d: %w", cp.Height, err)
	}
	return nil
}

// pebbleLogger sends pebble's logs to slog at debug level.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

// Fatalf is called by pebble on unrecoverable store corruption; pebble
// requires that it does not return.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg, "component", "pebble")
	panic("pebble: " + msg)
}
