package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
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

// store is the committed state: a sorted key-value map with a cached Merkle commitment.
//
// The commitment is a two-level Merkle tree over the sorted (key, value) pairs. Leaves are
// grouped into content-defined chunks: a chunk ends after every "boundary" key, a key whose
// sha256("mycel/chunk\x00" || key) starts with a byte whose low 4 bits are zero (about one key
// in 16), and a final tail chunk holds the keys after the last boundary (possibly none). A
// chunk's hash is sha256(0x02 || its leaf hashes in order); the root is a binary Merkle tree
// over the chunk hashes in order (pairs hashed with innerHash, an odd last node promoted).
// Chunk boundaries depend only on the key set, never on history, so Restore reproduces the
// same root; an insertion or value change touches one chunk and its path to the root.
type store struct {
	vals   map[string][]byte
	leaf   map[string][32]byte
	keys   []string            // sorted
	bounds []string            // sorted boundary keys
	chunk  map[string][32]byte // chunk hash by its boundary (last) key
	tail   [32]byte            // hash of the tail chunk
	top    [][][32]byte        // binary tree levels over chunk hashes; top[0] = chunks in order
}

func newStore() *store {
	return &store{vals: make(map[string][]byte), leaf: make(map[string][32]byte), chunk: make(map[string][32]byte),
		tail: sha256.Sum256([]byte{2})}
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

const chunkDomain = "mycel/chunk\x00"

// isBoundary reports whether key ends a chunk.
func isBoundary(key string) bool {
	h := sha256.New()
	h.Write([]byte(chunkDomain))
	h.Write([]byte(key))
	var sum [32]byte
	h.Sum(sum[:0])
	return sum[0]&0x0f == 0
}

// apply writes the overlay's entries into the store and updates the commitment.
func (s *store) apply(o *overlay) {
	ks := o.sortedKeys()
	var ins, del, dirty, insBounds, delBounds []string
	for _, k := range ks {
		e := o.w[k]
		_, exists := s.vals[k]
		if e.del {
			if !exists {
				continue
			}
			delete(s.vals, k)
			delete(s.leaf, k)
			del = append(del, k)
			if isBoundary(k) {
				delBounds = append(delBounds, k)
				delete(s.chunk, k)
			}
			dirty = append(dirty, k)
			continue
		}
		if !exists {
			ins = append(ins, k)
			if isBoundary(k) {
				insBounds = append(insBounds, k)
			}
		}
		s.vals[k] = e.val
		s.leaf[k] = leafHash(k, e.val)
		dirty = append(dirty, k)
	}
	s.keys = removeSorted(mergeSorted(s.keys, ins), del)
	s.bounds = removeSorted(mergeSorted(s.bounds, insBounds), delBounds)
	structural := len(insBounds) > 0 || len(delBounds) > 0 || s.top == nil

	// Chunks to rehash, by index into bounds (len(bounds) = the tail chunk).
	var idx []int
	for _, k := range dirty {
		i := sort.SearchStrings(s.bounds, k)
		idx = append(idx, i)
		if i < len(s.bounds) && s.bounds[i] == k {
			idx = append(idx, i+1) // a new boundary also changes the chunk after it
		}
	}
	if s.top == nil {
		for i := 0; i <= len(s.bounds); i++ {
			idx = append(idx, i)
		}
	}
	sort.Ints(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		s.rehashChunk(i)
	}
	if structural {
		s.rebuildTop()
	} else {
		s.updateTop(idx)
	}
}

// rehashChunk recomputes the hash of chunk i (i == len(bounds): the tail).
func (s *store) rehashChunk(i int) {
	lo := 0
	if i > 0 {
		lo = sort.SearchStrings(s.keys, s.bounds[i-1]) + 1
	}
	hi := len(s.keys)
	if i < len(s.bounds) {
		hi = sort.SearchStrings(s.keys, s.bounds[i]) + 1
	}
	h := sha256.New()
	h.Write([]byte{2})
	for _, k := range s.keys[lo:hi] {
		l := s.leaf[k]
		h.Write(l[:])
	}
	var sum [32]byte
	h.Sum(sum[:0])
	if i < len(s.bounds) {
		s.chunk[s.bounds[i]] = sum
	} else {
		s.tail = sum
	}
}

func (s *store) chunkHash(i int) [32]byte {
	if i < len(s.bounds) {
		return s.chunk[s.bounds[i]]
	}
	return s.tail
}

// rebuildTop recomputes the binary tree over all chunk hashes.
func (s *store) rebuildTop() {
	leaves := make([][32]byte, len(s.bounds)+1)
	for i := range leaves {
		leaves[i] = s.chunkHash(i)
	}
	s.top = [][][32]byte{leaves}
	for cur := leaves; len(cur) > 1; {
		next := make([][32]byte, (len(cur)+1)/2)
		for i := range next {
			next[i] = nodeHash(cur, i)
		}
		s.top = append(s.top, next)
		cur = next
	}
}

// updateTop recomputes the paths above the given chunk indices (sorted; chunk set unchanged).
func (s *store) updateTop(idx []int) {
	for _, i := range idx {
		s.top[0][i] = s.chunkHash(i)
	}
	for lv := 1; lv < len(s.top); lv++ {
		n, prev := 0, -1
		for _, i := range idx {
			p := i / 2
			if p == prev {
				continue
			}
			s.top[lv][p] = nodeHash(s.top[lv-1], p)
			idx[n] = p
			n++
			prev = p
		}
		idx = idx[:n]
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

// root returns the root of the commitment.
func (s *store) root() [32]byte {
	if s.top == nil {
		s.rebuildTop()
	}
	top := s.top[len(s.top)-1]
	return top[0]
}

// mergeSorted merges sorted b (disjoint from a) into sorted a.
func mergeSorted(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	out := make([]string, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if a[i] < b[j] {
			out = append(out, a[i])
			i++
		} else {
			out = append(out, b[j])
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// removeSorted removes the sorted keys del from sorted a.
func removeSorted(a, del []string) []string {
	if len(del) == 0 {
		return a
	}
	out := a[:0]
	j := 0
	for _, k := range a {
		for j < len(del) && del[j] < k {
			j++
		}
		if j < len(del) && del[j] == k {
			continue
		}
		out = append(out, k)
	}
	return out
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
