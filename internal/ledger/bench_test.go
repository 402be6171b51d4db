package ledger

import (
	"fmt"
	"testing"

	"github.com/mycel-network/mycel/internal/tx"
)

// sendTxs signs n sends from alice with nonces 0..n-1 (outside the timed region).
func sendTxs(b *testing.B, n int, fee uint64) [][]byte {
	b.Helper()
	to := testAddr("bob")
	txs := make([][]byte, n)
	for i := range txs {
		txs[i] = signedTx(b, testChain, "alice", uint64(i), fee, tx.Send{To: to, Amount: 1})
	}
	return txs
}

// BenchmarkDeliverTxSend measures DeliverTx of one signed Send (decode, signature check,
// state update), all in one block.
func BenchmarkDeliverTxSend(b *testing.B) {
	p := DefaultParams()
	l := newTestLedger(b, p, map[string]uint64{"alice": 1 << 60}, "alice")
	txs := sendTxs(b, b.N, p.MinFee)
	if err := l.BeginBlock(Header{Height: 1, ChainID: testChain}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := l.DeliverTx(txs[i]); r.Code != CodeOK {
			b.Fatal(r.Log)
		}
	}
}

// BenchmarkCheckAndDeliverSend measures what a node spends per Send: CheckTx when it enters
// the mempool plus DeliverTx when its block executes.
func BenchmarkCheckAndDeliverSend(b *testing.B) {
	p := DefaultParams()
	l := newTestLedger(b, p, map[string]uint64{"alice": 1 << 60}, "alice")
	txs := sendTxs(b, b.N, p.MinFee)
	if err := l.BeginBlock(Header{Height: 1, ChainID: testChain}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := l.CheckTx(txs[i]); r.Code != CodeOK {
			b.Fatal(r.Log)
		}
		if r := l.DeliverTx(txs[i]); r.Code != CodeOK {
			b.Fatal(r.Log)
		}
	}
}

// BenchmarkCommit measures EndBlock+Commit of a block of 100 sends over a state of 10k
// accounts: "existing" sends between funded accounts (tree paths updated), "new" sends to
// fresh addresses (key set changes, tree rebuilt).
func BenchmarkCommit(b *testing.B) {
	for _, mode := range []string{"existing", "new"} {
		b.Run(fmt.Sprintf("accounts=10000/%s", mode), func(b *testing.B) {
			const nAcct, perBlock = 10_000, 100
			p := DefaultParams()
			g := Genesis{Params: p}
			for i := 0; i < nAcct; i++ {
				g.Accounts = append(g.Accounts, GenesisAccount{Address: testAddr(fmt.Sprint("acct", i)), Balance: 1 << 40})
			}
			g.Accounts = append(g.Accounts, GenesisAccount{Address: testAddr("alice"), Balance: 1 << 60})
			l := New(testChain)
			if err := l.InitChain(Header{Height: 1, ChainID: testChain}, g); err != nil {
				b.Fatal(err)
			}
			l.Commit()
			b.ReportAllocs()
			b.ResetTimer()
			nonce := uint64(0)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if err := l.BeginBlock(Header{Height: l.Height() + 1, ChainID: testChain}); err != nil {
					b.Fatal(err)
				}
				for j := 0; j < perBlock; j++ {
					to := testAddr(fmt.Sprint("acct", (i*perBlock+j)%nAcct))
					if mode == "new" {
						to = testAddr(fmt.Sprint("fresh", i, "-", j))
					}
					raw := signedTx(b, testChain, "alice", nonce, p.MinFee, tx.Send{To: to, Amount: 1})
					if r := l.DeliverTx(raw); r.Code != CodeOK {
						b.Fatal(r.Log)
					}
					nonce++
				}
				b.StartTimer()
				l.EndBlock()
				l.Commit()
			}
		})
	}
}
