package ledger

import (
	"testing"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/tx"
)

// FuzzDeliverTx feeds arbitrary bytes to CheckTx and DeliverTx: neither may panic (which the
// ledger would report as CodeInternal), a rejected transaction must change nothing, and the
// invariants must hold after the block.
func FuzzDeliverTx(f *testing.F) {
	f.Add(signedTx(f, testChain, "alice", 0, 1000, tx.Send{To: testAddr("bob"), Amount: 5}))
	f.Add(signedTx(f, testChain, "alice", 0, 1000, tx.OpenChannel{Provider: testAddr("bob"), Deposit: 5}))
	f.Add(signedTx(f, testChain, "bob", 0, 1000, tx.RedeemVoucher{Voucher: channel.SignVoucher(testChain, 1, 3, testKey("alice"))}))
	f.Add(signedTx(f, testChain, "alice", 0, 1000, testModel("m", "m")))
	f.Add(signedTx(f, testChain, "alice", 0, 1000, tx.AnchorReceipts{Epoch: 0, Root: tx.AnchorRoot([]tx.AnchorLeaf{{Provider: testAddr("bob"), RequestID: "r"}}), Count: 1}))
	f.Add(signedTx(f, testChain, "alice", 0, 1000, tx.CommitWeights{Epoch: 0, Hash: tx.AuditSeedCommitment([]byte("x"))}))
	f.Add(signedTx(f, testChain, "alice", 0, 1000, tx.VoteEvidence{ID: 1, Guilty: true}))
	f.Add([]byte("garbage"))
	f.Add([]byte(`{"body":{"chain_id":"mycel-test","sender":"","nonce":0,"fee":0,"msgs":[]},"pub_key":null,"signature":null}`))
	p := DefaultParams()
	p.MinProviderStake = 1
	f.Fuzz(func(t *testing.T, raw []byte) {
		l := newTestLedger(t, p, map[string]uint64{"alice": 1 << 40, "bob": 1 << 40}, "alice", "bob")
		if err := l.BeginBlock(Header{Height: 1, ChainID: testChain}); err != nil {
			t.Fatal(err)
		}
		for _, exec := range []func([]byte) Result{l.CheckTx, l.DeliverTx} {
			before := stateDigest(l)
			r := exec(raw)
			if r.Code == CodeInternal {
				t.Fatalf("internal error: %s", r.Log)
			}
			if r.Code != CodeOK && stateDigest(l) != before {
				t.Fatalf("rejected tx (%s) changed state", r.Log)
			}
		}
		l.EndBlock()
		l.Commit()
		if err := l.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
	})
}
