package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"testing"

	"github.com/mycel-network/mycel/internal/channel"
)

// naiveRoot is RFC 6962's MTH written directly from the definition.
func naiveRoot(lv [][32]byte) [32]byte {
	if len(lv) == 0 {
		return sha256.Sum256(nil)
	}
	if len(lv) == 1 {
		return lv[0]
	}
	k := 1
	for 2*k < len(lv) {
		k *= 2
	}
	l, r := naiveRoot(lv[:k]), naiveRoot(lv[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

func TestReceiptLogProofs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.jsonl")
	l, err := OpenReceiptLog(path)
	if err != nil {
		t.Fatal(err)
	}
	var leaves [][32]byte
	for n := 1; n <= 33; n++ {
		r := channel.Receipt{RequestID: "r" + string(rune('a'+n%26)), TokensOut: uint64(n), Signature: []byte{byte(n)}}
		if _, err := l.Append(7, r); err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, LeafHash(r))
		rootHex, count := l.Root(7)
		want := naiveRoot(leaves)
		if rootHex != hex.EncodeToString(want[:]) || count != n {
			t.Fatalf("n=%d: root %s count %d, want %x %d", n, rootHex, count, want, n)
		}
		for i := 0; i < n; i++ {
			proof, err := l.Proof(7, i)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyProof(leaves[i], i, n, proof, want); err != nil {
				t.Fatalf("n=%d i=%d: %v", n, i, err)
			}
			bad := leaves[i]
			bad[0] ^= 1
			if VerifyProof(bad, i, n, proof, want) == nil {
				t.Fatalf("n=%d i=%d: a tampered leaf verified", n, i)
			}
			if n > 1 && VerifyProof(leaves[i], (i+1)%n, n, proof, want) == nil && leaves[i] != leaves[(i+1)%n] {
				t.Fatalf("n=%d i=%d: proof verified at the wrong index", n, i)
			}
		}
	}
	l.Close()
	l2, err := OpenReceiptLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if root, n := l2.Root(7); n != 33 || root != hex.EncodeToString(func() []byte { r := naiveRoot(leaves); return r[:] }()) {
		t.Errorf("after reopen: %d receipts, root %s", n, root)
	}
}
