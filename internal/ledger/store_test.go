package ledger

import (
	"crypto/sha256"
	"fmt"
	"math/rand"
	"sort"
	"testing"
)

// naiveRoot computes the state commitment from scratch, straight from its definition in
// store's doc comment, as a reference for the incremental implementation.
func naiveRoot(vals map[string][]byte) [32]byte {
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var chunks [][32]byte
	h := sha256.New()
	h.Write([]byte{2})
	for _, k := range keys {
		l := leafHash(k, vals[k])
		h.Write(l[:])
		if isBoundary(k) {
			var c [32]byte
			h.Sum(c[:0])
			chunks = append(chunks, c)
			h = sha256.New()
			h.Write([]byte{2})
		}
	}
	var tail [32]byte
	h.Sum(tail[:0])
	level := append(chunks, tail)
	for len(level) > 1 {
		var next [][32]byte
		for i := 0; i < len(level); i += 2 {
			if i+1 == len(level) {
				next = append(next, level[i])
			} else {
				next = append(next, innerHash(level[i], level[i+1]))
			}
		}
		level = next
	}
	return level[0]
}

func TestStoreMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	s := newStore()
	model := map[string][]byte{}
	if got, want := s.root(), naiveRoot(model); got != want {
		t.Fatalf("empty root %x, want %x", got, want)
	}
	for round := 0; round < 200; round++ {
		o := newOverlay(s)
		for i := r.Intn(40); i > 0; i-- {
			k := fmt.Sprintf("k/%04d", r.Intn(600))
			if r.Intn(4) == 0 {
				o.del(k)
				delete(model, k)
			} else {
				v := []byte(fmt.Sprint(r.Int()))
				o.set(k, v)
				model[k] = v
			}
		}
		s.apply(o)
		if got, want := s.root(), naiveRoot(model); got != want {
			t.Fatalf("round %d: root %x, want %x", round, got, want)
		}
		if len(s.keys) != len(model) {
			t.Fatalf("round %d: %d keys, model has %d", round, len(s.keys), len(model))
		}
		if !sort.StringsAreSorted(s.keys) {
			t.Fatalf("round %d: keys not sorted", round)
		}
	}
	if len(s.bounds) < 5 {
		t.Errorf("only %d chunk boundaries: the test does not exercise chunking", len(s.bounds))
	}
}
