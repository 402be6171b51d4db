package ledger

import (
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/tx"
)

// TestAuditCompliance checks the compliance rule below 100%: a verifier must have audited
// exactly the leaves its revealed seed selects at the provider's probability of the epoch
// (prev_audit_bps), no more is needed, and one missing selected leaf, a missing report or an
// unrevealed seed makes it non-compliant.
func TestAuditCompliance(t *testing.T) {
	l := newTestLedger(t, DefaultParams(), nil)
	o := newOverlay(l.committed)
	prov := testAddr("p")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(putJSON(o, keyProvider(prov), Provider{Address: prov}))
	must(putJSON(o, keyReputation(prov), Reputation{Provider: prov, AuditBps: 9000, PrevAuditBps: 3000}))
	var leaves []tx.AnchorLeaf
	for i := range 60 {
		leaves = append(leaves, tx.AnchorLeaf{Provider: prov, RequestID: fmt.Sprintf("r%d", i)})
	}
	leaves = append(leaves, tx.AnchorLeaf{Provider: testAddr("unregistered"), RequestID: "x"})
	const e = 4
	anchor := testAddr("gw")
	must(putJSON(o, keyAnchorLeaves(e, anchor, 0), leaves))
	seed := testSeed("v")
	var selected []uint32
	for i, lf := range leaves {
		if AuditSelected(seed, lf.Provider, lf.RequestID, 3000) && lf.Provider == prov {
			selected = append(selected, uint32(i))
		}
	}
	if len(selected) < 5 || len(selected) > 35 {
		t.Fatalf("%d of 60 selected at 30%%: the seed is unlucky or selection is broken", len(selected))
	}
	v := testAddr("v")
	setup := func(reveal bool, audited []uint32) *overlay {
		x := newOverlay(o)
		s := AuditSeed{Verifier: v, Epoch: e, Commitment: tx.AuditSeedCommitment(seed)}
		if reveal {
			s.Seed = hex.EncodeToString(seed)
		}
		must(putJSON(x, keyAuditSeed(e, v), s))
		if audited != nil {
			must(putJSON(x, keyAuditReport(e, anchor, 0, v), AuditReport{Verifier: v, Epoch: e, Anchor: anchor, Audited: audited}))
		}
		return x
	}
	for _, tt := range []struct {
		name    string
		reveal  bool
		audited []uint32
		want    bool
	}{
		{"exactly the selected leaves", true, selected, true},
		{"one selected leaf missing", true, selected[1:], false},
		{"no report", true, nil, false},
		{"seed not revealed", false, selected, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := l.auditCompliance(setup(tt.reveal, tt.audited), e)
			if err != nil {
				t.Fatal(err)
			}
			if got := ok(v); got != tt.want {
				t.Errorf("compliant = %t, want %t", got, tt.want)
			}
		})
	}
	// A verifier's own anchor (its shopper receipts) binds only it: another
	// verifier, with no report on it, stays compliant; the anchorer does not.
	own := newOverlay(setup(true, selected))
	must(putJSON(own, keyVerifier(testAddr("w")), Verifier{Address: testAddr("w")}))
	must(putJSON(own, keyAnchorLeaves(e, testAddr("w"), 0), leaves))
	wSeed := testSeed("w")
	must(putJSON(own, keyAuditSeed(e, testAddr("w")), AuditSeed{Verifier: testAddr("w"), Epoch: e,
		Commitment: tx.AuditSeedCommitment(wSeed), Seed: hex.EncodeToString(wSeed)}))
	all := make([]uint32, len(leaves))
	for i := range all {
		all[i] = uint32(i)
	}
	must(putJSON(own, keyAuditReport(e, anchor, 0, testAddr("w")), AuditReport{Verifier: testAddr("w"), Epoch: e, Anchor: anchor, Audited: all}))
	okOwn, err := l.auditCompliance(own, e)
	if err != nil {
		t.Fatal(err)
	}
	if !okOwn(v) {
		t.Error("another verifier's own anchor made v non-compliant")
	}
	if okOwn(testAddr("w")) {
		t.Error("the anchoring verifier is compliant without reporting on its own anchor")
	}
	// An epoch without binding anchors demands nothing.
	ok, err := l.auditCompliance(o, e+1)
	if err != nil {
		t.Fatal(err)
	}
	if !ok(v) {
		t.Error("no binding anchors: want compliant")
	}
}

