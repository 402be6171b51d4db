package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/tx"
)

const testChain = "mycel-test"

// testKey derives a deterministic key from a name.
func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("mycel-test-key/" + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

func testAddr(name string) string {
	return address.FromPubKey(testKey(name).Public().(ed25519.PublicKey))
}

// signedTx builds and encodes a transaction; it fails the test on encoding errors.
func signedTx(tb testing.TB, chainID, from string, nonce, fee uint64, msgs ...interface{ Type() string }) []byte {
	tb.Helper()
	b := tx.Body{ChainID: chainID, Sender: testAddr(from), Nonce: nonce, Fee: fee}
	for _, m := range msgs {
		msg, err := tx.NewMsg(m)
		if err != nil {
			tb.Fatal(err)
		}
		b.Msgs = append(b.Msgs, msg)
	}
	t, err := tx.Sign(b, testKey(from))
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := tx.Encode(t)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// newTestLedger returns a ledger initialised at height 0 with the named accounts funded.
func newTestLedger(tb testing.TB, p Params, balances map[string]uint64, names ...string) *Ledger {
	tb.Helper()
	g := Genesis{Params: p}
	for _, n := range names {
		g.Accounts = append(g.Accounts, GenesisAccount{Address: testAddr(n), Balance: balances[n]})
	}
	l := New(testChain)
	if err := l.InitChain(Header{Height: 1, ChainID: testChain}, g); err != nil {
		tb.Fatal(err)
	}
	return l
}

// stateDigest hashes the uncommitted block writes and the check-state writes, to show that a
// rejected transaction changed nothing.
func stateDigest(l *Ledger) string {
	h := sha256.New()
	for _, o := range []*overlay{l.block, l.check} {
		if o == nil {
			h.Write([]byte("nil"))
			continue
		}
		for _, k := range o.sortedKeys() {
			e := o.w[k]
			fmt.Fprintf(h, "%q=%t:%x;", k, e.del, e.val)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}
