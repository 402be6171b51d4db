package ledger

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/tx"
)

// gen generates random, mostly plausible transactions against a ledger's current block state,
// with a fixed seed so failures reproduce.
type gen struct {
	r     *rand.Rand
	names []string
	l     *Ledger // the ledger whose state guides choices (nonces, channel ids)
}

func (g *gen) name() string { return g.names[g.r.Intn(len(g.names))] }

func (g *gen) amount() uint64 {
	switch g.r.Intn(10) {
	case 0:
		return 0
	case 1:
		return 1<<64 - 1 - uint64(g.r.Intn(3))
	case 2:
		return uint64(g.r.Int63n(1000)) * 1_000_000 // may exceed balances
	default:
		return uint64(g.r.Int63n(5_000_000)) + 1
	}
}

// party returns the name whose address is addr (usually), or a random name.
func (g *gen) party(addr string) string {
	for _, n := range g.names {
		if testAddr(n) == addr && g.r.Intn(5) != 0 {
			return n
		}
	}
	return g.name()
}

// msg returns a random message and a plausible sender for it ("" = anyone).
func (g *gen) msg() (string, interface{ Type() string }) {
	if g.r.Intn(3) == 0 {
		from := g.verifierName()
		return from, g.verifyMsg(from)
	}
	m := g.msg1()
	var id uint64
	switch m := m.(type) {
	case tx.TopUpChannel:
		id = m.ChannelID
	case tx.CloseChannel:
		id = m.ChannelID
	case tx.RedeemVoucher:
		ch, _, _ := getJSON[Channel](g.l.block, keyChannel(m.Voucher.ChannelID))
		return g.party(ch.Provider), m
	case tx.RegisterProvider, tx.UpdateProvider:
		return g.names[g.r.Intn(3)], m
	default:
		return "", m
	}
	ch, _, _ := getJSON[Channel](g.l.block, keyChannel(id))
	return g.party(ch.Consumer), m
}

func (g *gen) msg1() interface{ Type() string } {
	models := []string{"m1", "m2", "m3"}
	served := []tx.ServedModel{{ModelID: models[g.r.Intn(2)], PriceInPerMTok: 1, PriceOutPerMTok: 2}}
	switch g.r.Intn(11) {
	case 0, 1, 2:
		return tx.Send{To: testAddr(g.name()), Amount: g.amount()}
	case 3:
		return testModel(models[g.r.Intn(3)], fmt.Sprint(g.r.Intn(2)))
	case 4:
		return tx.RegisterProvider{Stake: 19_000_000 + g.amount()%50_000_000, Endpoint: "https://x.example", Models: served}
	case 5:
		return tx.UpdateProvider{AddStake: g.amount() % 50_000_000, Models: served}
	case 6:
		return tx.RegisterVerifier{Stake: 19_000_000 + g.amount()%50_000_000}
	case 7:
		role := tx.RoleProvider
		if g.r.Intn(2) == 0 {
			role = tx.RoleVerifier
		}
		return tx.Unbond{Role: role, Amount: g.amount() % 30_000_000}
	case 8:
		return tx.OpenChannel{Provider: testAddr(g.name()), Deposit: g.amount() % 20_000_000}
	case 9:
		if g.r.Intn(2) == 0 {
			return tx.TopUpChannel{ChannelID: g.channelID(), Amount: g.amount() % 5_000_000}
		}
		return tx.CloseChannel{ChannelID: g.channelID()}
	default:
		id := g.channelID()
		ch, _, _ := getJSON[Channel](g.l.block, keyChannel(id))
		signer := g.name()
		for _, n := range g.names {
			if testAddr(n) == ch.Consumer && g.r.Intn(4) != 0 {
				signer = n
			}
		}
		amt := ch.Redeemed + uint64(g.r.Int63n(3_000_000)) - 500_000
		return tx.RedeemVoucher{Voucher: channel.SignVoucher(testChain, id, amt, testKey(signer))}
	}
}

// channelID picks a recent channel id (or 0, invalid).
func (g *gen) channelID() uint64 {
	c, _, _ := getJSON[Counters](g.l.block, keyCounters)
	if c.NextChannelID <= 1 || g.r.Intn(10) == 0 {
		return uint64(g.r.Intn(3))
	}
	return c.NextChannelID - 1 - uint64(g.r.Int63n(int64(min(c.NextChannelID-1, 4))))
}