// BenchmarkYuma measures one epoch's consensus for 64 verifiers and 256 providers.
func BenchmarkYuma(b *testing.B) {
	const nv, np = 64, 256
	in := yumaInput{AlphaBps: 1000, ClipLowBps: 2000, Stakes: make([]uint64, nv), Weights: make([][]uint64, nv), Bonds: make([][]uint64, nv)}
	for i := range nv {
		in.Stakes[i] = uint64(100_000_000 + i*1_000_000)
		in.Weights[i] = make([]uint64, np)
		in.Bonds[i] = make([]uint64, np)
		for j := range np {
			in.Weights[i][j] = uint64((i*31 + j*17) % 1000)
			in.Bonds[i][j] = Scale / nv
		}
	}
	for b.Loop() {
		yuma(in)
	}
}

// TestReputationOverEpochs runs a provider through clean epochs (one passed audit each): its
// audit probability falls linearly to the floor and stays there; a slash resets it to 100%.
func TestReputationOverEpochs(t *testing.T) {
	p := DefaultParams()
	p.EpochLength = 2
	p.MinProviderStake, p.MinVerifierStake = 1_000_000, 1_000_000
	p.AuditFloorBps, p.AuditCleanEpochs = 1000, 4
	g := Genesis{Params: p, Models: []tx.RegisterModel{testModel("m1", "m1")}}
	for _, n := range []string{"p", "v", "g"} {
		g.Accounts = append(g.Accounts, GenesisAccount{Address: testAddr(n), Balance: 1_000_000_000})
	}
	l := New(testChain)
	if err := l.InitChain(Header{Height: 1, ChainID: testChain}, g); err != nil {
		t.Fatal(err)
	}
	h := int64(1)
	if err := l.BeginBlock(Header{Height: h, ChainID: testChain}); err != nil {
		t.Fatal(err)
	}
	nonce := map[string]uint64{}
	deliver := func(from string, m interface{ Type() string }) {
		t.Helper()
		res := l.DeliverTx(signedTx(t, testChain, from, nonce[from], p.MinFee, m))
		if res.Code != CodeOK {
			t.Fatalf("height %d: %s: %s", h, m.Type(), res.Log)
		}
		nonce[from]++
	}
	nextEpoch := func() {
		t.Helper()
		ep, _ := l.epoch(l.block)
		for {
			l.EndBlock()
			l.Commit()
			if err := l.CheckInvariants(); err != nil {
				t.Fatal(err)
			}
			h++
			if err := l.BeginBlock(Header{Height: h, ChainID: testChain}); err != nil {
				t.Fatal(err)
			}
			if now, _ := l.epoch(l.block); now.Number > ep.Number {
				return
			}
		}
	}
	prov := testAddr("p")
	deliver("p", tx.RegisterProvider{Stake: 10_000_000, Endpoint: "https://p.example", Models: []tx.ServedModel{{ModelID: "m1"}}})
	deliver("v", tx.RegisterVerifier{Stake: 10_000_000})
	var got []uint64
	for range 6 {
		ep, _ := l.epoch(l.block)
		leaves := []tx.AnchorLeaf{{Provider: prov, RequestID: fmt.Sprintf("r%d", ep.Number)}}
		deliver("g", tx.AnchorReceipts{Epoch: ep.Number, Root: tx.AnchorRoot(leaves), Count: 1, AuditRoot: tx.AnchorRoot(leaves)})
		deliver("v", tx.SubmitAuditReport{Epoch: ep.Number, Anchor: testAddr("g"), Leaves: leaves, Audited: []uint32{0}})
		nextEpoch()
		r, err := l.reputation(l.block, prov)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.AuditBps)
	}
	if diff := cmp.Diff([]uint64{7750, 5500, 3250, 1000, 1000, 1000}, got); diff != "" {
		t.Errorf("audit_bps after each clean epoch (-want +got):\n%s", diff)
	}
	if _, err := l.Slash(prov, tx.RoleProvider, 1000, "test"); err != nil {
		t.Fatal(err)
	}
	r, _ := l.reputation(l.block, prov)
	if r.CleanEpochs != 0 || r.AuditBps != 1000 {
		t.Errorf("right after the slash: clean %d, audit_bps %d; want 0 and the epoch's 1000 unchanged", r.CleanEpochs, r.AuditBps)
	}
	nextEpoch()
	r, _ = l.reputation(l.block, prov)
	if r.AuditBps != 10_000 || r.PrevAuditBps != 1000 || r.Slashes != 1 {
		t.Errorf("after the slashed epoch: audit_bps %d prev %d slashes %d; want 10000, 1000, 1", r.AuditBps, r.PrevAuditBps, r.Slashes)
	}
}

