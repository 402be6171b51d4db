package gateway

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/tx"
)

// ReceiptLog is the gateway's append-only store of verified receipts, one JSON line each,
// grouped by ledger epoch. Per epoch it computes an RFC 6962 Merkle root over the receipts'
// leaf hashes, which the gateway anchors on the ledger, and inclusion proofs that let a third
// party check any receipt against an anchored root.
type ReceiptLog struct {
	mu     sync.Mutex
	f      *os.File
	leaves map[uint64][][32]byte
	audit  map[uint64][]tx.AnchorLeaf // (provider, request id) of the same receipts, same order
}

type logLine struct {
	Epoch   uint64          `json:"epoch"`
	Receipt channel.Receipt `json:"receipt"`
}

// OpenReceiptLog opens (creating if needed) the log at path and reads its leaves.
func OpenReceiptLog(path string) (*ReceiptLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open receipt log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open receipt log: %w", err)
	}
	l := &ReceiptLog{f: f, leaves: map[uint64][][32]byte{}, audit: map[uint64][]tx.AnchorLeaf{}}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		var ln logLine
		if err := json.Unmarshal(sc.Bytes(), &ln); err != nil {
			// A torn last line from a crash is dropped; anything else is corruption.
			if !hasMore(sc) {
				break
			}
			f.Close()
			return nil, fmt.Errorf("open receipt log: line %d: %w", n, err)
		}
		l.add(ln.Epoch, ln.Receipt)
	}
	if err := sc.Err(); err != nil {
		f.Close()
		return nil, fmt.Errorf("open receipt log: %w", err)
	}
	return l, nil
}

func hasMore(sc *bufio.Scanner) bool { return sc.Scan() }

// Close closes the log.
func (l *ReceiptLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}

// Append writes r under epoch and returns its index in that epoch.
func (l *ReceiptLog) Append(epoch uint64, r channel.Receipt) (int, error) {
	b, err := json.Marshal(logLine{Epoch: epoch, Receipt: r})
	if err != nil {
		return 0, fmt.Errorf("append receipt: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.f.Write(append(b, '\n')); err != nil {
		return 0, fmt.Errorf("append receipt: %w", err)
	}
	l.add(epoch, r)
	return len(l.leaves[epoch]) - 1, nil
}

func (l *ReceiptLog) add(epoch uint64, r channel.Receipt) {
	l.leaves[epoch] = append(l.leaves[epoch], LeafHash(r))
	l.audit[epoch] = append(l.audit[epoch], tx.AnchorLeaf{Provider: r.Provider, RequestID: r.RequestID})
}

// AuditRoot returns tx.AnchorRoot over the (provider, request id) of epoch's receipts, in log
// order: the root verifiers sample audits from.
func (l *ReceiptLog) AuditRoot(epoch uint64) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tx.AnchorRoot(l.audit[epoch])
}

// AuditLeaves returns the (provider, request id) of epoch's receipts in log order.
func (l *ReceiptLog) AuditLeaves(epoch uint64) []tx.AnchorLeaf {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]tx.AnchorLeaf(nil), l.audit[epoch]...)
}

// Root returns the hex Merkle root and the number of receipts of epoch (the root of no
// receipts is the hash of the empty string, as in RFC 6962).
func (l *ReceiptLog) Root(epoch uint64) (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lv := l.leaves[epoch]
	r := merkleRoot(lv)
	return hex.EncodeToString(r[:]), len(lv)
}

// Proof returns the inclusion proof of receipt index of epoch.
func (l *ReceiptLog) Proof(epoch uint64, index int) ([][32]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lv := l.leaves[epoch]
	if index < 0 || index >= len(lv) {
		return nil, fmt.Errorf("proof: epoch %d has %d receipts, no index %d", epoch, len(lv), index)
	}
	return merklePath(index, lv), nil
}

// LeafHash is the Merkle leaf of a receipt: sha256(0x00 || SignBytes || signature).
func LeafHash(r channel.Receipt) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(r.SignBytes())
	h.Write(r.Signature)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func node(l, r [32]byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{1})
	h.Write(l[:])
	h.Write(r[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// split is the largest power of two smaller than n (n ≥ 2).
func split(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

func merkleRoot(lv [][32]byte) [32]byte {
	switch len(lv) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return lv[0]
	}
	k := split(len(lv))
	return node(merkleRoot(lv[:k]), merkleRoot(lv[k:]))
}

func merklePath(m int, lv [][32]byte) [][32]byte {
	if len(lv) <= 1 {
		return nil
	}
	k := split(len(lv))
	if m < k {
		return append(merklePath(m, lv[:k]), merkleRoot(lv[k:]))
	}
	return append(merklePath(m-k, lv[k:]), merkleRoot(lv[:k]))
}

// VerifyProof checks that leaf is receipt index of count receipts under root (RFC 6962 §2.1.1).
func VerifyProof(leaf [32]byte, index, count int, proof [][32]byte, root [32]byte) error {
	got, rest, err := rootFromPath(leaf, index, count, proof)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return errors.New("verify proof: proof too long")
	}
	if got != root {
		return errors.New("verify proof: root mismatch")
	}
	return nil
}

// rootFromPath consumes the proof from its end (the top of the tree) downwards.
func rootFromPath(leaf [32]byte, m, n int, proof [][32]byte) ([32]byte, [][32]byte, error) {
	if m < 0 || m >= n {
		return [32]byte{}, nil, fmt.Errorf("verify proof: index %d out of %d", m, n)
	}
	if n == 1 {
		return leaf, proof, nil
	}
	if len(proof) == 0 {
		return [32]byte{}, nil, errors.New("verify proof: proof too short")
	}
	sib, rest := proof[len(proof)-1], proof[:len(proof)-1]
	k := split(n)
	if m < k {
		l, rem, err := rootFromPath(leaf, m, k, rest)
		return node(l, sib), rem, err
	}
	r, rem, err := rootFromPath(leaf, m-k, n-k, rest)
	return node(sib, r), rem, err
}
