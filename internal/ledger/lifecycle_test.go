package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mycel-network/mycel/internal/tx"
)

func TestLifecycleErrors(t *testing.T) {
	p := DefaultParams()
	fresh := New(testChain)
	if r := fresh.CheckTx([]byte("x")); r.Code != CodeInternal {
		t.Errorf("CheckTx before InitChain: code %s, want internal", CodeName(r.Code))
	}
	if err := fresh.BeginBlock(Header{Height: 1}); !errors.Is(err, ErrState) {
		t.Errorf("BeginBlock before InitChain = %v, want ErrState", err)
	}
	if _, err := fresh.Query("params", nil); err == nil {
		t.Error("Query before InitChain succeeded")
	}
	if err := New(testChain).InitChain(Header{Height: 1, ChainID: "other"}, Genesis{Params: p}); !errors.Is(err, ErrState) {
		t.Errorf("InitChain with another chain id = %v, want ErrState", err)
	}
	bad := Genesis{Params: p, Accounts: []GenesisAccount{{Address: testAddr("a"), Balance: 1}, {Address: testAddr("a"), Balance: 1}}}
	if err := New(testChain).InitChain(Header{Height: 1}, bad); !errors.Is(err, ErrBadGenesis) {
		t.Errorf("InitChain with a duplicate account = %v, want ErrBadGenesis", err)
	}
	over := Genesis{Params: p, Accounts: []GenesisAccount{{Address: testAddr("a"), Balance: 1 << 63}, {Address: testAddr("b"), Balance: 1 << 63}}}
	if err := over.Validate(); !errors.Is(err, ErrBadGenesis) {
		t.Errorf("Validate with supply overflow = %v, want ErrBadGenesis", err)
	}

	l := newTestLedger(t, p, map[string]uint64{"alice": 1e9}, "alice")
	if err := l.InitChain(Header{Height: 1}, Genesis{Params: p}); !errors.Is(err, ErrState) {
		t.Errorf("second InitChain = %v, want ErrState", err)
	}
	if r := l.DeliverTx([]byte("x")); r.Code != CodeInternal {
		t.Errorf("DeliverTx outside a block: code %s, want internal", CodeName(r.Code))
	}
	if _, err := l.Slash(testAddr("alice"), tx.RoleProvider, 1, ""); !errors.Is(err, ErrState) {
		t.Errorf("Slash outside a block = %v, want ErrState", err)
	}
	for _, h := range []Header{{Height: 2}, {Height: 0}, {Height: 1, ChainID: "other"}} {
		if err := l.BeginBlock(h); !errors.Is(err, ErrState) {
			t.Errorf("BeginBlock(%+v) = %v, want ErrState", h, err)
		}
	}
	if err := l.BeginBlock(Header{Height: 1}); err != nil {
		t.Fatal(err)
	}
	if err := l.BeginBlock(Header{Height: 2}); !errors.Is(err, ErrState) {
		t.Errorf("BeginBlock during a block = %v, want ErrState", err)
	}
}

func TestCommitChangesAndRestore(t *testing.T) {
	p := DefaultParams()
	l := newTestLedger(t, p, map[string]uint64{"alice": 1e9}, "alice")
	genesisHash := l.AppHash()
	if l.Height() != 0 {
		t.Fatalf("height after InitChain = %d, want 0", l.Height())
	}
	// Restore from the genesis writes, flushed by a Commit without a block.
	hash, genesisKVs := l.Commit()
	if !bytes.Equal(hash, genesisHash) || l.Height() != 0 {
		t.Fatalf("Commit without a block changed hash or height")
	}
	r, err := Restore(testChain, 0, genesisKVs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r.AppHash(), genesisHash) {
		t.Fatal("Restore(genesis) app hash differs")
	}
	if _, again := l.Commit(); len(again) != 0 {
		t.Errorf("second Commit without a block returned %d changes, want 0", len(again))
	}

	if err := l.BeginBlock(Header{Height: 1}); err != nil {
		t.Fatal(err)
	}
	if res := l.DeliverTx(signedTx(t, testChain, "alice", 0, p.MinFee, tx.Send{To: testAddr("bob"), Amount: 7})); res.Code != CodeOK {
		t.Fatal(res.Log)
	}
	l.EndBlock()
	h1, changes := l.Commit()
	var keys []string
	for _, kv := range changes {
		keys = append(keys, string(kv.Key))
	}
	if !sort.StringsAreSorted(keys) {
		t.Errorf("changes not sorted: %q", keys)
	}
	want := []string{keyAccount(testAddr("alice")), keyAccount(testAddr("bob")), keyEpoch} // the fee goes to the reward pool
	sort.Strings(want)
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("changed keys (-want +got):\n%s", diff)
	}
	if bytes.Equal(h1, genesisHash) {
		t.Error("app hash did not change")
	}
	// An empty block changes the app hash too (the height is committed).
	if err := l.BeginBlock(Header{Height: 2}); err != nil {
		t.Fatal(err)
	}
	l.EndBlock()
	h2, changes := l.Commit()
	if len(changes) != 0 || bytes.Equal(h1, h2) {
		t.Errorf("empty block: %d changes, hash changed %v; want 0 changes and a new hash", len(changes), !bytes.Equal(h1, h2))
	}
}