// TestAuditReportChunks anchors an audit root over 300 leaves (two chunks) and reports on the
// second chunk with its proof: it becomes binding on its own; a wrong or missing proof and a
// chunk out of range are rejected without changing state.
func TestAuditReportChunks(t *testing.T) {
	p := DefaultParams()
	p.MinVerifierStake = 1_000_000
	l := newTestLedger(t, p, map[string]uint64{"v": 1_000_000_000, "g": 1_000_000_000}, "v", "g")
	if err := l.BeginBlock(Header{Height: 1, ChainID: testChain}); err != nil {
		t.Fatal(err)
	}
	nonce := map[string]uint64{}
	deliver := func(from string, m interface{ Type() string }) Result {
		res := l.DeliverTx(signedTx(t, testChain, from, nonce[from], p.MinFee, m))
		if res.Code == CodeOK {
			nonce[from]++
		}
		return res
	}
	leaves := make([]tx.AnchorLeaf, 300)
	for i := range leaves {
		leaves[i] = tx.AnchorLeaf{Provider: testAddr("p"), RequestID: fmt.Sprintf("req-%03d", i)}
	}
	root := tx.AnchorRoot(leaves)
	if r := deliver("v", tx.RegisterVerifier{Stake: 10_000_000}); r.Code != CodeOK {
		t.Fatal(r.Log)
	}
	if r := deliver("g", tx.AnchorReceipts{Epoch: 0, Root: root, Count: 300, AuditRoot: root}); r.Code != CodeOK {
		t.Fatal(r.Log)
	}
	chunk1 := leaves[256:]
	proof := tx.AnchorChunkProof(leaves, 1)
	g := testAddr("g")
	for _, tt := range []struct {
		name string
		m    tx.SubmitAuditReport
	}{
		{"no proof", tx.SubmitAuditReport{Anchor: g, Chunk: 1, Leaves: chunk1, Audited: []uint32{0}}},
		{"chunk out of range", tx.SubmitAuditReport{Anchor: g, Chunk: 2, Leaves: chunk1, Proof: proof}},
		{"leaves of another chunk", tx.SubmitAuditReport{Anchor: g, Chunk: 1, Leaves: leaves[:44], Proof: proof}},
		{"chunk not published", tx.SubmitAuditReport{Anchor: g, Chunk: 1, Audited: []uint32{0}}},
	} {
		before := stateDigest(l)
		if r := deliver("v", tt.m); r.Code != CodeInvalid || stateDigest(l) != before {
			t.Errorf("%s: code %s (%s), want invalid and no state change", tt.name, CodeName(r.Code), r.Log)
		}
	}
	if r := deliver("v", tx.SubmitAuditReport{Anchor: g, Chunk: 1, Leaves: chunk1, Proof: proof, Audited: []uint32{0, 43}}); r.Code != CodeOK {
		t.Fatalf("chunk 1 with proof: %s", r.Log)
	}
	if _, ok := l.block.get(keyAnchorLeaves(0, g, 1)); !ok {
		t.Error("chunk 1 not published")
	}
	if _, ok := l.block.get(keyAnchorLeaves(0, g, 0)); ok {
		t.Error("chunk 0 published without a report")
	}
	rep, ok, err := getJSON[AuditReport](l.block, keyAuditReport(0, g, 1, testAddr("v")))
	if err != nil || !ok || rep.Chunk != 1 || len(rep.Audited) != 2 {
		t.Errorf("report %+v, %t, %v", rep, ok, err)
	}
}