// tx returns one random transaction: usually valid framing, sometimes broken on purpose.
func (g *gen) tx(tb testing.TB) (from string, raw []byte) {
	from, first := g.msg()
	if from == "" {
		from = g.name()
	}
	msgs := []interface{ Type() string }{first}
	if g.r.Intn(6) == 0 {
		for n := 1 + g.r.Intn(2); n > 0; n-- {
			_, m := g.msg()
			msgs = append(msgs, m)
		}
	}
	acct, _ := g.l.account(g.l.block, testAddr(from))
	nonce := acct.Nonce
	if g.r.Intn(20) == 0 {
		nonce += uint64(g.r.Intn(3)) - 1
	}
	fee := uint64(1000)
	if g.r.Intn(20) == 0 {
		fee = uint64(g.r.Intn(2000))
	}
	raw = signedTx(tb, testChain, from, nonce, fee, msgs...)
	switch g.r.Intn(40) {
	case 0:
		raw = raw[:g.r.Intn(len(raw))]
	case 1:
		raw = bytes.Clone(raw)
		raw[g.r.Intn(len(raw))] ^= byte(1 + g.r.Intn(255))
	}
	return from, raw
}

type block struct {
	txs    [][]byte
	slash  []string // names to slash (as provider) at the start of the block
	height int64
}

// genBlocks generates n blocks of random transactions, executing them on l to keep choices
// plausible; it returns the blocks for replay on other ledgers.
func genBlocks(tb testing.TB, seed int64, n int) ([]block, Genesis) {
	names := []string{"p1", "p2", "alice", "bob", "carol", "dave"}
	g := Genesis{Params: DefaultParams(), Models: []tx.RegisterModel{testModel("m1", "m1")}}
	g.Params.MinProviderStake = 20_000_000
	g.Params.MinVerifierStake = 20_000_000
	g.Params.UnbondingBlocks = 5
	g.Params.ChannelChallengeBlocks = 3
	g.Params.EpochLength = 7
	g.Params.JailEpochs = 1
	g.Params.EvidenceVoteBlocks = 4
	g.Params.EvidenceMinBond = 1_000_000
	for i, nm := range names {
		g.Accounts = append(g.Accounts, GenesisAccount{Address: testAddr(nm), Balance: uint64(i+1) * 300_000_000})
	}
	l := New(testChain)
	if err := l.InitChain(Header{Height: 1, ChainID: testChain}, g); err != nil {
		tb.Fatal(err)
	}
	gn := &gen{r: rand.New(rand.NewSource(seed)), names: names, l: l}
	var blocks []block
	for h := int64(1); h <= int64(n); h++ {
		if err := l.BeginBlock(Header{Height: h, ChainID: testChain}); err != nil {
			tb.Fatal(err)
		}
		b := block{height: h}
		if gn.r.Intn(8) == 0 {
			b.slash = append(b.slash, gn.names[gn.r.Intn(2)])
		}
		for _, s := range b.slash {
			_, _ = l.Slash(testAddr(s), tx.RoleProvider, 2500, "test")
		}
		for i := gn.r.Intn(25); i > 0; i-- {
			_, raw := gn.tx(tb)
			l.DeliverTx(raw)
			b.txs = append(b.txs, raw)
		}
		l.EndBlock()
		l.Commit()
		blocks = append(blocks, b)
	}
	return blocks, g
}

// applyBlock runs one block and returns the tx results, end-block events and app hash.
// With check set, every transaction first goes through CheckTx, which must agree with
// DeliverTx in blocks without slashes (the check-state then equals the block state).
func applyBlock(tb testing.TB, l *Ledger, b block, check ...bool) ([]Result, []Event, []byte, []KV) {
	tb.Helper()
	if err := l.BeginBlock(Header{Height: b.height, ChainID: testChain}); err != nil {
		tb.Fatal(err)
	}
	for _, s := range b.slash {
		_, _ = l.Slash(testAddr(s), tx.RoleProvider, 2500, "test")
	}
	var res []Result
	for i, raw := range b.txs {
		var c Result
		if len(check) > 0 && check[0] {
			c = l.CheckTx(raw)
		}
		r := l.DeliverTx(raw)
		if len(check) > 0 && check[0] && len(b.slash) == 0 && c.Code != r.Code {
			tb.Fatalf("height %d tx %d: CheckTx %s (%s), DeliverTx %s (%s)", b.height, i, CodeName(c.Code), c.Log, CodeName(r.Code), r.Log)
		}
		if r.Code == CodeInternal {
			tb.Fatalf("height %d: internal error: %s", b.height, r.Log)
		}
		res = append(res, r)
	}
	ev := l.EndBlock()
	hash, changes := l.Commit()
	return res, ev, hash, changes
}

