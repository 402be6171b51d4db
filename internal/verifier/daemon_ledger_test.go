package verifier_test

import (
	"context"
	"crypto/ed25519"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/provider/reveal"
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

// newMemVerifier registers a daemon for the named funded account.
func newMemVerifier(t *testing.T, m *memLedger, shop verifier.Shopper, checkers verifier.Checkers, name string, seed byte) (*verifier.Verifier, *memAccount) {
	t.Helper()
	acct := m.account(name)
	v, err := verifier.New(verifier.Config{Address: acct.addr, Stake: 5_000_000, EvidenceBond: 1_000_000, RecheckAll: true,
		AuditFloorBps: 500, AuditCleanEpochs: 3, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}, acct, shop, checkers, rand.NewChaCha8([32]byte{seed}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := v.Run(ctx); err != nil {
		t.Fatal(err)
	}
	return v, acct
}

// toEpoch advances the ledger to epoch e, ticking the verifiers each block.
func toEpoch(t *testing.T, m *memLedger, e uint64, vs ...*verifier.Verifier) {
	t.Helper()
	for m.epoch().Number < e {
		for _, v := range vs {
			_ = v.Tick(context.Background()) // refusals (a missed seed window) are expected
		}
		m.advance(1)
	}
}

func (m *memLedger) evidence() []ledger.Evidence {
	var evs []ledger.Evidence
	if err := m.query("evidence", nil, &evs); err != nil {
		m.t.Fatal(err)
	}
	return evs
}

// TestEvidenceQuorumOnLedger: two verifiers of equal stake (neither holds
// 2/3 alone). One catches a substituting provider and files evidence with
// its material; the other, which never saw the request, re-checks it from
// the material with its own reference engine and votes guilty, and the
// ledger slashes the provider.
func TestEvidenceQuorumOnLedger(t *testing.T) {
	ctx := context.Background()
	m, shop := memSetup(t, map[string]cheat.Strategy{"sub": cheat.Substitute})
	v1, a1 := newMemVerifier(t, m, shop, labCheckers{shop.lab}, "v1", 1)
	v2, _ := newMemVerifier(t, m, &labShopper{}, labCheckers{shop.lab}, "v2", 2)
	toEpoch(t, m, 1, v1, v2)
	if err := v1.Tick(ctx); err != nil {
		t.Logf("tick: %v", err)
	}
	for i := 0; i < 16 && len(m.evidence()) == 0; i++ {
		if err := v1.ShopOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	evs := m.evidence()
	if len(evs) != 1 {
		t.Fatalf("%d evidence filed against the substituting provider, want 1", len(evs))
	}
	ev := evs[0]
	if ev.Submitter != a1.addr || ev.Material == nil || ev.Status != ledger.EvidenceOpen {
		t.Fatalf("evidence %+v", ev)
	}
	if err := v2.Tick(ctx); err != nil {
		t.Logf("tick: %v", err)
	}
	evs = m.evidence()
	if evs[0].Status != ledger.EvidenceGuilty || len(evs[0].Votes) != 1 || !evs[0].Votes[0].Guilty || evs[0].Slashed == 0 {
		t.Fatalf("after the second verifier's vote: %+v", evs[0])
	}
	var p ledger.ProviderView
	if err := m.query("provider/"+m.account("sub").addr, nil, &p); err != nil {
		t.Fatal(err)
	}
	if !p.Jailed {
		t.Errorf("slashed provider not jailed: %+v", p)
	}
}

// TestForgedEvidenceVotedDown: an accuser files evidence against an honest
// provider with forged material (request and output must hash to the
// receipt, so it forges what they do not bind: the logprobs, or the token
// ids as another tokenisation of the same text). A naive re-check of each
// forgery fails, but the second verifier drops logprobs that do not match
// the receipt's commitment and holds unbound ids to the text's own
// tokenisation, finds the answer honest and votes innocent; the evidence is
// rejected at its deadline and the accuser loses its bond.
func TestForgedEvidenceVotedDown(t *testing.T) {
	ctx := context.Background()
	m, shop := memSetup(t, map[string]cheat.Strategy{"honest": cheat.Honest})
	_, a1 := newMemVerifier(t, m, shop, labCheckers{shop.lab}, "v1", 1)
	v2, _ := newMemVerifier(t, m, &labShopper{}, labCheckers{shop.lab}, "v2", 2)
	toEpoch(t, m, 1, v2)
	provs, err := a1.Providers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ref := shop.lab.Models["mycel-ref"]
	forgeLogprobs := func(a verifier.Answer) (verifier.Answer, bool) {
		f := a
		f.Logprobs = make([]float64, len(a.Logprobs))
		for i, lp := range a.Logprobs {
			f.Logprobs[i] = lp - 0.5
		}
		return f, len(a.Logprobs) > 0
	}
	forgeIDs := func(a verifier.Answer) (verifier.Answer, bool) {
		canon, err := ref.Checker.Tokenize(a.Text)
		if err != nil {
			t.Fatal(err)
		}
		for k := 1; k < len(a.Text); k++ {
			x, err1 := ref.Checker.Tokenize(a.Text[:k])
			y, err2 := ref.Checker.Tokenize(a.Text[k:])
			ids := append(x, y...)
			if err1 != nil || err2 != nil || slices.Equal(ids, canon) || slices.Equal(ids, a.IDs) {
				continue
			}
			if d, err := ref.Tokenizer.Decode(ids); err == nil && d == a.Text {
				f := a
				f.IDs, f.Logprobs = ids, nil
				return f, true
			}
		}
		return a, false
	}
	const bond = 1_000_000
	fee := m.l.Params().MinFee
	for i, forge := range []func(verifier.Answer) (verifier.Answer, bool){forgeLogprobs, forgeIDs} {
		zero := 0.0
		params := verifier.ShopperParams{PoolIndex: uint64(3 + i), Temperature: &zero, MaxTokens: 16, Logprobs: true}
		got, err := shop.Shop(ctx, provs[0], "mycel-ref", params)
		if err != nil {
			t.Fatal(err)
		}
		forged := got
		var ok bool
		if forged.Answer, ok = forge(got.Answer); !ok {
			t.Fatalf("forgery %d: nothing to forge in %+v", i, got.Answer)
		}
		// The forgery fools a re-check that trusts the material.
		ids, err := verifier.Prompt(ref.Format, ref.Tokenizer, got.System, got.User)
		if err != nil {
			t.Fatal(err)
		}
		naive, err := ref.Checker.Check(ctx, verifier.Job{RequestBody: got.Body, Prompt: ids, Sampling: params.Sampling(),
			ModelSHA256: ref.SHA256, Profile: verifier.ProfilePeer}, forged.Answer, verifier.ClaimFromReceipt(got.Receipt))
		if err != nil {
			t.Fatal(err)
		}
		if naive.Honest {
			t.Fatalf("forgery %d passes a naive re-check: the test forges nothing", i)
		}
		var before ledger.Account
		if err := m.query("account/"+a1.addr, nil, &before); err != nil {
			t.Fatal(err)
		}
		if err := a1.Submit(ctx, tx.SubmitEvidence{Receipt: got.Receipt, Bond: bond, Material: verifier.Material(forged),
			Summary: tx.EvidenceSummary{PositionsChecked: uint64(len(ids)), Verdict: tx.VerdictQuantization}}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// A forged request or output does not even reach the vote.
			bad := verifier.Material(forged)
			bad.Output += " (edited)"
			if err := a1.Submit(ctx, tx.SubmitEvidence{Receipt: got.Receipt, Bond: bond, Material: bad,
				Summary: tx.EvidenceSummary{Verdict: tx.VerdictQuantization}}); err == nil {
				t.Error("evidence with an output not matching the receipt was accepted")
			}
		}
		if err := v2.Tick(ctx); err != nil {
			t.Logf("tick: %v", err)
		}
		evs := m.evidence()
		ev := evs[len(evs)-1]
		if len(ev.Votes) != 1 || ev.Votes[0].Guilty {
			t.Fatalf("forgery %d: votes %+v, want one innocent vote", i, ev.Votes)
		}
		for j := 0; j < 40 && m.evidence()[len(evs)-1].Status == ledger.EvidenceOpen; j++ {
			m.advance(1)
		}
		ev = m.evidence()[len(evs)-1]
		if ev.Status != ledger.EvidenceRejected || ev.BondToPool != bond {
			t.Fatalf("forgery %d: evidence %+v, want rejected with the bond forfeited", i, ev)
		}
		var after ledger.Account
		if err := m.query("account/"+a1.addr, nil, &after); err != nil {
			t.Fatal(err)
		}
		if before.Balance-after.Balance != bond+fee {
			t.Errorf("forgery %d: accuser balance %d → %d, want to lose the bond %d and one fee %d", i, before.Balance, after.Balance, bond, fee)
		}
	}
}

// TestSignedRevealLieOnLedger: a provider that answered honestly but signed a reveal whose
// logprobs contradict its receipt's commitment is guilty on that proof alone. Evidence whose
// material carries a reveal signature by anyone but the provider is refused by the ledger
// and changes nothing; with the provider's signature it is accepted, and the second
// verifier, although the text re-checks honest, votes guilty and the provider is slashed.
func TestSignedRevealLieOnLedger(t *testing.T) {
	ctx := context.Background()
	m, shop := memSetup(t, map[string]cheat.Strategy{"honest": cheat.Honest})
	_, a1 := newMemVerifier(t, m, shop, labCheckers{shop.lab}, "v1", 1)
	v2, _ := newMemVerifier(t, m, &labShopper{}, labCheckers{shop.lab}, "v2", 2)
	toEpoch(t, m, 1, v2)
	provs, err := a1.Providers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prov := provs[0].Address
	params := verifier.ShopperParams{PoolIndex: 4, Temperature: ptr(0.0), MaxTokens: 16, Logprobs: true}
	got, err := shop.Shop(ctx, provs[0], "mycel-ref", params)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Answer.Logprobs) == 0 {
		t.Fatalf("answer %+v: no values to lie about", got.Answer)
	}
	// What the provider would reveal when lying: its ids with other logprobs.
	lie := got
	lie.Answer.Revealed = true
	lie.Answer.Logprobs = make([]float64, len(got.Answer.Logprobs))
	lps := make([]float32, len(got.Answer.Logprobs))
	for i, lp := range got.Answer.Logprobs {
		lps[i] = float32(lp - 0.5)
		lie.Answer.Logprobs[i] = float64(lps[i])
	}
	rid := got.Receipt.RequestID
	submit := func(signer ed25519.PrivateKey) error {
		lie.Answer.RevealSignature = reveal.SignAnswer(memChainID, prov, rid, got.Answer.IDs, lps, signer)
		return a1.Submit(ctx, tx.SubmitEvidence{Receipt: got.Receipt, Bond: 1_000_000, Material: verifier.Material(lie),
			Summary: verifier.Summary(verifier.Report{Findings: []verifier.Finding{{Check: "logprobs_reveal", Failed: true}}}, got.Receipt)})
	}

	var before ledger.Account
	if err := m.query("account/"+a1.addr, nil, &before); err != nil {
		t.Fatal(err)
	}
	if err := submit(a1.key); err == nil {
		t.Fatal("evidence with a reveal signed by the accuser was accepted")
	}
	var after ledger.Account
	if err := m.query("account/"+a1.addr, nil, &after); err != nil {
		t.Fatal(err)
	}
	if n := len(m.evidence()); n != 0 || after.Balance < before.Balance-m.l.Params().MinFee {
		t.Fatalf("refused evidence: %d evidence, balance %d → %d: want nothing filed, no bond taken", n, before.Balance, after.Balance)
	}

	if err := submit(shop.keys[prov]); err != nil {
		t.Fatalf("evidence with the provider's signed reveal: %v", err)
	}
	if err := v2.Tick(ctx); err != nil {
		t.Logf("tick: %v", err)
	}
	evs := m.evidence()
	if len(evs) != 1 || evs[0].Status != ledger.EvidenceGuilty || len(evs[0].Votes) != 1 || !evs[0].Votes[0].Guilty || evs[0].Slashed == 0 {
		t.Fatalf("after the second verifier's vote: %+v", evs)
	}
}

// refusingShopper is a labShopper whose providers refuse every logprobs reveal: answers come
// back as HTTPShopper leaves them then (revealed, no ids, no logprobs, no signature).
type refusingShopper struct{ *labShopper }

func (s refusingShopper) Shop(ctx context.Context, p ledger.ProviderView, model string, params verifier.ShopperParams) (verifier.Shopped, error) {
	got, err := s.labShopper.Shop(ctx, p, model, params)
	got.Answer.IDs, got.Answer.Logprobs, got.Answer.Revealed = nil, nil, true
	return got, err
}

// TestRefusedRevealNotAccused: an honest-answering provider that refuses every reveal fails
// the verifier's audits (logprobs_reveal) and gets weight zero from it, but no evidence is
// filed: the refusal cannot be proved to other verifiers, an accusation would only cost
// the bond.
func TestRefusedRevealNotAccused(t *testing.T) {
	ctx := context.Background()
	m, shop := memSetup(t, map[string]cheat.Strategy{"honest": cheat.Honest})
	v1, _ := newMemVerifier(t, m, refusingShopper{shop}, labCheckers{shop.lab}, "v1", 1)
	toEpoch(t, m, 1, v1)
	if err := v1.Tick(ctx); err != nil {
		t.Logf("tick: %v", err)
	}
	for i := 0; i < 3; i++ {
		if err := v1.ShopOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if evs := m.evidence(); len(evs) != 0 {
		t.Errorf("%d evidence filed over refused reveals, want none", len(evs))
	}
	prov := m.account("honest").addr
	ws := v1.Weights()
	if len(ws) != 1 || ws[0].Provider != prov || ws[0].Weight != 0 {
		t.Errorf("weights %+v, want weight 0 for %s", ws, prov)
	}
}