// BenchmarkEpochIncentives measures the work at an epoch boundary with 16 verifiers, 64
// providers, 4 binding audit chunks of 256 leaves each reported by every verifier, and
// capacity records: compliance, Yuma, payouts, reputation and clean-up.
func BenchmarkEpochIncentives(b *testing.B) {
	p := DefaultParams()
	p.EpochLength = 10
	l := newTestLedger(b, p, nil)
	o := newOverlay(l.committed)
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	const nv, np, chunks = 16, 64, 4
	var provs []string
	for j := range np {
		a := testAddr(fmt.Sprint("prov", j))
		provs = append(provs, a)
		must(putJSON(o, keyProvider(a), Provider{Address: a, Stake: p.MinProviderStake, Models: []tx.ServedModel{{ModelID: "m1"}}}))
	}
	const e = 1 // weights and audits of epoch 1, paid at the end of epoch 2
	must(putJSON(o, keyEpoch, Epoch{Number: e + 2, RewardPool: 1_000_000_000, LastHeight: 30}))
	for c := range chunks {
		var ls []tx.AnchorLeaf
		for i := range 256 {
			ls = append(ls, tx.AnchorLeaf{Provider: provs[(c*256+i)%np], RequestID: fmt.Sprintf("r%d-%d", c, i)})
		}
		must(putJSON(o, keyAnchorLeaves(e, testAddr("gw"), uint64(c)), ls))
	}
	all := make([]uint32, 256)
	for i := range all {
		all[i] = uint32(i)
	}
	for i := range nv {
		v := testAddr(fmt.Sprint("ver", i))
		seed := testSeed(v)
		must(putJSON(o, keyVerifier(v), Verifier{Address: v, Stake: p.MinVerifierStake + uint64(i)}))
		must(putJSON(o, keyAuditSeed(e, v), AuditSeed{Verifier: v, Epoch: e, Commitment: tx.AuditSeedCommitment(seed), Seed: hex.EncodeToString(seed)}))
		for c := range chunks {
			must(putJSON(o, keyAuditReport(e, testAddr("gw"), uint64(c), v), AuditReport{Verifier: v, Epoch: e, Chunk: uint64(c), Audited: all}))
		}
		var ws []tx.ProviderWeight
		for j, a := range provs {
			ws = append(ws, tx.ProviderWeight{Provider: a, Weight: uint32(1 + (i*j)%7)})
		}
		must(putJSON(o, keyWeightReveal(e, v), WeightReveal{Verifier: v, Epoch: e, Weights: ws}))
		for j := range 8 {
			must(putJSON(o, keyCapacityRecord(e+1, provs[j], "m1", v), CapacityRecord{Verifier: v, TokensPerSecMilli: uint64(1000 * (i + j))}))
		}
	}
	base := newStore()
	base.apply(o)
	evs, err := l.epochIncentives(newOverlay(base), 30)
	if err != nil {
		b.Fatal(err)
	}
	seen := map[string]int{}
	for _, ev := range evs {
		seen[ev.Type]++
	}
	if seen["rewards"] != 1 || seen["capacity"] != 8 {
		b.Fatalf("boundary events %v: want rewards and 8 capacities", seen)
	}
	for b.Loop() {
		x := newOverlay(base)
		if _, err := l.epochIncentives(x, 30); err != nil {
			b.Fatal(err)
		}
	}
}