func TestCheckTxState(t *testing.T) {
	p := DefaultParams()
	l := newTestLedger(t, p, map[string]uint64{"alice": 10 * p.MinFee}, "alice")
	send := func(nonce uint64, amount uint64) []byte {
		return signedTx(t, testChain, "alice", nonce, p.MinFee, tx.Send{To: testAddr("bob"), Amount: amount})
	}
	steps := []struct {
		raw  []byte
		want uint32
	}{
		{send(0, 1), CodeOK},
		{send(1, 1), CodeOK},                                      // pending nonce tracked
		{send(1, 1), CodeNonce},                                   // already pending
		{send(2, 8*p.MinFee), CodeInsufficientFunds},              // pending balance tracked
		{send(2, 10*p.MinFee-3*p.MinFee-2), CodeOK},               // exactly what is left
		{signedTx(t, "other", "alice", 3, p.MinFee), CodeChainID}, // no messages needed to fail here
	}
	for i, s := range steps {
		if r := l.CheckTx(s.raw); r.Code != s.want {
			t.Errorf("step %d: code %s (%s), want %s", i, CodeName(r.Code), r.Log, CodeName(s.want))
		}
	}
	// Commit without delivering resets the check-state to the committed state.
	l.Commit()
	if r := l.CheckTx(send(0, 1)); r.Code != CodeOK {
		t.Errorf("after Commit: code %s (%s), want ok", CodeName(r.Code), r.Log)
	}
}

func TestQueryChannelsFilterAndSupply(t *testing.T) {
	p := DefaultParams()
	p.MinProviderStake = 1
	l := newTestLedger(t, p, map[string]uint64{"c": 1e9, "p": 1e9}, "c", "p")
	if err := l.BeginBlock(Header{Height: 1}); err != nil {
		t.Fatal(err)
	}
	m := testModel("m", "m")
	for i, raw := range [][]byte{
		signedTx(t, testChain, "p", 0, p.MinFee, m),
		signedTx(t, testChain, "p", 1, p.MinFee, tx.RegisterProvider{Stake: 5, Endpoint: "http://p", Models: []tx.ServedModel{{ModelID: "m"}}}),
		signedTx(t, testChain, "c", 0, p.MinFee, tx.OpenChannel{Provider: testAddr("p"), Deposit: 100}),
	} {
		if r := l.DeliverTx(raw); r.Code != CodeOK {
			t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
	l.EndBlock()
	l.Commit()
	for _, tc := range []struct {
		filter string
		n      int
	}{{"", 1}, {testAddr("c"), 1}, {testAddr("p"), 1}, {testAddr("x"), 0}} {
		out, err := l.Query("/channels", []byte(tc.filter))
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Count(out, []byte(`"id":`)); got != tc.n {
			t.Errorf("channels %q: %d channels, want %d: %s", tc.filter, got, tc.n, out)
		}
	}
	if _, err := l.Query("channels", []byte("junk")); !errors.Is(err, ErrBadQuery) {
		t.Errorf("channels junk filter = %v, want ErrBadQuery", err)
	}
	if _, err := l.Query("provider/"+testAddr("c"), nil); !errors.Is(err, ErrNotFound) || ErrorCode(err) != CodeNotFound {
		t.Errorf("provider c = %v, want ErrNotFound", err)
	}
	out, err := l.Query("supply", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Fees are not burned: the three fees paid are in the reward pool.
	if want := `{"genesis":2000000000,"minted":0,"slashed":0,"burned":0,"total":2000000000}`; string(out) != want {
		t.Errorf("supply = %s, want %s", out, want)
	}
	var ep EpochView
	if out, err = l.Query("epoch", nil); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &ep); err != nil {
		t.Fatal(err)
	}
	if ep.RewardPool != 3*l.params.MinFee {
		t.Errorf("reward pool %d, want the three fees %d", ep.RewardPool, 3*l.params.MinFee)
	}
}
