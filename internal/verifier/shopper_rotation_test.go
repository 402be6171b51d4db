package verifier_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
	"github.com/mycel-network/mycel/internal/verifier"
)

// memShopLedger is verifier.ShopperLedger over a memLedger.
type memShopLedger struct{ m *memLedger }

func (l memShopLedger) Epoch(context.Context) (ledger.EpochView, error) {
	var e ledger.EpochView
	return e, l.m.query("epoch", nil, &e)
}

func (l memShopLedger) Balance(_ context.Context, addr string) (uint64, error) {
	var a ledger.Account
	return a.Balance, l.m.query("account/"+addr, nil, &a)
}

func (l memShopLedger) Channels(_ context.Context, consumer string) ([]ledger.Channel, error) {
	var chs []ledger.Channel
	return chs, l.m.query("channels", []byte(consumer), &chs)
}

func (l memShopLedger) MinFee(context.Context) (uint64, error) {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	return l.m.l.Params().MinFee, nil
}

func (l memShopLedger) Submit(ctx context.Context, k keys.Key, msgs ...any) error {
	return (&memAccount{m: l.m, addr: k.Address, key: k.PrivKey}).Submit(ctx, msgs...)
}

func (m *memLedger) channel(id uint64) ledger.Channel {
	var c ledger.Channel
	if err := m.query("channel/"+u64s(id), nil, &c); err != nil {
		m.t.Fatal(err)
	}
	return c
}

func (m *memLedger) balance(addr string) uint64 {
	var a ledger.Account
	if err := m.query("account/"+addr, nil, &a); err != nil {
		m.t.Fatal(err)
	}
	return a.Balance
}

