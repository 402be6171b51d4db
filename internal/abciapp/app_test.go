package abciapp

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
)

const chainID = "abciapp-test"

type testKey struct {
	addr string
	priv ed25519.PrivateKey
}

func newKey(name string) testKey {
	seed := sha256.Sum256([]byte(name))
	priv := ed25519.NewKeyFromSeed(seed[:])
	return testKey{addr: address.FromPubKey(priv.Public().(ed25519.PublicKey)), priv: priv}
}

var (
	alice = newKey("alice")
	bob   = newKey("bob")
	carol = newKey("carol")
)

func send(t *testing.T, from testKey, nonce uint64, to string, amount uint64) []byte {
	t.Helper()
	return signedSend(t, chainID, from.addr, from.priv, nonce, to, amount)
}

// signedSend encodes a Send from sender signed by priv for chain.
func signedSend(t *testing.T, chain, sender string, priv ed25519.PrivateKey, nonce uint64, to string, amount uint64) []byte {
	t.Helper()
	msg, err := tx.NewMsg(tx.Send{To: to, Amount: amount})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := tx.Sign(tx.Body{ChainID: chain, Sender: sender, Nonce: nonce,
		Fee: ledger.DefaultParams().MinFee, Msgs: []tx.Msg{msg}}, priv)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := tx.Encode(signed)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func genesisJSON(t *testing.T) []byte {
	t.Helper()
	b, err := json.Marshal(ledger.Genesis{
		Params:   ledger.DefaultParams(),
		Accounts: []ledger.GenesisAccount{{Address: alice.addr, Balance: 1_000_000_000}, {Address: carol.addr, Balance: 1_000_000}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var genesisTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string) *App {
	t.Helper()
	a, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func initChain(t *testing.T, a *App) {
	t.Helper()
	_, err := a.InitChain(context.Background(), &abci.RequestInitChain{
		Time: genesisTime, ChainId: chainID, InitialHeight: 1, AppStateBytes: genesisJSON(t),
	})
	if err != nil {
		t.Fatal(err)
	}
}

// block finalizes and (if commit) commits one block; it returns the app hash
// and the tx codes.
func block(t *testing.T, a *App, height int64, commit bool, txs ...[]byte) ([]byte, []uint32) {
	t.Helper()
	ctx := context.Background()
	res, err := a.FinalizeBlock(ctx, &abci.RequestFinalizeBlock{
		Height: height, Time: genesisTime.Add(time.Duration(height) * time.Second), Txs: txs,
	})
	if err != nil {
		t.Fatalf("finalize block %d: %v", height, err)
	}
	if len(res.TxResults) != len(txs) {
		t.Fatalf("block %d: %d tx results for %d txs", height, len(res.TxResults), len(txs))
	}
	codes := make([]uint32, len(txs))
	for i, r := range res.TxResults {
		codes[i] = r.Code
	}
	if commit {
		if _, err := a.Commit(ctx, &abci.RequestCommit{}); err != nil {
			t.Fatalf("commit %d: %v", height, err)
		}
	}
	return res.AppHash, codes
}

func info(t *testing.T, a *App) (int64, []byte) {
	t.Helper()
	r, err := a.Info(context.Background(), &abci.RequestInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return r.LastBlockHeight, r.LastBlockAppHash
}

func account(t *testing.T, a *App, addr string) ledger.Account {
	t.Helper()
	r, err := a.Query(context.Background(), &abci.RequestQuery{Path: "/account/" + addr})
	if err != nil {
		t.Fatal(err)
	}
	if r.Code != 0 {
		t.Fatalf("query account %s: code %d: %s", addr, r.Code, r.Log)
	}
	var acc ledger.Account
	if err := json.Unmarshal(r.Value, &acc); err != nil {
		t.Fatal(err)
	}
	acc.PubKey = nil
	return acc
}

// TestRoundTripAndRestart runs InitChain and two blocks against a real
// pebble directory, then reopens it: same height, app hash and state.
func TestRoundTripAndRestart(t *testing.T) {
	dir := t.TempDir()
	a := open(t, dir)
	if h, hash := info(t, a); h != 0 || len(hash) != 0 {
		t.Fatalf("fresh store: Info = %d, %X; want 0, empty", h, hash)
	}
	initChain(t, a)
	block(t, a, 1, true, send(t, alice, 0, bob.addr, 5_000_000))
	hash2, codes := block(t, a, 2, true, send(t, alice, 1, bob.addr, 7), []byte("garbage"))
	if diff := cmp.Diff([]uint32{ledger.CodeOK, ledger.CodeDecode}, codes); diff != "" {
		t.Errorf("tx codes (-want +got):\n%s", diff)
	}
	h, hash := info(t, a)
	if h != 2 || !cmp.Equal(hash, hash2) {
		t.Errorf("Info = %d, %X; want 2, %X", h, hash, hash2)
	}
	wantBob := ledger.Account{Address: bob.addr, Balance: 5_000_007}
	if diff := cmp.Diff(wantBob, account(t, a, bob.addr)); diff != "" {
		t.Errorf("bob before restart (-want +got):\n%s", diff)
	}
	wantAlice := account(t, a, alice.addr)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	b := open(t, dir)
	defer b.Close()
	h, hash = info(t, b)
	if h != 2 || !cmp.Equal(hash, hash2) {
		t.Errorf("after restart Info = %d, %X; want 2, %X", h, hash, hash2)
	}
	if diff := cmp.Diff(wantBob, account(t, b, bob.addr)); diff != "" {
		t.Errorf("bob after restart (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantAlice, account(t, b, alice.addr)); diff != "" {
		t.Errorf("alice after restart (-want +got):\n%s", diff)
	}
	// The restored app goes on like one that never stopped.
	hash3, codes := block(t, b, 3, true, send(t, alice, 2, bob.addr, 1))
	ref := open(t, t.TempDir())
	defer ref.Close()
	initChain(t, ref)
	block(t, ref, 1, true, send(t, alice, 0, bob.addr, 5_000_000))
	block(t, ref, 2, true, send(t, alice, 1, bob.addr, 7), []byte("garbage"))
	refHash3, refCodes := block(t, ref, 3, true, send(t, alice, 2, bob.addr, 1))
	if !cmp.Equal(hash3, refHash3) || !cmp.Equal(codes, refCodes) {
		t.Errorf("block 3 after restart: hash %X codes %v; uninterrupted app: %X %v", hash3, codes, refHash3, refCodes)
	}
}

// TestCrashBetweenFinalizeAndCommit drops the app after FinalizeBlock and
// before Commit (what kill -9 does): the store is at the previous block,
// and replaying the block gives the same app hash.
func TestCrashBetweenFinalizeAndCommit(t *testing.T) {
	for _, tc := range []struct {
		name      string
		committed int64 // blocks committed before the crash
	}{
		{"first block (genesis not yet persisted)", 0},
		{"later block", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			txsAt := func(h int64) [][]byte {
				return [][]byte{send(t, alice, uint64(h-1), bob.addr, uint64(h))}
			}
			a := open(t, dir)
			initChain(t, a)
			for h := int64(1); h <= tc.committed; h++ {
				block(t, a, h, true, txsAt(h)...)
			}
			crashed := tc.committed + 1
			want, _ := block(t, a, crashed, false, txsAt(crashed)...)
			if err := a.Close(); err != nil { // the uncommitted block is lost
				t.Fatal(err)
			}

			b := open(t, dir)
			defer b.Close()
			h, _ := info(t, b)
			if h != tc.committed {
				t.Fatalf("after crash Info height = %d, want %d", h, tc.committed)
			}
			if h == 0 { // CometBFT sends InitChain again
				initChain(t, b)
			}
			got, codes := block(t, b, crashed, true, txsAt(crashed)...)
			if !cmp.Equal(got, want) {
				t.Errorf("replayed block %d app hash %X, want %X", crashed, got, want)
			}
			if diff := cmp.Diff([]uint32{0}, codes); diff != "" {
				t.Errorf("replayed tx codes (-want +got):\n%s", diff)
			}
			if h, hash := info(t, b); h != crashed || !cmp.Equal(hash, want) {
				t.Errorf("Info = %d, %X; want %d, %X", h, hash, crashed, want)
			}
		})
	}
}

func TestCheckTx(t *testing.T) {
	a := open(t, t.TempDir())
	defer a.Close()
	initChain(t, a)
	for _, tc := range []struct {
		name string
		tx   []byte
		want uint32
	}{
		{"valid", send(t, alice, 0, bob.addr, 1), ledger.CodeOK},
		{"next nonce queues", send(t, alice, 1, bob.addr, 1), ledger.CodeOK},
		{"replayed nonce", send(t, alice, 0, bob.addr, 1), ledger.CodeNonce},
		{"malformed", []byte("{not json"), ledger.CodeDecode},
		{"no funds", send(t, bob, 0, alice.addr, 1), ledger.CodeInsufficientFunds},
	} {
		r, err := a.CheckTx(context.Background(), &abci.RequestCheckTx{Tx: tc.tx, Type: abci.CheckTxType_New})
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != tc.want {
			t.Errorf("%s: CheckTx code %d (%s), want %d", tc.name, r.Code, r.Log, tc.want)
		}
		if r.Code != 0 && r.Log == "" {
			t.Errorf("%s: CheckTx failed without a log", tc.name)
		}
	}
}

func TestQueryErrors(t *testing.T) {
	a := open(t, t.TempDir())
	defer a.Close()
	r, err := a.Query(context.Background(), &abci.RequestQuery{Path: "/account/x"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Code == 0 || r.Log == "" {
		t.Errorf("query before InitChain: code %d log %q; want an error", r.Code, r.Log)
	}
	initChain(t, a)
	for _, path := range []string{"/no/such/path", "/channel/notanumber", "/model/unknown-model"} {
		r, err := a.Query(context.Background(), &abci.RequestQuery{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		if r.Code == 0 || r.Log == "" {
			t.Errorf("query %s: code %d log %q; want an error", path, r.Code, r.Log)
		}
	}
	block(t, a, 1, true)
	r, err = a.Query(context.Background(), &abci.RequestQuery{Path: "/params", Height: 7})
	if err != nil {
		t.Fatal(err)
	}
	if r.Code == 0 {
		t.Errorf("query at an old height succeeded")
	}
	r, err = a.Query(context.Background(), &abci.RequestQuery{Path: "/params", Height: 1})
	if err != nil || r.Code != 0 {
		t.Errorf("query at the latest height: %v %d %s", err, r.Code, r.Log)
	}
	r, err = a.Query(context.Background(), &abci.RequestQuery{Path: "/params"})
	if err != nil || r.Code != 0 {
		t.Fatalf("query params: %v %d %s", err, r.Code, r.Log)
	}
	var p ledger.Params
	if err := json.Unmarshal(r.Value, &p); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ledger.DefaultParams(), p); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
}

func TestInitChainBadGenesis(t *testing.T) {
	for _, state := range []string{`{"params":{}}`, `{"accounts":[{"address":"nope","balance":1}]}`, `{"unknown":1}`, `[`} {
		a := open(t, t.TempDir())
		_, err := a.InitChain(context.Background(), &abci.RequestInitChain{ChainId: chainID, InitialHeight: 1, AppStateBytes: []byte(state)})
		if err == nil {
			t.Errorf("InitChain(%s) succeeded, want an error", state)
		}
		a.Close()
	}
}

func TestPrepareAndProcessProposal(t *testing.T) {
	a := open(t, t.TempDir())
	defer a.Close()
	initChain(t, a)
	good1, good2, good3 := send(t, alice, 0, bob.addr, 1), send(t, alice, 1, bob.addr, 1), send(t, alice, 2, bob.addr, 1)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		txs      [][]byte
		maxBytes int64
		want     [][]byte
	}{
		{"drops undecodable", [][]byte{good1, []byte("junk"), good2}, 1 << 20, [][]byte{good1, good2}},
		{"respects max bytes", [][]byte{good1, good2, good3}, int64(len(good1) + len(good2) + 1), [][]byte{good1, good2}},
		{"drops a replayed nonce", [][]byte{good1, good1, good2}, 1 << 20, [][]byte{good1, good2}},
	} {
		r, err := a.PrepareProposal(ctx, &abci.RequestPrepareProposal{Txs: tc.txs, MaxTxBytes: tc.maxBytes, Height: 1})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, r.Txs); diff != "" {
			t.Errorf("%s: proposal (-want +got):\n%s", tc.name, diff)
		}
	}
	for _, tc := range []struct {
		txs  [][]byte
		want abci.ResponseProcessProposal_ProposalStatus
	}{
		{[][]byte{good1, good2}, abci.ResponseProcessProposal_ACCEPT},
		{[][]byte{good1, []byte("junk")}, abci.ResponseProcessProposal_ACCEPT}, // execution fails it
		{[][]byte{good1, make([]byte, tx.MaxTxBytes+1)}, abci.ResponseProcessProposal_REJECT},
	} {
		r, err := a.ProcessProposal(ctx, &abci.RequestProcessProposal{Txs: tc.txs, Height: 1})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != tc.want {
			t.Errorf("ProcessProposal = %v, want %v", r.Status, tc.want)
		}
	}
}

// TestConcurrentQueries runs queries while blocks execute (run with -race).
func TestConcurrentQueries(t *testing.T) {
	a := open(t, t.TempDir())
	defer a.Close()
	initChain(t, a)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := a.Query(context.Background(), &abci.RequestQuery{Path: "/account/" + bob.addr}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for h := int64(1); h <= 20; h++ {
		block(t, a, h, true, send(t, alice, uint64(h-1), bob.addr, 1))
	}
	close(stop)
	wg.Wait()
	if got := account(t, a, bob.addr).Balance; got != 20 {
		t.Errorf("bob balance %d, want 20", got)
	}

}

// TestCheckTxBetweenFinalizeAndCommit: a sender's next transaction that
// arrives after FinalizeBlock and before Commit is not rejected for its
// nonce (its predecessor is still in the mempool), and bad ones still are.
func TestCheckTxBetweenFinalizeAndCommit(t *testing.T) {
	a := open(t, t.TempDir())
	defer a.Close()
	initChain(t, a)
	ctx := context.Background()
	check := func(raw []byte, typ abci.CheckTxType) uint32 {
		t.Helper()
		r, err := a.CheckTx(ctx, &abci.RequestCheckTx{Tx: raw, Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		return r.Code
	}
	tx0, tx1, tx2 := send(t, alice, 0, bob.addr, 1), send(t, alice, 1, bob.addr, 1), send(t, alice, 2, bob.addr, 1)
	for _, raw := range [][]byte{tx0, tx1} {
		if c := check(raw, abci.CheckTxType_New); c != 0 {
			t.Fatalf("CheckTx = %d", c)
		}
	}
	block(t, a, 1, false, tx0) // finalized, tx1 still in the mempool
	if c := check(tx2, abci.CheckTxType_New); c != ledger.CodeOK {
		t.Errorf("next nonce in the window: code %d, want 0", c)
	}
	forged := send(t, testKey{addr: alice.addr, priv: bob.priv}, 3, bob.addr, 1) // bob signs for alice
	carol0 := send(t, carol, 0, bob.addr, 1)
	for _, tc := range []struct { // in order: the last one changes the check-state
		name string
		raw  []byte
		want uint32
	}{
		{"garbage", []byte("x"), ledger.CodeDecode},
		{"signature", forged, ledger.CodeSignature},
		{"committed nonce", send(t, alice, 0, bob.addr, 2), ledger.CodeNonce},
		{"no funds", send(t, bob, 0, alice.addr, 1), ledger.CodeInsufficientFunds},
		{"overspend", send(t, carol, 0, bob.addr, 2_000_000), ledger.CodeInsufficientFunds},
		{"fully checked", carol0, ledger.CodeOK},
	} {
		if c := check(tc.raw, abci.CheckTxType_New); c != tc.want {
			t.Errorf("%s in the window: code %d, want %d", tc.name, c, tc.want)
		}
	}
	if _, err := a.Commit(ctx, &abci.RequestCommit{}); err != nil {
		t.Fatal(err)
	}
	// CometBFT's recheck after Commit, in mempool order.
	if c := check(tx1, abci.CheckTxType_Recheck); c != 0 {
		t.Errorf("recheck tx1: code %d", c)
	}
	if c := check(tx2, abci.CheckTxType_Recheck); c != 0 {
		t.Errorf("recheck tx2: code %d", c)
	}
	if c := check(carol0, abci.CheckTxType_Recheck); c != 0 {
		t.Errorf("recheck of a tx fully checked in the window: code %d", c)
	}
	if c := check(tx0, abci.CheckTxType_New); c != ledger.CodeNonce {
		t.Errorf("committed tx again: code %d, want %d", c, ledger.CodeNonce)
	}
}

// TestStatelessCheckLedgerOrder checks that a transaction wrong in several
// ways gets the same code from the stateless check (CheckTx between
// FinalizeBlock and Commit) as from executing it in a block.
func TestStatelessCheckLedgerOrder(t *testing.T) {
	sign := func(chain string, signer testKey, amount uint64) []byte {
		return signedSend(t, chain, alice.addr, signer.priv, 0, bob.addr, amount)
	}
	for _, tc := range []struct {
		name string
		raw  []byte
		want uint32
	}{
		{"wrong chain, zero amount", sign("other-chain", alice, 0), ledger.CodeChainID},
		{"forged, zero amount", sign(chainID, bob, 0), ledger.CodeSignature},
		{"zero amount", sign(chainID, alice, 0), ledger.CodeInvalid},
	} {
		_, r := statelessCheck(tc.raw, chainID)
		a := open(t, t.TempDir())
		initChain(t, a)
		_, codes := block(t, a, 1, true, tc.raw)
		a.Close()
		if r.Code != tc.want || codes[0] != tc.want {
			t.Errorf("%s: stateless code %d (%s), block code %d, want %d for both", tc.name, r.Code, r.Log, codes[0], tc.want)
		}
	}
}
