package node

import (
	"sync"

	dbm "github.com/cometbft/cometbft-db"
)

// closableDB wraps one of CometBFT's databases so that use after Close is
// harmless. CometBFT v0.38 closes its block and state stores in Node.OnStop
// while some peer goroutines (e.g. the consensus reactor's
// queryMaj23Routine) may still read them once more; on a closed goleveldb
// that read panics the whole process ("leveldb: closed"). After Close,
// reads find nothing and writes are dropped, which is what a crash at that
// moment would do, and CometBFT is crash-safe. It also lets Node close the
// databases CometBFT forgets to (the tx index), so that a node can be
// restarted in the same process.
type closableDB struct {
	mu     sync.RWMutex
	db     dbm.DB
	closed bool
}

var _ dbm.DB = (*closableDB)(nil)

func (c *closableDB) read(f func(dbm.DB) error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return nil
	}
	return f(c.db)
}

func (c *closableDB) Get(k []byte) (v []byte, err error) {
	err = c.read(func(db dbm.DB) error { v, err = db.Get(k); return err })
	return v, err
}

func (c *closableDB) Has(k []byte) (ok bool, err error) {
	err = c.read(func(db dbm.DB) error { ok, err = db.Has(k); return err })
	return ok, err
}

func (c *closableDB) Set(k, v []byte) error {
	return c.read(func(db dbm.DB) error { return db.Set(k, v) })
}

func (c *closableDB) SetSync(k, v []byte) error {
	return c.read(func(db dbm.DB) error { return db.SetSync(k, v) })
}

func (c *closableDB) Delete(k []byte) error {
	return c.read(func(db dbm.DB) error { return db.Delete(k) })
}

func (c *closableDB) DeleteSync(k []byte) error {
	return c.read(func(db dbm.DB) error { return db.DeleteSync(k) })
}

func (c *closableDB) Iterator(start, end []byte) (it dbm.Iterator, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return dbm.NewMemDB().Iterator(start, end)
	}
	return c.db.Iterator(start, end)
}

func (c *closableDB) ReverseIterator(start, end []byte) (it dbm.Iterator, err error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return dbm.NewMemDB().ReverseIterator(start, end)
	}
	return c.db.ReverseIterator(start, end)
}

func (c *closableDB) NewBatch() dbm.Batch {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed {
		return dbm.NewMemDB().NewBatch() // written nowhere that matters
	}
	return &closableBatch{b: c.db.NewBatch(), db: c}
}

func (c *closableDB) Print() error { return c.read(func(db dbm.DB) error { return db.Print() }) }

func (c *closableDB) Stats() map[string]string {
	var s map[string]string
	c.read(func(db dbm.DB) error { s = db.Stats(); return nil })
	return s
}

func (c *closableDB) Compact(start, end []byte) error {
	return c.read(func(db dbm.DB) error { return db.Compact(start, end) })
}

// Close closes the underlying database once; later calls do nothing.
func (c *closableDB) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.db.Close()
}

// closableBatch writes only while its database is open.
type closableBatch struct {
	b  dbm.Batch
	db *closableDB
}

func (b *closableBatch) Set(k, v []byte) error { return b.b.Set(k, v) }
func (b *closableBatch) Delete(k []byte) error { return b.b.Delete(k) }
func (b *closableBatch) Close() error          { return b.b.Close() }

func (b *closableBatch) Write() error {
	return b.db.read(func(dbm.DB) error { return b.b.Write() })
}

func (b *closableBatch) WriteSync() error {
	return b.db.read(func(dbm.DB) error { return b.b.WriteSync() })
}