// TestShopperAccountRotates: HTTPShopper pays each epoch from a fresh
// account (EpochShopperKey of the verifier's key and the epoch), funded by
// the verifier; the provider stand-in (127.0.0.1) redeems the vouchers on
// the ledger, so the payments are real. Once the epoch is over, the old
// account settles (a final voucher covering every answer), closes its
// channel and, after the challenge window, sends what is left back to the
// verifier.
func TestShopperAccountRotates(t *testing.T) {
	ctx := context.Background()
	p := memParams()
	p.EpochLength = 60 // the sweep below happens within epoch 2
	p.ChannelChallengeBlocks = 10
	m := newMemLedger(t, p, []tx.RegisterModel{{ID: "m", SHA256: strings.Repeat("ab", 32), Architecture: "llama",
		Parameters: 1, Quantization: "F32", ContextLength: 512, License: "MIT"}}, "v1", "prov")
	vAddr, vPriv := memKey("v1")
	vk := keys.Key{Name: "v1", Address: vAddr, PrivKey: vPriv}
	prov := m.account("prov")

	const price = 100 // umyc per request
	var (
		mu       sync.Mutex
		vouchers []channel.Voucher
		finals   []channel.Voucher // sent on their own, to settle
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/mycel/v1/voucher" {
			var v channel.Voucher
			if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			finals = append(finals, v)
			mu.Unlock()
			return
		}
		v, err := channel.DecodeVoucherHeader(r.Header.Get("X-Mycel-Voucher"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusPaymentRequired)
			return
		}
		mu.Lock()
		vouchers = append(vouchers, v)
		mu.Unlock()
		var rid [12]byte
		_, _ = rand.Read(rid[:])
		rc := channel.Receipt{ChainID: memChainID, RequestID: hex.EncodeToString(rid[:]), Provider: prov.addr, ChannelID: v.ChannelID,
			TokensOut: 2, FinishReason: "stop", Cumulative: v.Amount + price}
		h, err := channel.EncodeHeader(rc)
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("X-Mycel-Receipt", h)
		fmt.Fprint(w, `{"choices":[{"message":{"content":"Hi Go"},"finish_reason":"stop"}]}`)
	}))
	defer srv.Close()
	if err := prov.Submit(ctx, tx.RegisterProvider{Stake: 10_000_000, Endpoint: srv.URL, Models: []tx.ServedModel{{ModelID: "m"}}}); err != nil {
		t.Fatal(err)
	}
	pv := ledger.ProviderView{Provider: ledger.Provider{Address: prov.addr, Endpoint: srv.URL}}
	shop := &verifier.HTTPShopper{Chain: verifier.LedgerChain{Key: vk}, Ledger: memShopLedger{m}, ChainID: memChainID,
		Deposit: 2_000_000, HTTP: srv.Client()}
	shopN := func(n int) channel.Voucher {
		t.Helper()
		for range n {
			if _, err := shop.Shop(ctx, pv, "m", verifier.ShopperParams{PoolIndex: 1, MaxTokens: 8}); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return vouchers[len(vouchers)-1]
	}

	payers := map[uint64]string{}
	chans := map[uint64]uint64{}
	for _, e := range []uint64{1, 2} {
		for m.epoch().Number < e {
			m.advance(1)
		}
		last := shopN(3)
		c := m.channel(last.ChannelID)
		payers[e], chans[e] = c.Consumer, c.ID
		if want := verifier.EpochShopperKey(vk, e).Address; c.Consumer != want {
			t.Errorf("epoch %d: paid from %s, want the epoch's shopper account %s", e, c.Consumer, want)
		}
		// The last voucher pays for the two requests before it: the
		// provider redeems it, so the consumer's signature holds.
		if err := prov.Submit(ctx, tx.RedeemVoucher{Voucher: last}); err != nil {
			t.Fatalf("epoch %d: provider cannot redeem the shopper's voucher: %v", e, err)
		}
		if got := m.channel(c.ID).Redeemed; got != 2*price {
			t.Errorf("epoch %d: redeemed %d, want %d", e, got, 2*price)
		}
	}
	if payers[1] == payers[2] {
		t.Fatalf("both epochs paid from %s", payers[1])
	}
	for e, p := range payers {
		if p == vAddr {
			t.Errorf("epoch %d paid from the verifier's own account", e)
		}
	}
	// Epoch 2's first request settled epoch 1's channel (a final voucher
	// for all three answers, which the provider redeems) and closed it;
	// once it has closed, a request sweeps the old account back to the
	// verifier.
	c1 := m.channel(chans[1])
	if c1.CloseAt == 0 {
		t.Fatalf("epoch 1's channel is not closing after epoch 1: %+v", c1)
	}
	mu.Lock()
	if len(finals) != 1 || finals[0].ChannelID != chans[1] || finals[0].Amount != 3*price {
		t.Fatalf("final vouchers %+v, want one for channel %d over %d", finals, chans[1], 3*price)
	}
	final := finals[0]
	mu.Unlock()
	if err := prov.Submit(ctx, tx.RedeemVoucher{Voucher: final}); err != nil {
		t.Fatalf("provider cannot redeem the final voucher: %v", err)
	}
	for !m.channel(chans[1]).Closed {
		m.advance(1)
	}
	old := payers[1]
	left := m.balance(old)
	before := m.balance(vAddr)
	shopN(1)
	if e := m.epoch().Number; e != 2 {
		t.Fatalf("swept in epoch %d, want 2 (no new account funded meanwhile)", e)
	}
	fee := m.l.Params().MinFee
	if got := m.balance(old); got != 0 {
		t.Errorf("epoch 1's account still holds %d after the sweep", got)
	}
	if got := m.balance(vAddr); got != before+left-fee {
		t.Errorf("verifier balance %d → %d, want + %d (the old account's %d less the fee)", before, got, left-fee, left)
	}
	if c1 := m.channel(chans[1]); c1.Redeemed != 3*price || c1.Returned != c1.Deposit-3*price {
		t.Errorf("epoch 1's channel redeemed %d and returned %d, want %d and the unspent deposit %d", c1.Redeemed, c1.Returned, 3*price, c1.Deposit-3*price)
	}
	// The shopper accounts are ordinary, distinct accounts of valid
	// addresses.
	for _, e := range []uint64{1, 2} {
		k := verifier.EpochShopperKey(vk, e)
		if address.FromPubKey(k.PrivKey.Public().(ed25519.PublicKey)) != k.Address {
			t.Errorf("epoch %d: address does not match the key", e)
		}
	}
}
