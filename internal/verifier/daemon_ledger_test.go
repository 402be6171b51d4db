package verifier_test

import (
	"context"
	"crypto/ed25519"
	"math/rand/v2"
	"testing"

	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
	"github.com/mycel-network/mycel/internal/verifier"
	"github.com/mycel-network/mycel/internal/verifier/cheat"
)

// memSetup is an in-memory ledger with the reference model registered,
// funded accounts and registered providers.
func memSetup(t *testing.T, provs map[string]cheat.Strategy) (*memLedger, *labShopper) {
	t.Helper()
	l := lab(t)
	ref := l.Models["mycel-ref"]
	names := []string{"v1", "v2", "v3"}
	for n := range provs {
		names = append(names, n)
	}
	m := newMemLedger(t, memParams(), []tx.RegisterModel{{ID: "mycel-ref", SHA256: ref.SHA256, Architecture: "llama",
		Parameters: 1, Quantization: ref.WeightType, ContextLength: 512, License: "MIT"}}, names...)
	shop := &labShopper{lab: l, provs: map[string]*cheat.Provider{}, keys: map[string]ed25519.PrivateKey{}, chain: memChainID}
	seed := uint64(1)
	for name, s := range provs {
		acct := m.account(name)
		cheap := ""
		if s != cheat.Honest {
			cheap = "mycel-sub"
		}
		p, err := l.Provider(s, "mycel-ref", cheap, seed)
		if err != nil {
			t.Fatal(err)
		}
		seed++
		shop.provs[acct.addr], shop.keys[acct.addr] = p, acct.key
		if err := acct.Submit(context.Background(), tx.RegisterProvider{Stake: 10_000_000, Endpoint: "http://127.0.0.1:1",
			Models: []tx.ServedModel{{ModelID: "mycel-ref"}}}); err != nil {
			t.Fatal(err)
		}
	}
	return m, shop
}

// TestDaemonReputationOnLedger runs the daemon against the in-memory
// ledger: it anchors its shopper receipts and reports its audits, so the
// honest provider's clean epochs rise and its audit probability falls from
// 100% to the floor, and the verifier stays audit-compliant (paid).
func TestDaemonReputationOnLedger(t *testing.T) {
	ctx := context.Background()
	m, shop := memSetup(t, map[string]cheat.Strategy{"honest": cheat.Honest})
	va := m.account("v1")
	prov := m.account("honest").addr
	v, err := verifier.New(verifier.Config{Address: va.addr, Stake: 5_000_000, EvidenceBond: 1_000_000,
		AuditFloorBps: 500, AuditCleanEpochs: 3}, va, shop, labCheckers{shop.lab}, rand.NewChaCha8([32]byte{1}))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	cancel()
	if err := v.Run(runCtx); err != nil {
		t.Fatal(err)
	}
	bps := []uint64{m.reputation(prov).AuditBps}
	shops := map[uint64]int{}
	for m.epoch().Number < 7 {
		if err := v.Tick(ctx); err != nil {
			t.Logf("tick at height %d: %v", m.epoch().Height, err)
		}
		e := m.epoch().Number
		if shops[e] < 2 {
			if err := v.ShopOnce(ctx); err != nil {
				t.Fatalf("shop: %v", err)
			}
			shops[e]++
		}
		m.advance(1)
		if r := m.reputation(prov); r.AuditBps != bps[len(bps)-1] {
			bps = append(bps, r.AuditBps)
		}
	}
	r := m.reputation(prov)
	t.Logf("reputation %+v, audit bps over time %v", r, bps)
	if r.CleanEpochs < 3 {
		t.Errorf("clean epochs %d, want ≥ 3", r.CleanEpochs)
	}
	if r.AuditsPassed < 3 || r.AuditsFailed != 0 {
		t.Errorf("audits passed %d, failed %d", r.AuditsPassed, r.AuditsFailed)
	}
	if bps[0] != 10_000 || r.AuditBps != 500 {
		t.Errorf("audit probability went %v, want from 10000 down to the floor 500", bps)
	}
	for i := 1; i < len(bps); i++ {
		if bps[i] > bps[i-1] {
			t.Errorf("audit probability rose: %v", bps)
		}
	}
	// The verifier was audit-compliant: it was paid dividends for the
	// epochs its reports covered.
	paid := 0
	for e := uint64(1); e < 6; e++ {
		var rec ledger.RewardRecord
		if err := m.query("rewards/"+u64s(e), nil, &rec); err != nil {
			continue
		}
		for _, vr := range rec.Verifiers {
			if vr.Verifier == va.addr {
				if !vr.Eligible {
					t.Errorf("epoch %d: verifier not eligible (not audit-compliant)", e)
				}
				if vr.Amount > 0 {
					paid++
				}
			}
		}
	}
	if paid == 0 {
		t.Error("the verifier was never paid")
	}
}
