package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"
	"strings"
)

// KV is one persisted state change: Value under Key, or Key removed when Delete is set.
type KV struct {
	Key    []byte
	Value  []byte
	Delete bool
}

// getter reads one key from a state layer.
type getter interface {
	get(key string) ([]byte, bool)
}

// entry is one write in an overlay: a value, or a deletion.
type entry struct {
	val []byte
	del bool
}

// overlay buffers writes on top of a parent layer. Transactions, blocks and the mempool
// check-state are overlays; merging a child into its parent makes its writes visible there.
type overlay struct {
	parent getter
	w      map[string]entry
}

func newOverlay(parent getter) *overlay {
	return &overlay{parent: parent, w: make(map[string]entry)}
}

func (o *overlay) get(key string) ([]byte, bool) {
	if e, ok := o.w[key]; ok {
		if e.del {
			return nil, false
		}
		return e.val, true
	}
	return o.parent.get(key)
}

func (o *overlay) set(key string, val []byte) { o.w[key] = entry{val: val} }
func (o *overlay) del(key string)             { o.w[key] = entry{del: true} }

// mergeInto copies o's writes into its parent overlay p.
func (o *overlay) mergeInto(p *overlay) {
	for k, e := range o.w {
		p.w[k] = e
	}
}

// sortedKeys returns o's written keys in order.
func (o *overlay) sortedKeys() []string {
	ks := make([]string, 0, len(o.w))
	for k := range o.w {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// store is the committed state: a sorted key-value map with a cached Merkle tree over it.
type store struct {
	vals   map[string][]byte
	keys   []string // sorted
	index  map[string]int
	levels [][][32]byte // levels[0]: leaf hashes in key order; last level: the root
	leaf   map[string][32]byte
}

func newStore() *store {
	return &store{vals: make(map[string][]byte), index: make(map[string]int), leaf: make(map[string][32]byte)}
}

func (s *store) get(key string) ([]byte, bool) {
	v, ok := s.vals[key]
	return v, ok
}

// scan calls fn for every key with the prefix, in order, until fn returns false.
func (s *store) scan(prefix string, fn func(key string, val []byte) bool) {
	i := sort.SearchStrings(s.keys, prefix)
	for ; i < len(s.keys) && strings.HasPrefix(s.keys[i], prefix); i++ {
		if !fn(s.keys[i], s.vals[s.keys[i]]) {
			return
		}
	}
}

// apply writes the overlay's entries into the store and updates the tree.
func (s *store) apply(o *overlay) {
	ks := o.sortedKeys()
	structural := false
	var changed []string
	for _, k := range ks {
		e := o.w[k]
		if e.del {
			if _, ok := s.vals[k]; ok {
				delete(s.vals, k)
				delete(s.leaf, k)
				structural = true
			}
			continue
		}
		if _, ok := s.vals[k]; !ok {
			structural = true
		}
		s.vals[k] = e.val
		s.leaf[k] = leafHash(k, e.val)
		changed = append(changed, k)
	}
	if structural {
		s.rebuild()
	} else {
		s.updatePaths(changed)
	}
}

// rebuild recomputes key order, index and the whole tree from the leaf cache.
func (s *store) rebuild() {
	s.keys = s.keys[:0]
	for k := range s.vals {
		s.keys = append(s.keys, k)
	}
	sort.Strings(s.keys)
	s.index = make(map[string]int, len(s.keys))
	leaves := make([][32]byte, len(s.keys))
	for i, k := range s.keys {
		s.index[k] = i
		leaves[i] = s.leaf[k]
	}
	s.levels = [][][32]byte{leaves}
	for cur := leaves; len(cur) > 1; {
		next := make([][32]byte, (len(cur)+1)/2)
		for i := range next {
			next[i] = nodeHash(cur, i)
		}
		s.levels = append(s.levels, next)
		cur = next
	}
}

// nodeHash is the parent of children 2i and 2i+1 of a level; an odd last child is promoted.
func nodeHash(level [][32]byte, i int) [32]byte {
	l := 2 * i
	if l+1 >= len(level) {
		return level[l]
	}
	return innerHash(level[l], level[l+1])
}

// updatePaths recomputes the tree paths above changed leaves (key set unchanged).
func (s *store) updatePaths(changed []string) {
	if len(changed) == 0 || len(s.levels) == 0 {
		return
	}
	idx := make([]int, 0, len(changed))
	for _, k := range changed {
		i := s.index[k]
		s.levels[0][i] = s.leaf[k]
		idx = append(idx, i)
	}
	for lv := 1; lv < len(s.levels); lv++ {
		prev := -1
		n := 0
		for _, i := range idx {
			p := i / 2
			if p == prev {
				continue
			}
			s.levels[lv][p] = nodeHash(s.levels[lv-1], p)
			idx[n] = p
			n++
			prev = p
		}
		idx = idx[:n]
	}
}

// root returns the Merkle root of the state (sha256 of nothing for an empty state).
func (s *store) root() [32]byte {
	if len(s.keys) == 0 {
		return sha256.Sum256(nil)
	}
	top := s.levels[len(s.levels)-1]
	return top[0]
}

func leafHash(key string, val []byte) [32]byte {
	h := sha256.New()
	var n [4]byte
	h.Write([]byte{0})
	binary.BigEndian.PutUint32(n[:], uint32(len(key)))
	h.Write(n[:])
	h.Write([]byte(key))
	binary.BigEndian.PutUint32(n[:], uint32(len(val)))
	h.Write(n[:])
	h.Write(val)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func innerHash(l, r [32]byte) [32]byte {
	var b [65]byte
	b[0] = 1
	copy(b[1:], l[:])
	copy(b[33:], r[:])
	return sha256.Sum256(b[:])
}

// appHashDomain separates the app hash from every other hash in Mycel.
const appHashDomain = "mycel/apphash/v1\x00"

// appHash commits to the height and the state root.
func appHash(height int64, root [32]byte) []byte {
	b := make([]byte, 0, len(appHashDomain)+8+32)
	b = append(b, appHashDomain...)
	b = binary.BigEndian.AppendUint64(b, uint64(height))
	b = append(b, root[:]...)
	h := sha256.Sum256(b)
	return h[:]
}