// TestDeterminismAndRestore applies the same random blocks to two fresh ledgers (one of them
// also running every transaction through CheckTx first) and checks equal results and app
// hashes at every height; every 10 blocks a third ledger is restored
// from the accumulated changes and must reproduce the app hash and then follow the chain.
func TestDeterminismAndRestore(t *testing.T) {
	seen := map[string]int{}
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			blocks, g := genBlocks(t, seed, 60)
			a, b := New(testChain), New(testChain)
			for _, l := range []*Ledger{a, b} {
				if err := l.InitChain(Header{Height: 1, ChainID: testChain}, g); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(a.AppHash(), b.AppHash()) {
				t.Fatal("genesis app hashes differ")
			}
			persisted := map[string][]byte{}
			var restored *Ledger
			okTxs := 0
			for _, blk := range blocks {
				ra, ea, ha, changes := applyBlock(t, a, blk)
				rb, eb, hb, _ := applyBlock(t, b, blk, true) // b also runs CheckTx: no effect on results
				if diff := cmp.Diff(ra, rb); diff != "" {
					t.Fatalf("height %d: results differ (-a +b):\n%s", blk.height, diff)
				}
				if diff := cmp.Diff(ea, eb); diff != "" {
					t.Fatalf("height %d: events differ (-a +b):\n%s", blk.height, diff)
				}
				if !bytes.Equal(ha, hb) {
					t.Fatalf("height %d: app hashes differ", blk.height)
				}
				for _, r := range ra {
					if r.Code == CodeOK {
						okTxs++
					}
					for _, e := range r.Events {
						seen[e.Type]++
					}
				}
				for _, e := range ea {
					seen[e.Type]++
				}
				if err := a.CheckInvariants(); err != nil {
					t.Fatalf("height %d: %v", blk.height, err)
				}
				for _, kv := range changes {
					if kv.Delete {
						delete(persisted, string(kv.Key))
					} else {
						persisted[string(kv.Key)] = kv.Value
					}
				}
				if restored != nil {
					_, _, hr, _ := applyBlock(t, restored, blk)
					if !bytes.Equal(hr, ha) {
						t.Fatalf("height %d: restored ledger diverged", blk.height)
					}
				}
				if blk.height%10 == 0 {
					var state []KV
					for k, v := range persisted {
						state = append(state, KV{Key: []byte(k), Value: v})
					}
					r, err := Restore(testChain, blk.height, state)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(r.AppHash(), ha) {
						t.Fatalf("height %d: Restore app hash differs", blk.height)
					}
					restored = r
				}
			}
			if okTxs < 50 {
				t.Errorf("only %d successful transactions: the generator is too weak", okTxs)
			}
			t.Logf("%d blocks, %d successful transactions", len(blocks), okTxs)
		})
	}
	for _, ev := range []string{"transfer", "register_model", "register_provider", "update_provider",
		"register_verifier", "unbond", "open_channel", "top_up_channel", "redeem_voucher",
		"close_channel", "unbond_complete", "channel_closed", "epoch",
		"anchor_receipts", "anchor_leaves", "audit_report", "commit_audit_seed", "reveal_audit_seed",
		"submit_evidence", "vote_evidence", "evidence_guilty", "evidence_rejected", "commit_weights",
		"reveal_weights", "rewards", "record_capacity", "capacity"} {
		if seen[ev] == 0 {
			t.Errorf("no %q event: the generator does not reach it", ev)
		}
	}
	t.Logf("events: %v", seen)
}

// TestSendsAgainstReference runs random sends, with random fees and nonces, against a naive
// map-based model of balances and nonces: results and balances must match the model, no
// balance wraps, and the invariants hold after every block.
func TestSendsAgainstReference(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	p := DefaultParams()
	bal := map[string]uint64{"a": 5_000_000, "b": 1_000_000, "c": 10_000, "d": 0}
	l := newTestLedger(t, p, bal, names...)
	nonce := map[string]uint64{}
	r := rand.New(rand.NewSource(42))
	for h := int64(1); h <= 40; h++ {
		if err := l.BeginBlock(Header{Height: h, ChainID: testChain}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			from, to := names[r.Intn(4)], names[r.Intn(4)]
			amt := uint64(r.Int63n(3_000_000)) + 1
			fee := p.MinFee + uint64(r.Intn(3))*500
			n := nonce[from]
			if r.Intn(10) == 0 {
				n++
			}
			res := l.DeliverTx(signedTx(t, testChain, from, n, fee, tx.Send{To: testAddr(to), Amount: amt}))
			want := CodeOK
			switch {
			case n != nonce[from]:
				want = CodeNonce
			case bal[from] < fee:
				want = CodeInsufficientFunds
			case bal[from]-fee < amt:
				want = CodeInsufficientFunds
			}
			if res.Code != want {
				t.Fatalf("height %d: send %s→%s %d fee %d: code %s (%s), want %s", h, from, to, amt, fee, CodeName(res.Code), res.Log, CodeName(want))
			}
			if want == CodeOK {
				bal[from] -= fee + amt
				bal[to] += amt
				nonce[from]++
			}
		}
		l.EndBlock()
		l.Commit()
		if err := l.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			a, err := l.account(l.committed, testAddr(n))
			if err != nil {
				t.Fatal(err)
			}
			if a.Balance != bal[n] || a.Nonce != nonce[n] {
				t.Fatalf("height %d: %s has balance %d nonce %d, model %d %d", h, n, a.Balance, a.Nonce, bal[n], nonce[n])
			}
		}
	}
}
