package ledger

import (
	"testing"

	"github.com/mycel-network/mycel/internal/tx"
)

func TestSendSmoke(t *testing.T) {
	p := DefaultParams()
	l := newTestLedger(t, p, map[string]uint64{"alice": 10_000_000}, "alice")
	if err := l.BeginBlock(Header{Height: 1, ChainID: testChain}); err != nil {
		t.Fatal(err)
	}
	raw := signedTx(t, testChain, "alice", 0, p.MinFee, tx.Send{To: testAddr("bob"), Amount: 5_000_000})
	if r := l.CheckTx(raw); r.Code != CodeOK {
		t.Fatalf("check: %+v", r)
	}
	if r := l.DeliverTx(raw); r.Code != CodeOK {
		t.Fatalf("deliver: %+v", r)
	}
	if r := l.DeliverTx(raw); r.Code != CodeNonce {
		t.Fatalf("replay: got code %d (%s), want nonce", r.Code, r.Log)
	}
	l.EndBlock()
	hash, changes := l.Commit()
	if err := l.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	var all []KV
	all = append(all, changes...)
	r, err := Restore(testChain, 1, all)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.AppHash()) != string(hash) {
		t.Fatalf("restore hash differs")
	}
	out, err := l.Query("account/"+testAddr("bob"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", out)
}
